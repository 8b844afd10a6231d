"""Stripe webhook: signature checks, event application, idempotency and ordering.

Every delivery is signed with the real `stripe` library's signing code and verified by the
endpoint with `stripe.Webhook.construct_event`."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from backend.runtime import Runtime
from tests.backend.billing.conftest import (
    WEBHOOK_PATH,
    checkout_completed,
    deliver,
    event,
    invoice_event,
    new_id,
    signed_headers,
    subscription_event,
)

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


async def _sub(client: httpx.AsyncClient, user: Any) -> dict[str, Any]:
    resp = await client.get("/api/v1/billing/subscription", headers=user.headers)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _event_count(runtime: Runtime, event_id: str | None = None) -> int:
    with runtime.db.transaction() as conn:
        if event_id:
            row = conn.execute(
                "SELECT count(*) AS n FROM stripe_events WHERE id = %s", (event_id,)
            ).fetchone()
        else:
            row = conn.execute("SELECT count(*) AS n FROM stripe_events").fetchone()
    assert row is not None
    return int(row["n"])


async def _subscribe(
    client: httpx.AsyncClient, user: Any, *, created: int | None = None, customer: str | None = None
) -> tuple[str, str]:
    customer, subscription = customer or new_id("cus"), new_id("sub")
    t = created or int(time.time())
    r1 = await deliver(client, checkout_completed(user.id, customer, subscription, created=t))
    r2 = await deliver(
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
    assert r1.status_code == 200 and r2.status_code == 200, (r1.text, r2.text)
    return customer, subscription


@pytest.mark.usefixtures("billing")
async def test_checkout_and_subscription_created_make_the_user_pro(
    client: httpx.AsyncClient, create_user: Callable[..., Any]
) -> None:
    user = create_user()
    before = await _sub(client, user)
    assert (before["tier"], before["entitled"], before["can_manage"]) == ("free", False, False)

    period = (int(time.time()) - 10, int(time.time()) + 30 * 86400)
    customer, subscription = new_id("cus"), new_id("sub")
    resp = await deliver(client, checkout_completed(user.id, customer, subscription))
    assert resp.status_code == 200 and resp.json()["outcome"] == "applied"
    resp = await deliver(
        client,
        subscription_event(
            "customer.subscription.created", subscription, customer, "active", period=period
        ),
    )
    assert resp.json()["outcome"] == "applied"

    after = await _sub(client, user)
    assert after["tier"] == "pro" and after["status"] == "active" and after["entitled"]
    assert after["can_manage"] is True
    assert after["jobs_per_day"] == 3 and after["max_file_bytes"] == 5000
    end = after["current_period_end"].replace("Z", "+00:00")
    from datetime import datetime

    assert int(datetime.fromisoformat(end).timestamp()) == period[1]


@pytest.mark.usefixtures("billing")
async def test_subscription_event_before_checkout_is_mapped_by_metadata(
    client: httpx.AsyncClient, create_user: Callable[..., Any]
) -> None:
    """Stripe does not order deliveries: customer.subscription.created often comes first."""
    user = create_user()
    customer, subscription = new_id("cus"), new_id("sub")
    t = int(time.time())
    resp = await deliver(
        client,
        subscription_event(
            "customer.subscription.created",
            subscription,
            customer,
            "trialing",
            user_id=user.id,
            created=t,
        ),
    )
    assert resp.json()["outcome"] == "applied"
    resp = await deliver(client, checkout_completed(user.id, customer, subscription, created=t))
    assert resp.status_code == 200
    state = await _sub(client, user)
    assert state["tier"] == "pro" and state["entitled"] and state["can_manage"]


@pytest.mark.usefixtures("billing")
@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda p, h: (p, {**h, "Stripe-Signature": "t=1,v1=deadbeef"}), id="forged"),
        pytest.param(lambda p, h: (p.replace("active", "trialing"), h), id="tampered-body"),
        pytest.param(lambda p, _: (p, {"Content-Type": "application/json"}), id="no-header"),
        pytest.param(
            lambda p, _: (p, signed_headers(p, secret="whsec_someone_else")), id="wrong-secret"
        ),
        pytest.param(
            lambda p, _: (p, signed_headers(p, timestamp=int(time.time()) - 3600)), id="too-old"
        ),
        pytest.param(lambda p, h: (p, {**h, "Stripe-Signature": "garbage"}), id="malformed"),
    ],
)
async def test_bad_signature_is_400_and_changes_nothing(
    client: httpx.AsyncClient,
    runtime: Runtime,
    create_user: Callable[..., Any],
    mutate: Callable[[str, dict[str, str]], tuple[str, dict[str, str]]],
) -> None:
    user = create_user()
    evt = subscription_event(
        "customer.subscription.created", new_id("sub"), new_id("cus"), "active", user_id=user.id
    )
    payload = json.dumps(evt)
    body, headers = mutate(payload, signed_headers(payload))
    resp = await client.post(WEBHOOK_PATH, content=body, headers=headers)
    assert resp.status_code == 400
    assert resp.json()["detail"] == "Invalid Stripe signature."
    assert _event_count(runtime, evt["id"]) == 0
    assert (await _sub(client, user))["tier"] == "free"


@pytest.mark.usefixtures("billing")
@pytest.mark.parametrize(
    "body",
    [
        pytest.param("not json at all", id="not-json"),
        pytest.param("[1, 2, 3]", id="json-array"),
        pytest.param('{"id": "evt_x", "object": "event"}', id="no-type"),
        pytest.param(
            '{"id": "evt_y", "object": "event", "type": "customer.subscription.updated",'
            ' "created": 1700000000, "data": {"object": "nope"}}',
            id="object-not-a-dict",
        ),
        pytest.param(
            '{"id": "evt_z", "object": "event", "type": "customer.subscription.updated",'
            ' "created": 1700000000, "data": {"object": {"id": "sub_1", "status": "weird"}}}',
            id="unknown-status",
        ),
        pytest.param(b"\xff\xfe\x00garbage", id="not-utf8"),
    ],
)
async def test_signed_but_malformed_payload_is_400_never_500(
    client: httpx.AsyncClient, runtime: Runtime, body: str | bytes
) -> None:
    raw = body if isinstance(body, bytes) else body.encode()
    # Sign exactly what is sent (latin-1 keeps arbitrary bytes 1:1 for the non-UTF-8 case).
    headers = signed_headers(raw.decode("latin-1"))
    before = _event_count(runtime)
    resp = await client.post(WEBHOOK_PATH, content=raw, headers=headers)
    assert resp.status_code == 400, resp.text
    assert resp.json()["detail"] in (
        "Webhook body is not a Stripe event.",
        "Event field `type` is missing or invalid.",
        "Event has no data.object.",
        "Unknown subscription status 'weird'.",
    )
    assert _event_count(runtime) == before


@pytest.mark.usefixtures("billing")
async def test_unhandled_event_type_is_acknowledged_and_recorded(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    evt = event("customer.created", {"id": new_id("cus"), "object": "customer"})
    resp = await deliver(client, evt)
    assert resp.status_code == 200
    assert resp.json()["outcome"] == "ignored: unhandled type"
    assert _event_count(runtime, evt["id"]) == 1


@pytest.mark.usefixtures("billing")
async def test_replayed_event_has_no_second_effect(
    client: httpx.AsyncClient,
    runtime: Runtime,
    create_user: Callable[..., Any],
) -> None:
    user = create_user()
    t = int(time.time())
    customer, subscription = await _subscribe(client, user, created=t)
    failed = invoice_event("invoice.payment_failed", subscription, customer, created=t + 1)
    assert (await deliver(client, failed)).json()["outcome"] == "applied"
    assert (await _sub(client, user))["status"] == "past_due"
    paid = invoice_event("invoice.paid", subscription, customer, created=t + 1)
    assert (await deliver(client, paid)).json()["outcome"] == "applied"
    assert (await _sub(client, user))["status"] == "active"

    # Stripe retries the failed-payment event (same id, same second as invoice.paid): without
    # idempotency it would apply again and pause a paid-up subscription.
    resp = await deliver(client, failed)
    assert resp.status_code == 200 and resp.json()["outcome"] == "duplicate"
    assert (await _sub(client, user))["status"] == "active"
    assert _event_count(runtime, failed["id"]) == 1


@pytest.mark.usefixtures("billing")
def test_parallel_deliveries_of_one_event_apply_once(
    live_server: str, runtime: Runtime, create_user: Callable[..., Any]
) -> None:
    user = create_user()
    customer, subscription = new_id("cus"), new_id("sub")
    evt = checkout_completed(user.id, customer, subscription)
    payload = json.dumps(evt)
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def send() -> None:
        with httpx.Client(base_url=live_server, timeout=30) as http:
            barrier.wait(timeout=10)
            resp = http.post(WEBHOOK_PATH, content=payload, headers=signed_headers(payload))
            assert resp.status_code == 200, resp.text
            outcomes.append(resp.json()["outcome"])

    threads = [threading.Thread(target=send) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=30)
    assert sorted(outcomes) == ["applied"] + ["duplicate"] * 5
    assert _event_count(runtime, evt["id"]) == 1


@pytest.mark.usefixtures("billing")
async def test_subscription_deleted_returns_the_user_to_free(
    client: httpx.AsyncClient, create_user: Callable[..., Any]
) -> None:
    user = create_user()
    t = int(time.time())
    customer, subscription = await _subscribe(client, user, created=t)
    assert (await _sub(client, user))["tier"] == "pro"
    resp = await deliver(
        client,
        subscription_event(
            "customer.subscription.deleted", subscription, customer, "canceled", created=t + 5
        ),
    )
    assert resp.json()["outcome"] == "applied"
    state = await _sub(client, user)
    assert (state["tier"], state["status"], state["entitled"]) == ("free", "canceled", False)
    # A late "updated: active" for the dead subscription cannot revive it, even if newer.
    resp = await deliver(
        client,
        subscription_event(
            "customer.subscription.updated", subscription, customer, "active", created=t + 9
        ),
    )
    assert resp.json()["outcome"] == "ignored: subscription already canceled"
    assert (await _sub(client, user))["tier"] == "free"


@pytest.mark.usefixtures("billing")
async def test_out_of_order_update_is_ignored(
    client: httpx.AsyncClient, create_user: Callable[..., Any]
) -> None:
    user = create_user()
    t = int(time.time()) - 1000
    customer, subscription = await _subscribe(client, user, created=t)
    new_period = (t + 500, t + 500 + 30 * 86400)
    newer = subscription_event(
        "customer.subscription.updated",
        subscription,
        customer,
        "active",
        period=new_period,
        created=t + 500,
    )
    older = subscription_event(
        "customer.subscription.updated",
        subscription,
        customer,
        "past_due",
        period=(t, t + 30 * 86400),
        created=t + 100,
    )
    assert (await deliver(client, newer)).json()["outcome"] == "applied"
    resp = await deliver(client, older)
    assert resp.status_code == 200 and resp.json()["outcome"] == "stale: ignored"
    state = await _sub(client, user)
    assert state["status"] == "active" and state["entitled"]
    from datetime import datetime

    end = datetime.fromisoformat(state["current_period_end"].replace("Z", "+00:00"))
    assert int(end.timestamp()) == new_period[1]


@pytest.mark.usefixtures("billing")
async def test_deleting_an_old_subscription_does_not_cancel_the_new_one(
    client: httpx.AsyncClient, create_user: Callable[..., Any]
) -> None:
    user = create_user()
    t = int(time.time())
    customer, old_sub = await _subscribe(client, user, created=t - 100)
    # Resubscribing reuses the Stripe customer (checkout is created with `customer`).
    await _subscribe(client, user, created=t, customer=customer)
    resp = await deliver(
        client,
        subscription_event(
            "customer.subscription.deleted",
            old_sub,
            customer,
            "canceled",
            user_id=user.id,
            created=t + 1,
        ),
    )
    assert resp.json()["outcome"] == "ignored: not the current subscription"
    assert (await _sub(client, user))["entitled"] is True


@pytest.mark.usefixtures("billing")
async def test_events_for_unknown_users_are_acknowledged_without_effect(
    client: httpx.AsyncClient,
) -> None:
    stranger = uuid.uuid4()
    resp = await deliver(client, checkout_completed(stranger, new_id("cus"), new_id("sub")))
    assert resp.status_code == 200 and resp.json()["outcome"] == "ignored: unknown user"
    resp = await deliver(
        client,
        subscription_event("customer.subscription.updated", new_id("sub"), new_id("cus"), "active"),
    )
    assert resp.json()["outcome"] == "ignored: unknown customer"


@pytest.mark.usefixtures("billing")
async def test_invoice_events_in_the_older_api_shape(
    client: httpx.AsyncClient, create_user: Callable[..., Any]
) -> None:
    """Before API 2025-03-31 the invoice carried `subscription` at the top level."""
    user = create_user()
    t = int(time.time())
    customer, subscription = await _subscribe(client, user, created=t)
    failed = event(
        "invoice.payment_failed",
        {
            "id": new_id("in"),
            "object": "invoice",
            "customer": customer,
            "subscription": subscription,
        },
        created=t + 1,
    )
    assert (await deliver(client, failed)).json()["outcome"] == "applied"
    state = await _sub(client, user)
    # Stripe retries the card: the default grace period keeps cloud processing on meanwhile.
    assert (state["tier"], state["status"], state["entitled"]) == ("pro", "past_due", True)
    assert state["grace_until"] is not None


def test_manual_grant_ends_on_its_date() -> None:
    from datetime import UTC, datetime, timedelta

    from backend.billing.repository import Subscription

    def grant(end: datetime) -> Subscription:
        return Subscription(
            user_id=uuid.uuid4(),
            tier="pro",
            status="active",
            stripe_status="manual",
            stripe_customer_id=None,
            stripe_subscription_id=None,
            stripe_price_id=None,
            current_period_start=None,
            current_period_end=end,
            cancel_at_period_end=False,
            last_event_at=None,
            last_event_id=None,
            updated_at=datetime.now(UTC),
        )

    assert grant(datetime.now(UTC) + timedelta(days=1)).entitled
    assert not grant(datetime.now(UTC) - timedelta(seconds=1)).entitled
