"""Billing rules: checkout/portal links, applying Stripe events, the tier gate and quotas.

Services never commit: the request's session (or the worker's transaction) does, so a
webhook's event id and its effect, and a job's quota slot and its row, commit together.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

from backend.billing import repository as repo
from backend.billing.provider import (
    USER_METADATA_KEY,
    BillingProvider,
    BillingProviderError,
    CheckoutRequest,
    OfflineBillingProvider,
    PortalRequest,
    StripeBillingProvider,
)
from backend.billing.repository import Subscription
from backend.billing.settings import BillingSettings
from backend.db import Connection
from backend.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    PayloadTooLargeError,
    ServiceUnavailableError,
    TooManyRequestsError,
)

logger = logging.getLogger(__name__)

# Messages the desktop app shows as they are (it adds an Upgrade / Manage button).
NEEDS_SUBSCRIPTION = (
    "Cloud processing needs a Nojoin Pro subscription. Choose Upgrade in Account to "
    "subscribe, or process this meeting on this computer instead."
)
PAYMENT_PROBLEM = (
    "Cloud processing is paused because the last payment for your Nojoin Pro subscription "
    "did not go through. Update your payment method under Account > Manage subscription, or "
    "process this meeting on this computer instead."
)

# Stripe statuses of a subscription that is still open with an unpaid invoice.
UNPAID_OPEN = frozenset({"past_due", "unpaid"})
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


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB"


@dataclass(frozen=True)
class SubscriptionView:
    tier: str
    status: str
    entitled: bool
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    can_manage: bool
    gate_enabled: bool
    provider: str
    quotas_enforced: bool
    jobs_today: int
    jobs_per_day: int
    max_file_bytes: int
    # End of the grace period while a failed renewal is retried (cloud processing still on).
    grace_until: datetime | None = None


@dataclass(frozen=True)
class Admission:
    """The tier a job was admitted under and the user's jobs today before this one."""

    tier: str
    jobs_today: int
    jobs_per_day: int
    # False: quotas are off on this server (the numbers above are then 0).
    enforced: bool


def build_provider(settings: BillingSettings) -> BillingProvider:
    if settings.provider_name == "stripe":
        if settings.stripe_api_key is None:
            raise RuntimeError("NOJOIN_BILLING_PROVIDER=stripe needs NOJOIN_STRIPE_API_KEY.")
        return StripeBillingProvider.from_api_key(settings.stripe_api_key.get_secret_value())
    return OfflineBillingProvider()


