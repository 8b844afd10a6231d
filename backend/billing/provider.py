"""The billing-provider interface and its two implementations.

`StripeBillingProvider` talks to Stripe through the official `stripe` library (StripeClient,
v1 namespace). `OfflineBillingProvider` is for the embedded default and tests, where Stripe's
hosted API cannot be reached: it hands out a page on this server that says no payment can be
taken here. It never charges anyone and never grants a subscription by itself — subscriptions
only change through signed webhook events (or an operator), whichever provider is in use.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Protocol

import stripe
from stripe.params.checkout import SessionCreateParams

logger = logging.getLogger(__name__)


class BillingProviderError(RuntimeError):
    """The payment provider failed or refused (network, configuration); not the user's fault."""


@dataclass(frozen=True)
class CheckoutRequest:
    user_id: uuid.UUID
    email: str | None
    price_id: str
    success_url: str
    cancel_url: str
    idempotency_key: str
    # Reuse the Stripe customer of an earlier subscription so the portal shows one history.
    customer_id: str | None = None


@dataclass(frozen=True)
class PortalRequest:
    user_id: uuid.UUID
    customer_id: str
    return_url: str
    idempotency_key: str


@dataclass(frozen=True)
class ProviderSession:
    """A hosted page the desktop app opens in the browser."""

    id: str
    url: str


class BillingProvider(Protocol):
    """Creates hosted checkout and customer-portal sessions. Qt-free, sync."""

    name: str

    def create_checkout_session(self, request: CheckoutRequest) -> ProviderSession: ...

    def create_portal_session(self, request: PortalRequest) -> ProviderSession: ...


# Metadata key that ties Stripe objects back to our user, read by the webhook handler.
USER_METADATA_KEY = "nojoin_user_id"


class StripeBillingProvider:
    """Stripe Checkout (subscription mode) and the Stripe customer portal."""

    name = "stripe"

    def __init__(self, client: stripe.StripeClient) -> None:
        self._client = client

    @classmethod
    def from_api_key(cls, api_key: str) -> StripeBillingProvider:
        return cls(stripe.StripeClient(api_key, max_network_retries=2))

    def create_checkout_session(self, request: CheckoutRequest) -> ProviderSession:
        user = str(request.user_id)
        params: SessionCreateParams = {
            "mode": "subscription",
            "line_items": [{"price": request.price_id, "quantity": 1}],
            "client_reference_id": user,
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "metadata": {USER_METADATA_KEY: user},
            # Subscription events carry no client_reference_id; the metadata lets the webhook
            # map them to the user even when they arrive before checkout.session.completed.
            "subscription_data": {"metadata": {USER_METADATA_KEY: user}},
            "allow_promotion_codes": True,
        }
        if request.customer_id:
            params["customer"] = request.customer_id
        elif request.email:
            params["customer_email"] = request.email
        try:
            session = self._client.v1.checkout.sessions.create(
                params=params,
                options={"idempotency_key": request.idempotency_key},
            )
        except stripe.StripeError as exc:
            logger.warning("Stripe checkout session failed: %s", exc.user_message or exc)
            raise BillingProviderError(f"Stripe refused the checkout session: {exc}") from exc
        if not session.url:
            raise BillingProviderError("Stripe returned a checkout session without a URL.")
        return ProviderSession(id=session.id, url=session.url)

    def create_portal_session(self, request: PortalRequest) -> ProviderSession:
        try:
            session = self._client.v1.billing_portal.sessions.create(
                params={"customer": request.customer_id, "return_url": request.return_url},
                options={"idempotency_key": request.idempotency_key},
            )
        except stripe.StripeError as exc:
            logger.warning("Stripe portal session failed: %s", exc.user_message or exc)
            raise BillingProviderError(f"Stripe refused the portal session: {exc}") from exc
        return ProviderSession(id=session.id, url=session.url)


class OfflineBillingProvider:
    """No payment provider reachable (embedded default, tests).

    Returns a URL of a page on this server that explains that payments are not available on
    this installation. Nothing is charged and no subscription is granted: an operator who wants
    to gate an offline installation grants tiers directly (`nojoin-billing grant`). Every session
    handed out is kept in `sessions` so tests and operators can see what was asked for.
    """

    name = "offline"

    def __init__(self, base_url: str = "") -> None:
        # "" -> server-relative URLs, which the service resolves against the request's base URL.
        self.base_url = base_url.rstrip("/")
        self._lock = threading.Lock()
        self.sessions: list[tuple[str, CheckoutRequest | PortalRequest]] = []

    def _record(self, prefix: str, request: CheckoutRequest | PortalRequest) -> str:
        session_id = f"{prefix}_offline_{uuid.uuid4().hex}"
        with self._lock:
            self.sessions.append((session_id, request))
        return session_id

    def create_checkout_session(self, request: CheckoutRequest) -> ProviderSession:
        session_id = self._record("cs", request)
        return ProviderSession(
            id=session_id, url=f"{self.base_url}/api/v1/billing/offline/checkout/{session_id}"
        )

    def create_portal_session(self, request: PortalRequest) -> ProviderSession:
        session_id = self._record("bps", request)
        return ProviderSession(
            id=session_id, url=f"{self.base_url}/api/v1/billing/offline/portal/{session_id}"
        )
