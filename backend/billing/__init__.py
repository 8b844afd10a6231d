"""Subscriptions (Stripe Checkout + webhook), the tier gate and per-tier quotas for remote jobs.

Other domains use `admit_job(conn, runtime, user_id, size)` from `backend.billing.gate`.
"""
