"""Stripe webhook events applied to subscriptions: each verified event exactly once, in the
request's transaction together with its effect (`StripeWebhookService`, `runtime.webhooks`);
older events never move a subscription backwards.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from backend.billing.provider import USER_METADATA_KEY
from backend.billing.repository import BillingRepository, Subscription
from backend.db import Connection
from backend.errors import BadRequestError

logger = logging.getLogger(__name__)

# Stripe's subscription statuses mapped onto ours (Pro features need active or trialing).
_STATUS_MAP = {
    "active": "active",
    "trialing": "trialing",
    "past_due": "past_due",
    "unpaid": "past_due",
    "incomplete": "past_due",
    "paused": "past_due",
    "canceled": "canceled",
    "incomplete_expired": "canceled",
}


class BadEventError(BadRequestError):
    """A correctly signed event whose content we cannot use (400, nothing is recorded)."""

    default_code = "bad_event"


class StripeWebhookService:
    """Applies verified Stripe events (the signature is checked by `VerifiedEventDep`)."""

    # --- Stripe events ----------------------------------------------------------------------

    def apply_event(self, conn: Connection, event: Mapping[str, Any]) -> str:
        """Apply one verified Stripe event exactly once; returns what happened (stored too)."""
        repo = BillingRepository.from_session(conn)
        event_id = _req_str(event, "id")
        event_type = _req_str(event, "type")
        created = event.get("created")
        if not isinstance(created, int) or isinstance(created, bool) or created <= 0:
            raise BadEventError("Event has no valid `created` time.")
        data = event.get("data")
        obj = data.get("object") if isinstance(data, Mapping) else None
        if not isinstance(obj, Mapping):
            raise BadEventError("Event has no data.object.")
        event_time = datetime.fromtimestamp(created, tz=UTC)
        if not repo.insert_event(event_id, event_type, event_time, dict(event)):
            logger.info("Stripe event %s already applied; skipped", event_id)
            return "duplicate"
        handler = self._handlers().get(event_type)
        user_id: uuid.UUID | None = None
        if handler is None:
            outcome = "ignored: unhandled type"
        else:
            outcome, user_id = handler(conn, obj, event_time, event_id)
        repo.set_event_outcome(event_id, outcome, user_id)
        logger.info("Stripe event %s (%s): %s", event_id, event_type, outcome)
        return outcome

    def _handlers(
        self,
    ) -> dict[
        str,
        Callable[[Connection, Mapping[str, Any], datetime, str], tuple[str, uuid.UUID | None]],
    ]:
        return {
            "checkout.session.completed": self._on_checkout_completed,
            "customer.subscription.created": self._on_subscription,
            "customer.subscription.updated": self._on_subscription,
            "customer.subscription.deleted": self._on_subscription,
            "invoice.paid": self._on_invoice_paid,
            "invoice.payment_failed": self._on_invoice_failed,
        }

    def _known_user(self, conn: Connection, raw: object) -> uuid.UUID | None:
        if not isinstance(raw, str):
            return None
        try:
            user_id = uuid.UUID(raw)
        except ValueError:
            return None
        return user_id if BillingRepository.from_session(conn).user_exists(user_id) else None

    def _on_checkout_completed(
        self, conn: Connection, obj: Mapping[str, Any], at: datetime, event_id: str
    ) -> tuple[str, uuid.UUID | None]:
        repo = BillingRepository.from_session(conn)
        if obj.get("mode") != "subscription":
            return "ignored: not a subscription checkout", None
        user_id = self._known_user(conn, obj.get("client_reference_id")) or self._known_user(
            conn, _metadata(obj).get(USER_METADATA_KEY)
        )
        if user_id is None:
            return "ignored: unknown user", None
        customer = _id_of(obj.get("customer"))
        subscription = _id_of(obj.get("subscription"))
        if not customer or not subscription:
            raise BadEventError("checkout.session.completed without customer or subscription.")
        sub = repo.lock_subscription(user_id)
        repo.clear_stripe_customer(customer, user_id)
        if sub.stripe_subscription_id == subscription and sub.stripe_status == "canceled":
            return "ignored: subscription already canceled", user_id
        if _is_stale(sub, at):
            # Only fill in the links a newer event may not have carried.
            repo.update_subscription(
                user_id,
                stripe_customer_id=sub.stripe_customer_id or customer,
                stripe_subscription_id=sub.stripe_subscription_id or subscription,
            )
            return "stale: linked ids only", user_id
        changes: dict[str, Any] = {
            "stripe_customer_id": customer,
            "stripe_subscription_id": subscription,
            "last_event_at": at,
            "last_event_id": event_id,
        }
        if obj.get("payment_status") in ("paid", "no_payment_required"):
            # Paid at checkout: Pro right away; the subscription events fill in the period.
            same = sub.stripe_subscription_id == subscription
            if not (same and sub.tier == "pro" and sub.status in ("active", "trialing")):
                changes.update(
                    tier="pro", status="active", stripe_status="active", past_due_since=None
                )
        repo.update_subscription(user_id, **changes)
        return "applied", user_id

    def _on_subscription(
        self, conn: Connection, obj: Mapping[str, Any], at: datetime, event_id: str
    ) -> tuple[str, uuid.UUID | None]:
        repo = BillingRepository.from_session(conn)
        subscription = _req_str(obj, "id")
        customer = _id_of(obj.get("customer"))
        stripe_status = obj.get("status")
        if stripe_status not in _STATUS_MAP:
            raise BadEventError(f"Unknown subscription status {stripe_status!r}.")
        status = _STATUS_MAP[stripe_status]
        user_id = self._known_user(
            conn, _metadata(obj).get(USER_METADATA_KEY)
        ) or repo.find_user_by_stripe_ids(subscription_id=subscription, customer_id=customer)
        if user_id is None:
            return "ignored: unknown customer", None
        sub = repo.lock_subscription(user_id)
        if sub.stripe_subscription_id == subscription and sub.stripe_status == "canceled":
            # Stripe never reactivates a canceled subscription; anything later is noise.
            return "ignored: subscription already canceled", user_id
        other_live = (
            sub.stripe_subscription_id not in (None, subscription)
            and sub.status != "canceled"
            and sub.tier == "pro"
        )
        if other_live and status == "canceled":
            return "ignored: not the current subscription", user_id
        period_start, period_end = _period(obj)
        if _is_stale(sub, at):
            # Status stays, but a later billing period is still news (periods only move on).
            if (
                sub.stripe_subscription_id == subscription
                and period_end is not None
                and (sub.current_period_end is None or period_end > sub.current_period_end)
            ):
                repo.update_subscription(
                    user_id,
                    current_period_start=period_start,
                    current_period_end=period_end,
                )
                return "stale: period advanced", user_id
            return "stale: ignored", user_id
        if customer:
            repo.clear_stripe_customer(customer, user_id)
        changes: dict[str, Any] = {
            "tier": "free" if status == "canceled" else "pro",
            "status": status,
            "stripe_status": stripe_status,
            "past_due_since": _past_due_since(sub, subscription, stripe_status, at),
            "stripe_subscription_id": subscription,
            "stripe_price_id": _price_id(obj) or sub.stripe_price_id,
            "cancel_at_period_end": bool(obj.get("cancel_at_period_end")),
            "last_event_at": at,
            "last_event_id": event_id,
        }
        if customer:
            changes["stripe_customer_id"] = customer
        if period_end is not None:
            changes.update(current_period_start=period_start, current_period_end=period_end)
        repo.update_subscription(user_id, **changes)
        return "applied", user_id

    def _invoice_target(
        self, conn: Connection, obj: Mapping[str, Any]
    ) -> tuple[uuid.UUID | None, str | None]:
        subscription, meta = _invoice_subscription(obj)
        customer = _id_of(obj.get("customer"))
        user_id = self._known_user(
            conn, meta.get(USER_METADATA_KEY)
        ) or BillingRepository.from_session(conn).find_user_by_stripe_ids(
            subscription_id=subscription, customer_id=customer
        )
        return user_id, subscription

    def _on_invoice_paid(
        self, conn: Connection, obj: Mapping[str, Any], at: datetime, event_id: str
    ) -> tuple[str, uuid.UUID | None]:
        repo = BillingRepository.from_session(conn)
        user_id, subscription = self._invoice_target(conn, obj)
        if subscription is None:
            return "ignored: not a subscription invoice", None
        if user_id is None:
            return "ignored: unknown customer", None
        sub = repo.lock_subscription(user_id)
        if sub.stripe_subscription_id not in (None, subscription):
            return "ignored: not the current subscription", user_id
        if sub.stripe_status == "canceled" and sub.stripe_subscription_id == subscription:
            return "ignored: subscription already canceled", user_id
        if _is_stale(sub, at):
            return "stale: ignored", user_id
        changes: dict[str, Any] = {
            "stripe_subscription_id": subscription,
            "last_event_at": at,
            "last_event_id": event_id,
        }
        customer = _id_of(obj.get("customer"))
        if customer and not sub.stripe_customer_id:
            repo.clear_stripe_customer(customer, user_id)
            changes["stripe_customer_id"] = customer
        if not (sub.tier == "pro" and sub.status in ("active", "trialing")):
            changes.update(tier="pro", status="active", stripe_status="active")
        # Paid: a failed renewal's grace period is over.
        changes["past_due_since"] = None
        repo.update_subscription(user_id, **changes)
        return "applied", user_id

    def _on_invoice_failed(
        self, conn: Connection, obj: Mapping[str, Any], at: datetime, event_id: str
    ) -> tuple[str, uuid.UUID | None]:
        repo = BillingRepository.from_session(conn)
        user_id, subscription = self._invoice_target(conn, obj)
        if subscription is None:
            return "ignored: not a subscription invoice", None
        if user_id is None:
            return "ignored: unknown customer", None
        sub = repo.lock_subscription(user_id)
        if sub.stripe_subscription_id != subscription:
            return "ignored: not the current subscription", user_id
        if _is_stale(sub, at):
            return "stale: ignored", user_id
        if sub.status not in ("active", "trialing"):
            return "ignored: not active", user_id
        # A renewal of a paid-up subscription failed: Stripe retries the card, and the grace
        # period runs from this event's time. A trial's first charge failing gets none.
        repo.update_subscription(
            user_id,
            status="past_due",
            stripe_status="past_due",
            past_due_since=at if sub.stripe_status == "active" else None,
            last_event_at=at,
            last_event_id=event_id,
        )
        return "applied", user_id


# --- payload helpers ----------------------------------------------------------------------


def _past_due_since(
    sub: Subscription, subscription: str, stripe_status: str, at: datetime
) -> datetime | None:
    """The row's `past_due_since` after a subscription event with `stripe_status` at `at`.

    A paid-up subscription (`active`) entering Stripe's `past_due` starts the grace clock;
    staying there keeps it (retries and repeated updates never restart it); paid, trialing or
    canceled clears it. A trial whose first payment fails was never paid and gets no grace.
    `unpaid`, `incomplete` and `paused` get none either (see Subscription.grace_until) and
    leave the recorded start as it is, so a later `past_due` cannot start a fresh period."""
    same = sub.stripe_subscription_id == subscription
    current = sub.past_due_since if same else None
    if _STATUS_MAP[stripe_status] in ("active", "trialing", "canceled"):
        return None
    if stripe_status == "past_due" and current is None:
        return at if same and sub.stripe_status == "active" else None
    return current


def _is_stale(sub: Subscription, at: datetime) -> bool:
    # Stripe's `created` has one-second resolution: events of the same second both apply, in
    # arrival order.
    return sub.last_event_at is not None and at < sub.last_event_at


def _req_str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value or len(value) > 255:
        raise BadEventError(f"Event field `{key}` is missing or invalid.")
    return value


def _id_of(value: object) -> str | None:
    """Stripe fields are an id string, or the expanded object with an `id`."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, Mapping):
        inner = value.get("id")
        return inner if isinstance(inner, str) and inner else None
    return None


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _ts(value: object) -> datetime | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return datetime.fromtimestamp(value, tz=UTC)
    return None


