"""All billing SQL: subscriptions, applied Stripe events, handed-out sessions, day counters,
and the GPU-usage summary, in `BillingRepository` (built per session; never commits)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from psycopg.types.json import Jsonb

from backend.db import Repository

ENTITLED_STATUSES = frozenset({"active", "trialing"})


@dataclass(frozen=True)
class Subscription:
    user_id: uuid.UUID
    tier: str
    status: str
    stripe_status: str | None
    stripe_customer_id: str | None
    stripe_subscription_id: str | None
    stripe_price_id: str | None
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    last_event_at: datetime | None
    last_event_id: str | None
    updated_at: datetime
    # When a paid subscription entered Stripe's `past_due` (a renewal failed, Stripe retries).
    past_due_since: datetime | None = None

    @property
    def entitled(self) -> bool:
        """Pro features (cloud processing) are on: a Pro plan that is paid up or trialing."""
        if self.tier != "pro" or self.status not in ENTITLED_STATUSES:
            return False
        # Stripe ends its subscriptions with an event; a manual grant ends by its date.
        if self.stripe_status == "manual" and self.current_period_end is not None:
            return self.current_period_end > datetime.now(UTC)
        return True

    def grace_until(self, grace: timedelta) -> datetime | None:
        """End of the failed-renewal grace period, or None if this subscription has none.

        Only Stripe's `past_due` (a renewal of a paid subscription failed and Stripe is still
        retrying) gets grace; `unpaid` (Stripe gave up), `incomplete` (never paid) and
        `paused` do not."""
        if (
            grace <= timedelta(0)
            or self.tier != "pro"
            or self.status != "past_due"
            or self.stripe_status != "past_due"
            or self.past_due_since is None
        ):
            return None
        return self.past_due_since + grace

    def entitled_with_grace(self, grace: timedelta, now: datetime | None = None) -> bool:
        """`entitled`, or inside the grace period of a failed renewal."""
        if self.entitled:
            return True
        until = self.grace_until(grace)
        return until is not None and (now or datetime.now(UTC)) < until


_SUB_COLUMNS = (
    "user_id, tier, status, stripe_status, stripe_customer_id, stripe_subscription_id,"
    " stripe_price_id, current_period_start, current_period_end, cancel_at_period_end,"
    " last_event_at, last_event_id, updated_at, past_due_since"
)


def _sub(row: dict[str, Any] | None) -> Subscription | None:
    return Subscription(**row) if row else None


_UPDATABLE = frozenset(
    {
        "tier",
        "status",
        "stripe_status",
        "stripe_customer_id",
        "stripe_subscription_id",
        "stripe_price_id",
        "current_period_start",
        "current_period_end",
        "cancel_at_period_end",
        "last_event_at",
        "last_event_id",
        "past_due_since",
    }
)


# Namespace of the per-user advisory locks that serialise quota checks (any constant works).
_QUOTA_LOCK_NAMESPACE = 0x4E4A5154  # "NJQT"


Granularity = Literal["day", "week", "month"]


class BillingRepository(Repository):
    """Subscriptions, Stripe events and checkout sessions, quotas and usage over one session."""

    def user_exists(self, user_id: uuid.UUID) -> bool:
        return (
            self.session.execute("SELECT 1 FROM auth.users WHERE id = %s", (user_id,)).fetchone()
            is not None
        )

    def user_id_by_email(self, email: str) -> uuid.UUID | None:
        row = self.session.execute(
            "SELECT id FROM auth.users WHERE lower(email) = lower(%s)", (email,)
        ).fetchone()
        return uuid.UUID(str(row["id"])) if row else None

    def user_email(self, user_id: uuid.UUID) -> str | None:
        row = self.session.execute(
            "SELECT email FROM auth.users WHERE id = %s", (user_id,)
        ).fetchone()
        return row["email"] if row else None

    def get_subscription(self, user_id: uuid.UUID) -> Subscription | None:
        row = self.session.execute(
            f"SELECT {_SUB_COLUMNS} FROM public.subscriptions WHERE user_id = %s", (user_id,)
        ).fetchone()
        return _sub(row)

    def lock_subscription(self, user_id: uuid.UUID) -> Subscription:
        """The user's row, created as `free` if missing, locked until the transaction ends, so
        concurrent webhook deliveries for one user apply one after the other."""
        self.session.execute(
            "INSERT INTO public.subscriptions (user_id) VALUES (%s) ON CONFLICT (user_id) DO NOTHING",
            (user_id,),
        )
        row = self.session.execute(
            f"SELECT {_SUB_COLUMNS} FROM public.subscriptions WHERE user_id = %s FOR UPDATE",
            (user_id,),
        ).fetchone()
        sub = _sub(row)
        assert sub is not None
        return sub

    def find_user_by_stripe_ids(
        self, *, subscription_id: str | None, customer_id: str | None
    ) -> uuid.UUID | None:
        """The user a Stripe subscription or customer belongs to (subscription id wins)."""
        if subscription_id:
            row = self.session.execute(
                "SELECT user_id FROM public.subscriptions WHERE stripe_subscription_id = %s",
                (subscription_id,),
            ).fetchone()
            if row:
                return uuid.UUID(str(row["user_id"]))
        if customer_id:
            row = self.session.execute(
                "SELECT user_id FROM public.subscriptions WHERE stripe_customer_id = %s",
                (customer_id,),
            ).fetchone()
            if row:
                return uuid.UUID(str(row["user_id"]))
        return None

    def update_subscription(self, user_id: uuid.UUID, **changes: Any) -> None:
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise ValueError(f"Not subscription columns: {sorted(unknown)}")
        if not changes:
            return
        # Column names come from the fixed allow-list above, never from input.
        assignments = ", ".join(f"{column} = %({column})s" for column in changes)
        self.session.execute(
            f"UPDATE public.subscriptions SET {assignments}, updated_at = now()"
            " WHERE user_id = %(user_id)s",
            {**changes, "user_id": user_id},
        )

    def clear_stripe_customer(self, customer_id: str, keep_user: uuid.UUID) -> None:
        """A Stripe customer belongs to one user; unlink it from anyone else (unique column)."""
        self.session.execute(
            "UPDATE public.subscriptions SET stripe_customer_id = NULL, updated_at = now()"
            " WHERE stripe_customer_id = %s AND user_id <> %s",
            (customer_id, keep_user),
        )

    # --- Stripe events -----------------------------------------------------------------------

    def insert_event(
        self, event_id: str, event_type: str, created_at: datetime, payload: Any
    ) -> bool:
        """Record an event as applied; False if it was applied before (the replay is skipped).

        A concurrent delivery of the same event waits on the unique key until the first one's
        transaction ends, then sees the conflict: the effect happens exactly once."""
        row = self.session.execute(
            "INSERT INTO public.stripe_events (id, type, created_at, outcome, payload)"
            " VALUES (%s, %s, %s, 'pending', %s) ON CONFLICT (id) DO NOTHING RETURNING id",
            (event_id, event_type, created_at, Jsonb(payload)),
        ).fetchone()
        return row is not None

    def set_event_outcome(self, event_id: str, outcome: str, user_id: uuid.UUID | None) -> None:
        self.session.execute(
            "UPDATE public.stripe_events SET outcome = %s, user_id = %s WHERE id = %s",
            (outcome, user_id, event_id),
        )

    def get_event_outcome(self, event_id: str) -> str | None:
        row = self.session.execute(
            "SELECT outcome FROM public.stripe_events WHERE id = %s", (event_id,)
        ).fetchone()
        return row["outcome"] if row else None

    # --- checkout / portal sessions ----------------------------------------------------------

    def find_session_url(self, user_id: uuid.UUID, kind: str, idempotency_key: str) -> str | None:
        row = self.session.execute(
            "SELECT url FROM public.billing_sessions"
            " WHERE user_id = %s AND kind = %s AND idempotency_key = %s",
            (user_id, kind, idempotency_key),
        ).fetchone()
        return row["url"] if row else None

    def insert_session(
        self,
        *,
        session_id: str,
        user_id: uuid.UUID,
        kind: Literal["checkout", "portal"],
        provider: str,
        idempotency_key: str,
        url: str,
    ) -> str:
        """Store the session; if a parallel request with the same key won, return its URL."""
        row = self.session.execute(
            "INSERT INTO public.billing_sessions (id, user_id, kind, provider, idempotency_key, url)"
            " VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (user_id, kind, idempotency_key) DO NOTHING RETURNING url",
            (session_id, user_id, kind, provider, idempotency_key, url),
        ).fetchone()
        if row:
            return str(row["url"])
        existing = self.find_session_url(user_id, kind, idempotency_key)
        assert existing is not None
        return existing

    # --- quotas ---------------------------------------------------------------------------

    def lock_user_quota(self, user_id: uuid.UUID) -> None:
        """Serialise job admission per user until this transaction ends.

        The count that follows then sees every job committed by a parallel submission of the same
        user, and this transaction's own insert is committed before the next one counts: parallel
        requests cannot overshoot the daily limit."""
        self.session.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_QUOTA_LOCK_NAMESPACE, str(user_id))
        )

    def jobs_today(self, user_id: uuid.UUID) -> int:
        """Jobs the user submitted since midnight UTC (any status: a submission is a use)."""
        row = self.session.execute(
            "SELECT count(*)::int AS n FROM public.jobs"
            " WHERE user_id = %s AND created_at >= date_trunc('day', now() AT TIME ZONE 'UTC')"
            " AT TIME ZONE 'UTC'",
            (user_id,),
        ).fetchone()
        assert row is not None
        return int(row["n"])

    def seconds_until_utc_midnight(self) -> int:
        row = self.session.execute(
            "SELECT ceil(extract(epoch FROM (date_trunc('day', now() AT TIME ZONE 'UTC')"
            " + interval '1 day') - (now() AT TIME ZONE 'UTC')))::int AS s"
        ).fetchone()
        assert row is not None
        return max(1, int(row["s"]))

    # --- operator usage summary -----------------------------------------------------------

    def usage_summary(
        self,
        *,
        start: datetime,
        end: datetime,
        granularity: Granularity = "month",
        user_id: uuid.UUID | None = None,
    ) -> list[dict[str, Any]]:
        """GPU usage per user and period (UTC) from gpu_usage_logs, in [start, end)."""
        if granularity not in ("day", "week", "month"):
            raise ValueError(f"granularity must be day, week or month, not {granularity!r}")
        rows = self.session.execute(
            "SELECT g.user_id, u.email, coalesce(s.tier, 'free') AS tier,"
            "  (date_trunc(%(g)s, g.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"
            "    AS period_start,"
            "  count(*)::int AS jobs,"
            "  sum(g.duration_seconds)::float8 AS gpu_seconds,"
            "  sum(g.audio_seconds)::float8 AS audio_seconds"
            " FROM public.gpu_usage_logs g"
            " LEFT JOIN auth.users u ON u.id = g.user_id"
            " LEFT JOIN public.subscriptions s ON s.user_id = g.user_id"
            " WHERE g.created_at >= %(start)s AND g.created_at < %(end)s"
            "   AND (%(user)s::uuid IS NULL OR g.user_id = %(user)s::uuid)"
            " GROUP BY g.user_id, u.email, s.tier, period_start"
            " ORDER BY period_start, gpu_seconds DESC, g.user_id",
            {"g": granularity, "start": start, "end": end, "user": user_id},
        ).fetchall()
        return [dict(r) for r in rows]