class BillingService:
    def __init__(self, settings: BillingSettings, provider: BillingProvider) -> None:
        self.settings = settings
        self.provider = provider

    # --- account view ---------------------------------------------------------------------

    def entitled(self, sub: Subscription | None, now: datetime | None = None) -> bool:
        """Pro features are on: paid up, trialing, or within a failed renewal's grace."""
        return sub is not None and sub.entitled_with_grace(self.settings.past_due_grace, now)

    def effective_tier(self, sub: Subscription | None) -> str:
        return "pro" if self.entitled(sub) else "free"

    def subscription_view(self, conn: Connection, user_id: uuid.UUID) -> SubscriptionView:
        sub = repo.get_subscription(conn, user_id)
        now = datetime.now(UTC)
        entitled = self.entitled(sub, now)
        tier = "pro" if entitled else "free"
        grace_until = sub.grace_until(self.settings.past_due_grace) if sub else None
        return SubscriptionView(
            tier=sub.tier if sub else "free",
            status=sub.status if sub else "active",
            entitled=entitled,
            current_period_start=sub.current_period_start if sub else None,
            current_period_end=sub.current_period_end if sub else None,
            cancel_at_period_end=sub.cancel_at_period_end if sub else False,
            can_manage=bool(sub and sub.stripe_customer_id),
            gate_enabled=self.settings.gate_enabled,
            provider=self.provider.name,
            quotas_enforced=self.settings.quotas_enabled,
            jobs_today=repo.jobs_today(conn, user_id),
            jobs_per_day=self.settings.jobs_per_day(tier),
            max_file_bytes=self.settings.max_file_bytes(tier),
            grace_until=grace_until if grace_until is not None and now < grace_until else None,
        )

    # --- checkout / portal ------------------------------------------------------------------

    def _absolute(self, url: str, base_url: str) -> str:
        return urljoin(base_url.rstrip("/") + "/", url)

    def create_checkout_session(
        self,
        conn: Connection,
        user_id: uuid.UUID,
        *,
        base_url: str,
        idempotency_key: str | None,
    ) -> str:
        key = idempotency_key or uuid.uuid4().hex
        existing = repo.find_session_url(conn, user_id, "checkout", key)
        if existing:
            return existing
        sub = repo.get_subscription(conn, user_id)
        if sub is not None and sub.entitled and sub.stripe_subscription_id:
            raise ConflictError(
                "You already have an active Nojoin Pro subscription. Use Manage subscription "
                "to change or cancel it.",
                code="already_subscribed",
            )
        if sub is not None and sub.stripe_subscription_id and sub.stripe_status in UNPAID_OPEN:
            # Stripe still holds this subscription open and retries its invoice: a second
            # checkout would start a second subscription and bill the user twice.
            raise ConflictError(
                "Your last payment did not go through. Use Manage subscription to update your "
                "payment method; your subscription continues once it is paid.",
                code="payment_problem",
            )
        price = self.settings.stripe_price_id
        if price is None:
            if self.provider.name == "stripe":
                raise ServiceUnavailableError(
                    "Subscriptions are not set up on this server yet (no price configured). "
                    "Please try again later.",
                    code="billing_not_configured",
                )
            price = "offline"
        request = CheckoutRequest(
            user_id=user_id,
            email=repo.user_email(conn, user_id),
            price_id=price,
            success_url=self.settings.checkout_success_url
            or self._absolute("/api/v1/billing/return?result=success", base_url),
            cancel_url=self.settings.checkout_cancel_url
            or self._absolute("/api/v1/billing/return?result=cancel", base_url),
            # Namespaced per user: two users can never share a Stripe idempotency key.
            idempotency_key=f"nojoin-checkout-{user_id}-{key}",
            customer_id=sub.stripe_customer_id if sub else None,
        )
        try:
            session = self.provider.create_checkout_session(request)
        except BillingProviderError as exc:
            raise ServiceUnavailableError(
                "The payment service could not start checkout. Please try again in a minute.",
                code="billing_provider_failed",
            ) from exc
        return repo.insert_session(
            conn,
            session_id=session.id,
            user_id=user_id,
            kind="checkout",
            provider=self.provider.name,
            idempotency_key=key,
            url=self._absolute(session.url, base_url),
        )

    def create_portal_session(
        self,
        conn: Connection,
        user_id: uuid.UUID,
        *,
        base_url: str,
        idempotency_key: str | None,
    ) -> str:
        key = idempotency_key or uuid.uuid4().hex
        existing = repo.find_session_url(conn, user_id, "portal", key)
        if existing:
            return existing
        sub = repo.get_subscription(conn, user_id)
        if sub is None or not sub.stripe_customer_id:
            raise ConflictError(
                "There is no subscription to manage yet. Choose Upgrade to subscribe first.",
                code="no_billing_account",
            )
        request = PortalRequest(
            user_id=user_id,
            customer_id=sub.stripe_customer_id,
            return_url=self.settings.portal_return_url
            or self._absolute("/api/v1/billing/return?result=portal", base_url),
            idempotency_key=f"nojoin-portal-{user_id}-{key}",
        )
        try:
            session = self.provider.create_portal_session(request)
        except BillingProviderError as exc:
            raise ServiceUnavailableError(
                "The payment service could not open the subscription page. Please try again "
                "in a minute.",
                code="billing_provider_failed",
            ) from exc
        return repo.insert_session(
            conn,
            session_id=session.id,
            user_id=user_id,
            kind="portal",
            provider=self.provider.name,
            idempotency_key=key,
            url=self._absolute(session.url, base_url),
        )

    # --- tier gate and quotas ---------------------------------------------------------------

    def check_entitlement(
        self, conn: Connection, user_id: uuid.UUID, file_size: int | None = None
    ) -> str:
        """Gate and size check without reserving anything (cheap, before an upload starts).

        Returns the tier the user's limits come from."""
        sub = repo.get_subscription(conn, user_id)
        tier = self.effective_tier(sub)
        if self.settings.gate_enabled and tier != "pro":
            past_due = sub is not None and sub.tier == "pro" and sub.status == "past_due"
            raise ForbiddenError(
                PAYMENT_PROBLEM if past_due else NEEDS_SUBSCRIPTION,
                code="payment_required" if past_due else "subscription_required",
            )
        if not self.settings.quotas_enabled:
            return tier
        limit = self.settings.max_file_bytes(tier)
        if file_size is not None and file_size > limit:
            hint = (
                " Upgrade to Pro for larger files, or process it on this computer."
                if tier == "free"
                else " Split the recording, or process it on this computer."
            )
            raise PayloadTooLargeError(
                f"This file is {_mb(file_size)}; your plan allows files up to {_mb(limit)} "
                f"for cloud processing.{hint}",
                code="file_too_large_for_plan",
            )
        return tier

    def precheck(self, conn: Connection, user_id: uuid.UUID, file_size: int | None) -> None:
        """Everything `admit_job` checks, reserving nothing: refuse before a long upload."""
        tier = self.check_entitlement(conn, user_id, file_size)
        if self.settings.quotas_enabled:
            self._check_daily(conn, tier, repo.jobs_today(conn, user_id))

    def _check_daily(self, conn: Connection, tier: str, used: int) -> int:
        limit = self.settings.jobs_per_day(tier)
        if used >= limit:
            retry_after = repo.seconds_until_utc_midnight(conn)
            hint = " Upgrade to Pro for more." if tier == "free" else ""
            raise TooManyRequestsError(
                f"You have used all {limit} cloud processing jobs for today; the limit resets "
                f"at midnight UTC.{hint} You can process this meeting on this computer now.",
                retry_after=retry_after,
                code="daily_job_quota",
            )
        return limit

    def admit_job(
        self, conn: Connection, user_id: uuid.UUID, file_size: int | None = None
    ) -> Admission:
        """Tier gate + file size + jobs-per-day, in the caller's transaction.

        Takes the user's quota lock (held until the transaction ends) and counts today's jobs:
        called in the transaction that inserts the job, parallel submissions of one user are
        admitted one at a time and the N+1-th of the day is refused."""
        tier = self.check_entitlement(conn, user_id, file_size)
        if not self.settings.quotas_enabled:
            return Admission(tier=tier, jobs_today=0, jobs_per_day=0, enforced=False)
        repo.lock_user_quota(conn, user_id)
        used = repo.jobs_today(conn, user_id)
        limit = self._check_daily(conn, tier, used)
        return Admission(tier=tier, jobs_today=used, jobs_per_day=limit, enforced=True)

    # --- Stripe events ----------------------------------------------------------------------

    def apply_event(self, conn: Connection, event: Mapping[str, Any]) -> str:
        """Apply one verified Stripe event exactly once; returns what happened (stored too)."""
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
        if not repo.insert_event(conn, event_id, event_type, event_time, dict(event)):
            logger.info("Stripe event %s already applied; skipped", event_id)
            return "duplicate"
        handler = self._handlers().get(event_type)
        user_id: uuid.UUID | None = None
        if handler is None:
            outcome = "ignored: unhandled type"
        else:
            outcome, user_id = handler(conn, obj, event_time, event_id)
        repo.set_event_outcome(conn, event_id, outcome, user_id)
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
        return user_id if repo.user_exists(conn, user_id) else None

    def _on_checkout_completed(
        self, conn: Connection, obj: Mapping[str, Any], at: datetime, event_id: str
    ) -> tuple[str, uuid.UUID | None]:
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
        sub = repo.lock_subscription(conn, user_id)
        repo.clear_stripe_customer(conn, customer, user_id)
        if sub.stripe_subscription_id == subscription and sub.stripe_status == "canceled":
            return "ignored: subscription already canceled", user_id
        if _is_stale(sub, at):
            # Only fill in the links a newer event may not have carried.
            repo.update_subscription(
                conn,
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
        repo.update_subscription(conn, user_id, **changes)
        return "applied", user_id

    def _on_subscription(
        self, conn: Connection, obj: Mapping[str, Any], at: datetime, event_id: str
    ) -> tuple[str, uuid.UUID | None]:
        subscription = _req_str(obj, "id")
        customer = _id_of(obj.get("customer"))
        stripe_status = obj.get("status")
        if stripe_status not in _STATUS_MAP:
            raise BadEventError(f"Unknown subscription status {stripe_status!r}.")
        status = _STATUS_MAP[stripe_status]
        user_id = self._known_user(
            conn, _metadata(obj).get(USER_METADATA_KEY)
        ) or repo.find_user_by_stripe_ids(conn, subscription_id=subscription, customer_id=customer)
        if user_id is None:
            return "ignored: unknown customer", None
        sub = repo.lock_subscription(conn, user_id)
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
                    conn,
                    user_id,
                    current_period_start=period_start,
                    current_period_end=period_end,
                )
                return "stale: period advanced", user_id
            return "stale: ignored", user_id
        if customer:
            repo.clear_stripe_customer(conn, customer, user_id)
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
        repo.update_subscription(conn, user_id, **changes)
        return "applied", user_id

    def _invoice_target(
        self, conn: Connection, obj: Mapping[str, Any]
    ) -> tuple[uuid.UUID | None, str | None]:
        subscription, meta = _invoice_subscription(obj)
        customer = _id_of(obj.get("customer"))
        user_id = self._known_user(
            conn, meta.get(USER_METADATA_KEY)
        ) or repo.find_user_by_stripe_ids(conn, subscription_id=subscription, customer_id=customer)
        return user_id, subscription

    def _on_invoice_paid(
        self, conn: Connection, obj: Mapping[str, Any], at: datetime, event_id: str
    ) -> tuple[str, uuid.UUID | None]:
        user_id, subscription = self._invoice_target(conn, obj)
        if subscription is None:
            return "ignored: not a subscription invoice", None
        if user_id is None:
            return "ignored: unknown customer", None
        sub = repo.lock_subscription(conn, user_id)
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
            repo.clear_stripe_customer(conn, customer, user_id)
            changes["stripe_customer_id"] = customer
        if not (sub.tier == "pro" and sub.status in ("active", "trialing")):
            changes.update(tier="pro", status="active", stripe_status="active")
        # Paid: a failed renewal's grace period is over.
        changes["past_due_since"] = None
        repo.update_subscription(conn, user_id, **changes)
        return "applied", user_id

    def _on_invoice_failed(
        self, conn: Connection, obj: Mapping[str, Any], at: datetime, event_id: str
    ) -> tuple[str, uuid.UUID | None]:
        user_id, subscription = self._invoice_target(conn, obj)
        if subscription is None:
            return "ignored: not a subscription invoice", None
        if user_id is None:
            return "ignored: unknown customer", None
        sub = repo.lock_subscription(conn, user_id)
        if sub.stripe_subscription_id != subscription:
            return "ignored: not the current subscription", user_id
        if _is_stale(sub, at):
            return "stale: ignored", user_id
        if sub.status not in ("active", "trialing"):
            return "ignored: not active", user_id
        # A renewal of a paid-up subscription failed: Stripe retries the card, and the grace
        # period runs from this event's time. A trial's first charge failing gets none.
        repo.update_subscription(
            conn,
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
