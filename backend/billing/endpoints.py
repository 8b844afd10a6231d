"""Billing API: checkout and portal links, the account's subscription, the Stripe webhook,
the operator's usage report, and the small pages the browser lands on."""

from __future__ import annotations

import html
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from backend.auth.dependencies import CurrentUserId
from backend.billing.dependencies import (
    BillingServiceDep,
    IdempotencyKeyDep,
    OperatorDep,
    VerifiedEventDep,
    WebhookServiceDep,
)
from backend.billing.repository import BillingRepository
from backend.billing.schemas import (
    SessionURL,
    SubscriptionOut,
    UsageReport,
    UsageRow,
    WebhookAck,
)
from backend.db import SessionDep
from backend.errors import BadRequestError, NotFoundError
from backend.runtime import BaseURLDep

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/billing", tags=["billing"])


@router.post("/create-checkout-session", response_model=SessionURL)
def create_checkout_session(
    user_id: CurrentUserId,
    session: SessionDep,
    service: BillingServiceDep,
    base: BaseURLDep,
    key: IdempotencyKeyDep,
) -> SessionURL:
    """Stripe Checkout for the Pro plan; open the returned URL in the browser. Send an
    `Idempotency-Key` to get the same session back when retrying."""
    url = service.create_checkout_session(session, user_id, base_url=base, idempotency_key=key)
    return SessionURL(url=url)


@router.post("/create-portal-session", response_model=SessionURL)
def create_portal_session(
    user_id: CurrentUserId,
    session: SessionDep,
    service: BillingServiceDep,
    base: BaseURLDep,
    key: IdempotencyKeyDep,
) -> SessionURL:
    """The Stripe customer portal (change card, see invoices, cancel)."""
    url = service.create_portal_session(session, user_id, base_url=base, idempotency_key=key)
    return SessionURL(url=url)


@router.get("/subscription", response_model=SubscriptionOut)
def get_subscription(
    user_id: CurrentUserId, session: SessionDep, service: BillingServiceDep
) -> SubscriptionOut:
    view = service.subscription_view(session, user_id)
    return SubscriptionOut.model_validate(view, from_attributes=True)


@router.post("/webhook", response_model=WebhookAck)
def stripe_webhook(
    event: VerifiedEventDep, session: SessionDep, webhooks: WebhookServiceDep
) -> WebhookAck:
    """Stripe events, verified by signature; each applied once (replays answer 200)."""
    return WebhookAck(outcome=webhooks.apply_event(session, event))


@router.get("/admin/usage", response_model=UsageReport)
def usage_report(
    _operator: OperatorDep,
    session: SessionDep,
    start: datetime | None = None,
    end: datetime | None = None,
    granularity: Literal["day", "week", "month"] = "month",
    user_id: uuid.UUID | None = None,
) -> UsageReport:
    """Operator: GPU usage per user and period from gpu_usage_logs (default: last 30 days)."""
    end_at = _utc(end) if end else datetime.now(UTC)
    start_at = _utc(start) if start else end_at - timedelta(days=30)
    if start_at >= end_at:
        raise BadRequestError("`start` must be before `end`.", code="bad_period")
    rows = BillingRepository.from_session(session).usage_summary(
        start=start_at, end=end_at, granularity=granularity, user_id=user_id
    )
    return UsageReport(
        start=start_at,
        end=end_at,
        granularity=granularity,
        rows=[UsageRow.model_validate(r) for r in rows],
    )


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --- pages the browser lands on ---------------------------------------------------------

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Nojoin - {title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;
padding:0 1rem;line-height:1.5;color:#222}}h1{{font-size:1.4rem}}</style></head>
<body><h1>{title}</h1>{body}</body></html>"""


def _page(title: str, *paragraphs: str, status_code: int = 200) -> HTMLResponse:
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return HTMLResponse(_PAGE.format(title=html.escape(title), body=body), status_code)


@router.get("/return", response_class=HTMLResponse, include_in_schema=False)
def checkout_return(result: Annotated[str, Query(max_length=20)] = "success") -> HTMLResponse:
    if result == "success":
        return _page(
            "Thank you!",
            "Your Nojoin Pro subscription is being activated. Return to Nojoin: the Account "
            "window updates within a few seconds. You can close this tab.",
        )
    if result == "portal":
        return _page("All set", "Return to Nojoin. You can close this tab.")
    return _page(
        "Checkout cancelled",
        "Nothing was charged. Return to Nojoin to try again whenever you like.",
    )


def _offline_page(service: BillingServiceDep, session_id: str, what: str) -> HTMLResponse:
    if service.provider.name != "offline" or not session_id.replace("_", "").isalnum():
        raise NotFoundError("Not Found", code="not_found")
    return _page(
        "Payments are not available on this server",
        f"This Nojoin server runs without a payment provider, so {what} cannot be opened "
        "and nothing can be charged.",
        "If you run this server yourself, cloud processing is available without a "
        "subscription unless NOJOIN_REQUIRE_SUBSCRIPTION is set; an operator can grant a "
        "plan with `nojoin-billing grant`. To take payments, configure "
        "NOJOIN_STRIPE_API_KEY, NOJOIN_STRIPE_PRICE_ID and NOJOIN_STRIPE_WEBHOOK_SECRET.",
    )


@router.get("/offline/checkout/{session_id}", response_class=HTMLResponse, include_in_schema=False)
def offline_checkout(session_id: str, service: BillingServiceDep) -> HTMLResponse:
    return _offline_page(service, session_id, "checkout")


@router.get("/offline/portal/{session_id}", response_class=HTMLResponse, include_in_schema=False)
def offline_portal(session_id: str, service: BillingServiceDep) -> HTMLResponse:
    return _offline_page(service, session_id, "the subscription page")
