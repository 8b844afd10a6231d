"""Billing rules for an account: the subscription view, checkout/portal links, the tier gate
and quotas (`BillingService`, `runtime.billing`). Stripe's webhook events are applied in
`webhooks.py`.

Services never commit: the request's session (or the worker's transaction) does, so a job's
quota slot and its row commit together.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urljoin

from backend.billing.provider import (
    BillingProvider,
    BillingProviderError,
    CheckoutRequest,
    OfflineBillingProvider,
    PortalRequest,
    ProviderSession,
    StripeBillingProvider,
)
from backend.billing.repository import BillingRepository, Subscription
from backend.billing.settings import BillingSettings
from backend.db import Connection
from backend.errors import (
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
    """One per Runtime (`runtime.billing`, `BillingServiceDep`); it is also the jobs domain's
    admission check (tier gate + quotas, see backend/jobs/admission.py)."""

    def __init__(self, settings: BillingSettings, provider: BillingProvider) -> None:
        self.settings = settings
        self.provider = provider

    @classmethod
    def from_settings(cls, settings: BillingSettings) -> BillingService:
        """With the provider the settings name (Stripe, or the offline one)."""
        return cls(settings, build_provider(settings))

    # --- account view ---------------------------------------------------------------------

    def entitled(self, sub: Subscription | None, now: datetime | None = None) -> bool:
        """Pro features are on: paid up, trialing, or within a failed renewal's grace."""
        return sub is not None and sub.entitled_with_grace(self.settings.past_due_grace, now)

    def effective_tier(self, sub: Subscription | None) -> str:
        return "pro" if self.entitled(sub) else "free"

    def subscription_view(self, conn: Connection, user_id: uuid.UUID) -> SubscriptionView:
        repo = BillingRepository.from_session(conn)
        sub = repo.get_subscription(user_id)
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
            jobs_today=repo.jobs_today(user_id),
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
        repo = BillingRepository.from_session(conn)
        key = idempotency_key or uuid.uuid4().hex
        existing = repo.find_session_url(user_id, "checkout", key)
        if existing:
            return existing
        sub = repo.get_subscription(user_id)
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
            email=repo.user_email(user_id),
            price_id=price,
            success_url=self.settings.checkout_success_url
            or self._absolute("/api/v1/billing/return?result=success", base_url),
            cancel_url=self.settings.checkout_cancel_url
            or self._absolute("/api/v1/billing/return?result=cancel", base_url),
            # Namespaced per user: two users can never share a Stripe idempotency key.
            idempotency_key=f"nojoin-checkout-{user_id}-{key}",
            customer_id=sub.stripe_customer_id if sub else None,
        )
        return self._hand_out(
            repo,
            user_id,
            "checkout",
            key,
            base_url,
            lambda: self.provider.create_checkout_session(request),
            "The payment service could not start checkout. Please try again in a minute.",
        )

    def create_portal_session(
        self,
        conn: Connection,
        user_id: uuid.UUID,
        *,
        base_url: str,
        idempotency_key: str | None,
    ) -> str:
        repo = BillingRepository.from_session(conn)
        key = idempotency_key or uuid.uuid4().hex
        existing = repo.find_session_url(user_id, "portal", key)
        if existing:
            return existing
        sub = repo.get_subscription(user_id)
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
        return self._hand_out(
            repo,
            user_id,
            "portal",
            key,
            base_url,
            lambda: self.provider.create_portal_session(request),
            "The payment service could not open the subscription page. Please try again "
            "in a minute.",
        )

    def _hand_out(
        self,
        repo: BillingRepository,
        user_id: uuid.UUID,
        kind: Literal["checkout", "portal"],
        key: str,
        base_url: str,
        create: Callable[[], ProviderSession],
        failure: str,
    ) -> str:
        """Create the provider's session and record it under the idempotency key; a provider
        failure is a 503 with `failure` as the message."""
        try:
            session = create()
        except BillingProviderError as exc:
            raise ServiceUnavailableError(failure, code="billing_provider_failed") from exc
        return repo.insert_session(
            session_id=session.id,
            user_id=user_id,
            kind=kind,
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
        sub = BillingRepository.from_session(conn).get_subscription(user_id)
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

    def check_can_submit(self, conn: Connection, user_id: uuid.UUID, file_size: int | None) -> None:
        """Everything `admit_job` checks, reserving nothing: refuse before a long upload
        (the jobs domain's `JobAdmission.check_can_submit`)."""
        tier = self.check_entitlement(conn, user_id, file_size)
        if self.settings.quotas_enabled:
            self._check_daily(conn, tier, BillingRepository.from_session(conn).jobs_today(user_id))

    def _check_daily(self, conn: Connection, tier: str, used: int) -> int:
        limit = self.settings.jobs_per_day(tier)
        if used >= limit:
            retry_after = BillingRepository.from_session(conn).seconds_until_utc_midnight()
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
        repo = BillingRepository.from_session(conn)
        tier = self.check_entitlement(conn, user_id, file_size)
        if not self.settings.quotas_enabled:
            return Admission(tier=tier, jobs_today=0, jobs_per_day=0, enforced=False)
        repo.lock_user_quota(user_id)
        used = repo.jobs_today(user_id)
        limit = self._check_daily(conn, tier, used)
        return Admission(tier=tier, jobs_today=used, jobs_per_day=limit, enforced=True)

    def admit(self, conn: Connection, user_id: uuid.UUID, size: int) -> None:
        """The jobs domain's `JobAdmission.admit`: `admit_job` in the job insert's transaction."""
        self.admit_job(conn, user_id, size)
