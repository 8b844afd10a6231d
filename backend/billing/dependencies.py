"""Billing dependencies: the service (built once per runtime) and the verified webhook event."""

from __future__ import annotations

import hmac
import json
import logging
import threading
from typing import Annotated, Any

import stripe
from fastapi import Depends, Header, Request

from backend.billing.service import BillingService, build_provider
from backend.billing.settings import BillingSettings
from backend.errors import (
    BadRequestError,
    NotFoundError,
    ServiceUnavailableError,
    UnauthorizedError,
)
from backend.runtime import Runtime, RuntimeDep

logger = logging.getLogger(__name__)

EXTRAS_KEY = "billing"
_build_lock = threading.Lock()


def billing_service(runtime: Runtime) -> BillingService:
    """The runtime's BillingService, built from NOJOIN_* settings on first use. Tests (and
    the app factory) may put their own into `runtime.extras["billing"]` beforehand."""
    service = runtime.extras.get(EXTRAS_KEY)
    if service is None:
        with _build_lock:
            service = runtime.extras.get(EXTRAS_KEY)
            if service is None:
                settings = BillingSettings()
                service = BillingService(settings, build_provider(settings))
                runtime.extras[EXTRAS_KEY] = service
                logger.info(
                    "Billing: provider=%s, subscription required=%s",
                    service.provider.name,
                    settings.gate_enabled,
                )
    assert isinstance(service, BillingService)
    return service


def get_billing_service(runtime: RuntimeDep) -> BillingService:
    return billing_service(runtime)


BillingServiceDep = Annotated[BillingService, Depends(get_billing_service)]


def base_url(request: Request, runtime: RuntimeDep) -> str:
    return runtime.settings.public_url or str(request.base_url)


BaseURLDep = Annotated[str, Depends(base_url)]


def idempotency_key(
    key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> str | None:
    if key is None:
        return None
    key = key.strip()
    if not 1 <= len(key) <= 200 or not key.isprintable():
        raise BadRequestError(
            "Idempotency-Key must be 1-200 printable characters.", code="bad_idempotency_key"
        )
    return key


IdempotencyKeyDep = Annotated[str | None, Depends(idempotency_key)]


async def verified_stripe_event(request: Request, service: BillingServiceDep) -> dict[str, Any]:
    """The webhook body as a dict, after Stripe's signature and timestamp check (400 if not).

    Reads the raw bytes: the signature covers them exactly, so nothing may parse first."""
    secret = service.settings.stripe_webhook_secret
    if secret is None:
        raise ServiceUnavailableError(
            "Stripe webhooks are not configured on this server (NOJOIN_STRIPE_WEBHOOK_SECRET).",
            code="webhook_not_configured",
        )
    payload = await request.body()
    signature = request.headers.get("stripe-signature")
    try:
        stripe.Webhook.construct_event(
            payload,
            signature,
            secret.get_secret_value(),
            tolerance=service.settings.stripe_webhook_tolerance_seconds,
        )
    except stripe.SignatureVerificationError as exc:
        logger.warning("Stripe webhook refused: %s", exc.user_message or exc)
        raise BadRequestError("Invalid Stripe signature.", code="bad_signature") from exc
    except Exception as exc:  # noqa: BLE001 - the signature was checked first: bad content
        # Signed but not a Stripe event (not UTF-8, not JSON, not an object, a v2 event...).
        logger.warning("Stripe webhook body unusable: %r", exc)
        raise BadRequestError("Webhook body is not a Stripe event.", code="bad_event") from exc
    event = json.loads(payload)
    if not isinstance(event, dict):
        raise BadRequestError("Webhook body is not a Stripe event.", code="bad_event")
    return event


VerifiedEventDep = Annotated[dict[str, Any], Depends(verified_stripe_event)]


def operator_access(
    service: BillingServiceDep,
    authorization: Annotated[str | None, Header()] = None,
) -> None:
    """Operator endpoints: `Authorization: Bearer <NOJOIN_OPERATOR_API_KEY>`. Without a key
    configured they do not exist (404), so nothing is exposed by default; a wrong key is 401."""
    key = service.settings.operator_api_key
    if key is None:
        raise NotFoundError("Not Found", code="not_found")
    scheme, _, given = (authorization or "").partition(" ")
    expected = key.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise UnauthorizedError("This endpoint needs the operator API key.")


OperatorDep = Annotated[None, Depends(operator_access)]
