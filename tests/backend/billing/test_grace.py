"""Grace period after a failed renewal: a Pro user whose card Stripe is still retrying
(`past_due`) keeps cloud processing for NOJOIN_BILLING_PAST_DUE_GRACE_DAYS, then gets the
payment_required 403. Driven through Stripe-signed webhooks and POST /api/v1/jobs on real
PostgreSQL."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from backend.billing.provider import OfflineBillingProvider
from backend.billing.service import NEEDS_SUBSCRIPTION, PAYMENT_PROBLEM, BillingService
from backend.billing.settings import BillingSettings
from backend.errors import ForbiddenError
from backend.jobs.settings import JobSettings
from backend.runtime import Runtime
from tests.backend.billing.conftest import (
    checkout_completed,
    deliver,
    invoice_event,
    new_id,
    subscription_event,
)

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

JOBS = "/api/v1/jobs"
DAY = 86400
# A tiny valid WAV header + silence: the gate runs before any audio is looked at.
WAV = (
    b"RIFF"
    + (36 + 1600).to_bytes(4, "little")
    + b"WAVEfmt "
    + (16).to_bytes(4, "little")
    + (1).to_bytes(2, "little")
    + (1).to_bytes(2, "little")
    + (8000).to_bytes(4, "little")
    + (16000).to_bytes(4, "little")
    + (2).to_bytes(2, "little")
    + (16).to_bytes(2, "little")
    + b"data"
    + (1600).to_bytes(4, "little")
    + b"\0" * 1600
)


@pytest.fixture(scope="module")
def billing_overrides() -> dict[str, Any]:
    # Room for every submission a test makes; the grace period keeps its default (7 days).
    return {"quota_pro_jobs_per_day": 50, "quota_pro_max_file_bytes": 100_000}


@pytest.fixture(scope="module")
def job_settings() -> JobSettings:
    """Dispatch "none": submitted jobs are only recorded, not transcribed."""
    return JobSettings(job_dispatch="none")


@pytest.fixture
async def client(
    live_server: str,
    anyio_backend: str,  # noqa: ARG001 (anyio runs this async fixture)
) -> AsyncIterator[httpx.AsyncClient]:
    """Over real HTTP to a live uvicorn (job submission needs the app's lifespan)."""
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as c:
        yield c


@pytest.fixture(autouse=True)
def _billing(billing: BillingService) -> BillingService:
    """Every test runs against the module's BillingService (the gate is on)."""
    return billing


@pytest.fixture
def grace_days(runtime: Runtime, billing: BillingService) -> Iterator[Callable[[int], None]]:
    """grace_days(n): serve with NOJOIN_BILLING_PAST_DUE_GRACE_DAYS=n for this test."""

    def swap(days: int) -> None:
        settings = billing.settings.model_copy(update={"billing_past_due_grace_days": days})
        runtime.billing = BillingService(settings, OfflineBillingProvider())

    yield swap
    runtime.billing = billing


async def submit(client: httpx.AsyncClient, user: Any) -> httpx.Response:
    return await client.post(
        JOBS,
        headers=user.headers,
        files={"file": ("meeting.wav", WAV, "audio/wav")},
        data={"params": json.dumps({"model": "tiny.en"})},
    )


async def account(client: httpx.AsyncClient, user: Any) -> dict[str, Any]:
    resp = await client.get("/api/v1/billing/subscription", headers=user.headers)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def send(client: httpx.AsyncClient, evt: dict[str, Any], outcome: str = "applied") -> None:
    resp = await deliver(client, evt)
    assert resp.status_code == 200, resp.text
    assert resp.json()["outcome"] == outcome, resp.json()


async def subscribe(client: httpx.AsyncClient, user: Any, t: int) -> tuple[str, str]:
    customer, subscription = new_id("cus"), new_id("sub")
    await send(client, checkout_completed(user.id, customer, subscription, created=t))
    await send(
        client,
        subscription_event(
            "customer.subscription.created",
            subscription,
            customer,
            "active",
            user_id=user.id,
            created=t,
        ),
    )
    return customer, subscription


def updated(subscription: str, customer: str, status: str, t: int) -> dict[str, Any]:
    return subscription_event(
        "customer.subscription.updated", subscription, customer, status, created=t
    )


def past_due_since(runtime: Runtime, user_id: uuid.UUID) -> datetime | None:
    with runtime.db.transaction() as conn:
        row = conn.execute(
            "SELECT past_due_since FROM subscriptions WHERE user_id = %s", (user_id,)
        ).fetchone()
    assert row is not None
    value: datetime | None = row["past_due_since"]
    return value


def at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def when(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def gate_code(runtime: Runtime, user_id: uuid.UUID) -> str | None:
    """The error code the billing gate refuses this user with (None: admitted)."""
    service = runtime.billing
    with runtime.db.transaction() as conn:
        try:
            service.check_entitlement(conn, user_id)
        except ForbiddenError as exc:
            return exc.code
    return None


async def assert_refused_for_payment(
    client: httpx.AsyncClient, runtime: Runtime, user: Any
) -> None:
    resp = await submit(client, user)
    assert resp.status_code == 403, resp.text
    assert resp.json()["detail"] == PAYMENT_PROBLEM
    assert gate_code(runtime, user.id) == "payment_required"
    state = await account(client, user)
    assert (state["tier"], state["status"], state["entitled"]) == ("pro", "past_due", False)
    assert state["grace_until"] is None


async def test_failed_renewal_keeps_cloud_processing_until_the_grace_period_ends(
    client: httpx.AsyncClient, runtime: Runtime, create_user: Callable[..., Any]
) -> None:
    user = create_user()
    t = int(time.time())
    customer, subscription = await subscribe(client, user, t)
    await send(client, invoice_event("invoice.payment_failed", subscription, customer, created=t))
    assert past_due_since(runtime, user.id) == at(t)

    resp = await submit(client, user)
    assert resp.status_code == 202, resp.text
    state = await account(client, user)
    # The app sees the payment problem, that processing still works, and until when.
    assert (state["tier"], state["status"], state["entitled"]) == ("pro", "past_due", True)
    assert when(state["grace_until"]) == at(t) + timedelta(days=7)

    # Stripe's own status update for the same failure does not restart the clock.
    await send(client, updated(subscription, customer, "past_due", t + 5))
    assert past_due_since(runtime, user.id) == at(t)
    assert (await submit(client, user)).status_code == 202

    # Seven days later, still unpaid: the usual payment_required refusal.
    with runtime.db.transaction() as conn:
        conn.execute(
            "UPDATE subscriptions SET past_due_since = now() - interval '7 days 1 second'"
            " WHERE user_id = %s",
            (user.id,),
        )
    await assert_refused_for_payment(client, runtime, user)


@pytest.mark.parametrize(("days_ago", "admitted"), [(6, True), (8, False)])
async def test_grace_counts_from_the_stripe_event_time(
    client: httpx.AsyncClient,
    runtime: Runtime,
    create_user: Callable[..., Any],
    days_ago: int,
    admitted: bool,
) -> None:
    """A late delivery does not lengthen the grace: it runs from the event's `created`."""
    user = create_user()
    t = int(time.time()) - days_ago * DAY
    customer, subscription = await subscribe(client, user, t - DAY)
    await send(client, updated(subscription, customer, "past_due", t))
    if admitted:
        assert (await submit(client, user)).status_code == 202
        state = await account(client, user)
        assert state["entitled"] and when(state["grace_until"]) == at(t) + timedelta(days=7)
    else:
        await assert_refused_for_payment(client, runtime, user)


async def test_unpaid_ends_the_grace_at_once(
    client: httpx.AsyncClient, runtime: Runtime, create_user: Callable[..., Any]
) -> None:
    """Stripe gave up retrying (`unpaid`): no more processing, even within the seven days."""
    user = create_user()
    t = int(time.time())
    customer, subscription = await subscribe(client, user, t - 10)
    await send(client, invoice_event("invoice.payment_failed", subscription, customer, created=t))
    assert (await submit(client, user)).status_code == 202
    await send(client, updated(subscription, customer, "unpaid", t + 1))
    await assert_refused_for_payment(client, runtime, user)
    # Back to past_due (should Stripe do so) does not start a fresh grace period.
    await send(client, updated(subscription, customer, "past_due", t + 2))
    assert past_due_since(runtime, user.id) == at(t)


@pytest.mark.parametrize("stripe_status", ["incomplete", "unpaid", "paused"])
async def test_statuses_other_than_past_due_get_no_grace(
    client: httpx.AsyncClient,
    runtime: Runtime,
    create_user: Callable[..., Any],
    stripe_status: str,
) -> None:
    """`incomplete`: the first payment never went through; `unpaid`, `paused`: not a renewal
    Stripe is retrying. None of them keeps cloud processing on."""
    user = create_user()
    customer, subscription = new_id("cus"), new_id("sub")
    await send(
        client,
        subscription_event(
            "customer.subscription.created",
            subscription,
            customer,
            stripe_status,
            user_id=user.id,
            created=int(time.time()),
        ),
    )
    await assert_refused_for_payment(client, runtime, user)
    assert past_due_since(runtime, user.id) is None


@pytest.mark.parametrize("paid_by", ["invoice.paid", "subscription active"])
async def test_paying_clears_the_grace_and_a_later_failure_starts_a_new_one(
    client: httpx.AsyncClient, runtime: Runtime, create_user: Callable[..., Any], paid_by: str
) -> None:
    user = create_user()
    t = int(time.time()) - 30 * DAY
    customer, subscription = await subscribe(client, user, t - DAY)
    await send(client, invoice_event("invoice.payment_failed", subscription, customer, created=t))
    assert past_due_since(runtime, user.id) == at(t)
    if paid_by == "invoice.paid":
        paid = invoice_event("invoice.paid", subscription, customer, created=t + DAY)
    else:
        paid = updated(subscription, customer, "active", t + DAY)
    await send(client, paid)
    assert past_due_since(runtime, user.id) is None
    state = await account(client, user)
    assert (state["status"], state["entitled"], state["grace_until"]) == ("active", True, None)

    # The next renewal fails a month later: its grace runs from that failure, not the old one
    # (which would already be over).
    now = int(time.time())
    await send(client, invoice_event("invoice.payment_failed", subscription, customer, created=now))
    assert past_due_since(runtime, user.id) == at(now)
    assert (await submit(client, user)).status_code == 202


async def test_out_of_order_events_do_not_move_the_grace_start(
    client: httpx.AsyncClient, runtime: Runtime, create_user: Callable[..., Any]
) -> None:
    user = create_user()
    t = int(time.time()) - 6 * DAY
    customer, subscription = await subscribe(client, user, t - DAY)
    await send(client, updated(subscription, customer, "past_due", t))
    # Deliveries created earlier arrive late: an older past_due must not restart the clock
    # (nor a newer one, below), and an older `active` must not clear it.
    await send(client, updated(subscription, customer, "past_due", t - 100), "stale: ignored")
    await send(client, updated(subscription, customer, "active", t - 50), "stale: ignored")
    await send(
        client,
        invoice_event("invoice.paid", subscription, customer, created=t - 10),
        "stale: ignored",
    )
    assert past_due_since(runtime, user.id) == at(t)
    await send(client, updated(subscription, customer, "past_due", t + 2 * DAY))
    assert past_due_since(runtime, user.id) == at(t)
    state = await account(client, user)
    assert state["entitled"] and when(state["grace_until"]) == at(t) + timedelta(days=7)


async def test_cancelling_clears_the_grace(
    client: httpx.AsyncClient, runtime: Runtime, create_user: Callable[..., Any]
) -> None:
    user = create_user()
    t = int(time.time())
    customer, subscription = await subscribe(client, user, t - 10)
    await send(client, invoice_event("invoice.payment_failed", subscription, customer, created=t))
    await send(
        client,
        subscription_event(
            "customer.subscription.deleted", subscription, customer, "canceled", created=t + 1
        ),
    )
    assert past_due_since(runtime, user.id) is None
    resp = await submit(client, user)
    assert resp.status_code == 403 and resp.json()["detail"] == NEEDS_SUBSCRIPTION
    assert gate_code(runtime, user.id) == "subscription_required"


async def test_grace_zero_cuts_off_at_once(
    client: httpx.AsyncClient,
    runtime: Runtime,
    create_user: Callable[..., Any],
    grace_days: Callable[[int], None],
) -> None:
    grace_days(0)
    user = create_user()
    t = int(time.time())
    customer, subscription = await subscribe(client, user, t - 10)
    await send(client, invoice_event("invoice.payment_failed", subscription, customer, created=t))
    # The start is still recorded (raising the setting later gives grace from the failure).
    assert past_due_since(runtime, user.id) == at(t)
    await assert_refused_for_payment(client, runtime, user)


async def test_a_longer_setting_extends_the_grace(
    client: httpx.AsyncClient,
    create_user: Callable[..., Any],
    grace_days: Callable[[int], None],
) -> None:
    grace_days(14)
    user = create_user()
    t = int(time.time()) - 10 * DAY
    customer, subscription = await subscribe(client, user, t - DAY)
    await send(client, updated(subscription, customer, "past_due", t))
    assert (await submit(client, user)).status_code == 202
    assert when((await account(client, user))["grace_until"]) == at(t) + timedelta(days=14)


def test_grace_setting_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert BillingSettings().billing_past_due_grace_days == 7
    monkeypatch.setenv("NOJOIN_BILLING_PAST_DUE_GRACE_DAYS", "3")
    assert BillingSettings().past_due_grace == timedelta(days=3)
    for bad in ("-1", "seven", "366"):
        monkeypatch.setenv("NOJOIN_BILLING_PAST_DUE_GRACE_DAYS", bad)
        with pytest.raises(ValidationError, match="billing_past_due_grace_days"):
            BillingSettings()


async def test_a_new_subscription_does_not_inherit_the_old_ones_grace_start(
    client: httpx.AsyncClient, runtime: Runtime, create_user: Callable[..., Any]
) -> None:
    user = create_user()
    t = int(time.time()) - 20 * DAY
    customer, old = await subscribe(client, user, t - DAY)
    await send(client, updated(old, customer, "past_due", t))
    # The user starts over with a new subscription whose first payment is still pending.
    new = new_id("sub")
    await send(
        client,
        subscription_event(
            "customer.subscription.created",
            new,
            customer,
            "incomplete",
            user_id=user.id,
            created=t + DAY,
        ),
    )
    assert past_due_since(runtime, user.id) is None
    await assert_refused_for_payment(client, runtime, user)


@pytest.mark.parametrize("reported_by", ["invoice.payment_failed", "subscription past_due"])
async def test_a_trial_whose_first_payment_fails_gets_no_grace(
    client: httpx.AsyncClient, runtime: Runtime, create_user: Callable[..., Any], reported_by: str
) -> None:
    """Grace is for renewals of a subscription that was paid; a trial never was."""
    user = create_user()
    t = int(time.time())
    customer, subscription = new_id("cus"), new_id("sub")
    await send(
        client,
        subscription_event(
            "customer.subscription.created",
            subscription,
            customer,
            "trialing",
            user_id=user.id,
            created=t - 10,
        ),
    )
    assert (await submit(client, user)).status_code == 202
    if reported_by == "invoice.payment_failed":
        failed = invoice_event("invoice.payment_failed", subscription, customer, created=t)
    else:
        failed = updated(subscription, customer, "past_due", t)
    await send(client, failed)
    assert past_due_since(runtime, user.id) is None
    await assert_refused_for_payment(client, runtime, user)
