"""Row Level Security on the billing tables, checked as Supabase's roles (auth shim):
users read only their own subscription, never the Stripe events or sessions, and nobody but
the service writes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from backend.runtime import Runtime

pytestmark = [pytest.mark.postgres]


@pytest.fixture(scope="module")
def two_subscribers(runtime: Runtime, create_user: Callable[..., Any]) -> tuple[Any, Any]:
    a, b = create_user(), create_user()
    with runtime.db.transaction() as conn:
        for user, tier in ((a, "pro"), (b, "free")):
            conn.execute(
                "INSERT INTO subscriptions (user_id, tier, stripe_customer_id) VALUES (%s, %s, %s)",
                (user.id, tier, f"cus_{user.id.hex[:10]}"),
            )
        conn.execute(
            "INSERT INTO stripe_events (id, type, created_at, user_id, outcome, payload)"
            " VALUES ('evt_rls_1', 'invoice.paid', now(), %s, 'applied', '{}')",
            (a.id,),
        )
        conn.execute(
            "INSERT INTO billing_sessions (id, user_id, kind, provider, idempotency_key, url)"
            " VALUES ('cs_rls_1', %s, 'checkout', 'offline', 'k', 'http://x')",
            (a.id,),
        )
    return a, b


def test_user_reads_only_their_own_subscription(
    as_role: Callable[..., Any], two_subscribers: tuple[Any, Any]
) -> None:
    a, b = two_subscribers
    with as_role("authenticated", a.id) as conn:
        rows = conn.execute("SELECT user_id, tier FROM subscriptions").fetchall()
    assert [(r["user_id"], r["tier"]) for r in rows] == [(a.id, "pro")]
    with as_role("authenticated", b.id) as conn:
        rows = conn.execute("SELECT user_id FROM subscriptions WHERE user_id = %s", (a.id,))
        assert rows.fetchall() == []


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE subscriptions SET tier = 'pro' WHERE user_id = %(me)s",
        # Nobody extends their own failed-renewal grace period.
        "UPDATE subscriptions SET past_due_since = now() WHERE user_id = %(me)s",
        "INSERT INTO subscriptions (user_id, tier) VALUES (%(other)s, 'pro')",
        "DELETE FROM subscriptions WHERE user_id = %(me)s",
        "SELECT * FROM stripe_events",
        "INSERT INTO stripe_events (id, type, created_at, outcome, payload)"
        " VALUES ('evt_forged', 'x', now(), 'applied', '{}')",
        "SELECT * FROM billing_sessions",
    ],
)
def test_users_cannot_write_billing_or_read_events(
    as_role: Callable[..., Any], two_subscribers: tuple[Any, Any], statement: str
) -> None:
    a, b = two_subscribers
    with as_role("authenticated", b.id) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement, {"me": b.id, "other": uuid.uuid4()})


@pytest.mark.usefixtures("two_subscribers")
def test_anon_sees_nothing(as_role: Callable[..., Any]) -> None:
    with as_role("anon") as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM subscriptions")


def test_service_role_writes(
    as_role: Callable[..., Any], two_subscribers: tuple[Any, Any], runtime: Runtime
) -> None:
    a, b = two_subscribers
    with as_role("service_role") as conn:
        conn.execute("UPDATE subscriptions SET status = 'past_due' WHERE user_id = %s", (b.id,))
        row = conn.execute("SELECT count(*) AS n FROM stripe_events").fetchone()
        assert row is not None and row["n"] >= 1
        conn.commit()
    with runtime.db.transaction() as conn:
        row = conn.execute("SELECT status FROM subscriptions WHERE user_id = %s", (b.id,))
        assert row.fetchone() == {"status": "past_due"}