def _first_item(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    items = obj.get("items")
    data = items.get("data") if isinstance(items, Mapping) else None
    if isinstance(data, list) and data and isinstance(data[0], Mapping):
        return data[0]
    return {}


def _period(obj: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
    """Billing period: on the subscription (older API versions) or on its item (2025+)."""
    item = _first_item(obj)
    start = _ts(obj.get("current_period_start")) or _ts(item.get("current_period_start"))
    end = _ts(obj.get("current_period_end")) or _ts(item.get("current_period_end"))
    if start and end and end < start:
        raise BadEventError("Subscription period ends before it starts.")
    return start, end


def _price_id(obj: Mapping[str, Any]) -> str | None:
    return _id_of(_first_item(obj).get("price"))


def _invoice_subscription(obj: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any]]:
    """(subscription id, subscription metadata) of an invoice, old or new API shape."""
    parent = obj.get("parent")
    details = parent.get("subscription_details") if isinstance(parent, Mapping) else None
    if isinstance(details, Mapping):
        meta = details.get("metadata")
        return _id_of(details.get("subscription")), meta if isinstance(meta, Mapping) else {}
    meta = obj.get("subscription_details")
    sub_meta = meta.get("metadata") if isinstance(meta, Mapping) else None
    return _id_of(obj.get("subscription")), sub_meta if isinstance(sub_meta, Mapping) else {}
