"""Billing dependencies: the services (Runtime fields), the verified webhook event, the
idempotency key and operator access."""

from __future__ import annotations

import hmac
import json
import logging
from typing import Annotated, Any

import stripe
from fastapi import Depends, Header, Request

from backend.billing.service import BillingService
from backend.billing.webhooks import StripeWebhookService
from backend.errors import (
    BadRequestError,
    NotFoundError,
    ServiceUnavailableError,
    UnauthorizedError,
)
from backend.runtime import RuntimeDep

logger = logging.getLogger(__name__)


async def get_billing_service(runtime: RuntimeDep) -> BillingService:
    return runtime.billing


async def get_webhook_service(runtime: RuntimeDep) -> StripeWebhookService:
    return runtime.webhooks


BillingServiceDep = Annotated[BillingService, Depends(get_billing_service)]
WebhookServiceDep = Annotated[StripeWebhookService, Depends(get_webhook_service)]


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
