"""Billing: subscriptions (Stripe Checkout and portal, the webhook in `webhooks.py`), the tier
gate and per-tier quotas for remote jobs, the operator's usage report and `nojoin-billing`.

`BillingService` (`runtime.billing`) is also the jobs domain's admission check: it implements
`backend.jobs.admission.JobAdmission` (`check_can_submit`, `admit`).
"""
