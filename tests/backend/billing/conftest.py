"""Billing fixtures: a BillingService with a known webhook secret installed in the runtime,
Stripe-signed webhook deliveries (the real `stripe` library computes the signature), event
builders shaped like Stripe's, and a helper to run SQL as a Supabase role for RLS checks."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg
import pytest
import stripe
from psycopg.rows import dict_row

from backend.billing.provider import OfflineBillingProvider
from backend.billing.service import BillingService
from backend.billing.settings import BillingSettings
from backend.runtime import Runtime

WEBHOOK_SECRET = "whsec_test_" + "b1ll1ng" * 4
WEBHOOK_PATH = "/api/v1/billing/webhook"

_counter = itertools.count(1)


@pytest.fixture(scope="module")
def billing_overrides() -> dict[str, Any]:
    """Override in a test module to change BillingSettings."""
    return {}


@pytest.fixture(scope="module")
def billing(runtime: Runtime, billing_overrides: dict[str, Any]) -> Iterator[BillingService]:
    values: dict[str, Any] = {
        "stripe_webhook_secret": WEBHOOK_SECRET,
        "require_subscription": True,
        "quota_free_jobs_per_day": 2,
        "quota_pro_jobs_per_day": 3,
        "quota_free_max_file_bytes": 1000,
        "quota_pro_max_file_bytes": 5000,
    }
    values.update(billing_overrides)
    service = BillingService(BillingSettings(**values), OfflineBillingProvider())
    saved, runtime.billing = runtime.billing, service
    yield service
    runtime.billing = saved


def signed_headers(
    payload: str, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)
    return {"Stripe-Signature": header, "Content-Type": "application/json"}


async def deliver(
    client: httpx.AsyncClient, event: dict[str, Any], **kwargs: Any
) -> httpx.Response:
    """POST `event` to the webhook the way Stripe does: raw JSON plus Stripe-Signature."""
    payload = json.dumps(event)
    return await client.post(
        WEBHOOK_PATH, content=payload, headers=signed_headers(payload, **kwargs)
    )


def new_id(prefix: str) -> str:
    return f"{prefix}_test_{next(_counter):06d}{uuid.uuid4().hex[:8]}"


def event(event_type: str, obj: dict[str, Any], *, created: int | None = None) -> dict[str, Any]:
    return {
        "id": new_id("evt"),
        "object": "event",
        "api_version": "2025-08-27.basil",
        "created": created if created is not None else int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "type": event_type,
        "data": {"object": obj},
    }


def checkout_completed(
    user_id: uuid.UUID, customer: str, subscription: str, *, created: int | None = None
) -> dict[str, Any]:
    return event(
        "checkout.session.completed",
        {
            "id": new_id("cs"),
            "object": "checkout.session",
            "mode": "subscription",
            "client_reference_id": str(user_id),
            "customer": customer,
            "subscription": subscription,
            "payment_status": "paid",
            "status": "complete",
            "metadata": {"nojoin_user_id": str(user_id)},
        },
        created=created,
    )


# One billing period for every event that names none: built per call from the clock, two
# deliveries a second apart would differ in period, and a stale one would read as "period
# advanced" (a flaky test).
_START = int(time.time())
DEFAULT_PERIOD = (_START - 60, _START + 30 * 86400)


def subscription_event(
    event_type: str,
    subscription: str,
    customer: str,
    status: str,
    *,
    user_id: uuid.UUID | None = None,
    period: tuple[int, int] | None = None,
    created: int | None = None,
    cancel_at_period_end: bool = False,
) -> dict[str, Any]:
    start, end = period or DEFAULT_PERIOD
    return event(
        event_type,
        {
            "id": subscription,
            "object": "subscription",
            "customer": customer,
            "status": status,
            "cancel_at_period_end": cancel_at_period_end,
            "metadata": {"nojoin_user_id": str(user_id)} if user_id else {},
            # API 2025-03-31+: the period lives on the subscription item.
            "items": {
                "object": "list",
                "data": [
                    {
                        "id": new_id("si"),
                        "price": {"id": "price_pro_monthly", "object": "price"},
                        "current_period_start": start,
                        "current_period_end": end,
                    }
                ],
            },
        },
        created=created,
    )


def invoice_event(
    event_type: str, subscription: str, customer: str, *, created: int | None = None
) -> dict[str, Any]:
    return event(
        event_type,
        {
            "id": new_id("in"),
            "object": "invoice",
            "customer": customer,
            "parent": {
                "type": "subscription_details",
                "subscription_details": {"subscription": subscription, "metadata": {}},
            },
        },
        created=created,
    )


@pytest.fixture(scope="module")
def as_role(pg_url: str) -> Callable[..., Any]:
    """as_role(role, user_id=None) -> context manager yielding a connection that runs as the
    Supabase role with the JWT claims PostgREST would set (auth.uid() = user_id)."""

    @contextmanager
    def connect(role: str, user_id: uuid.UUID | None = None) -> Iterator[psycopg.Connection]:
        with psycopg.connect(pg_url, row_factory=dict_row) as conn:
            claims = {"role": role, **({"sub": str(user_id)} if user_id else {})}
            conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
            conn.execute(f"SET LOCAL ROLE {role}")
            yield conn
            conn.rollback()

    return connect
