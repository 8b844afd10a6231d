"""Checkout and portal links: the offline provider (embedded default) and the real
StripeBillingProvider driving the real `stripe` library against a local stand-in for
api.stripe.com (Stripe's hosted API cannot be reached here)."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import stripe

from backend.billing.provider import OfflineBillingProvider, StripeBillingProvider
from backend.billing.service import BillingService
from backend.billing.settings import BillingSettings
from backend.runtime import Runtime
from tests.backend.billing.conftest import (
    checkout_completed,
    deliver,
    new_id,
    subscription_event,
)

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

CHECKOUT = "/api/v1/billing/create-checkout-session"
PORTAL = "/api/v1/billing/create-portal-session"


async def test_offline_checkout_gives_a_local_page_and_charges_nobody(
    client: httpx.AsyncClient, billing: BillingService, create_user: Callable[..., Any]
) -> None:
    user = create_user()
    headers = {**user.headers, "Idempotency-Key": "upgrade-click-1"}
    resp = await client.post(CHECKOUT, headers=headers)
    assert resp.status_code == 200, resp.text
    url = resp.json()["url"]
    assert url.startswith("http://testserver/api/v1/billing/offline/checkout/cs_offline_")

    # The retry with the same key returns the same session without asking the provider.
    provider = billing.provider
    assert isinstance(provider, OfflineBillingProvider)
    asked = len(provider.sessions)
    again = await client.post(CHECKOUT, headers=headers)
    assert again.json()["url"] == url and len(provider.sessions) == asked
    other = await client.post(CHECKOUT, headers={**user.headers, "Idempotency-Key": "click-2"})
    assert other.json()["url"] != url

    page = await client.get(url.removeprefix("http://testserver"))
    assert page.status_code == 200 and "Payments are not available" in page.text
    # Opening checkout grants nothing.
    sub = (await client.get("/api/v1/billing/subscription", headers=user.headers)).json()
    assert (sub["tier"], sub["entitled"], sub["provider"]) == ("free", False, "offline")


@pytest.mark.usefixtures("billing")
async def test_checkout_needs_sign_in_and_a_sane_idempotency_key(
    client: httpx.AsyncClient, create_user: Callable[..., Any]
) -> None:
    assert (await client.post(CHECKOUT)).status_code == 401
    assert (await client.get("/api/v1/billing/subscription")).status_code == 401
    user = create_user()
    resp = await client.post(CHECKOUT, headers={**user.headers, "Idempotency-Key": "x" * 201})
    assert resp.status_code == 400 and "Idempotency-Key" in resp.json()["detail"]


async def test_portal_needs_a_billing_account_and_subscribers_cannot_buy_twice(
    client: httpx.AsyncClient, billing: BillingService, create_user: Callable[..., Any]
) -> None:
    user = create_user()
    resp = await client.post(PORTAL, headers=user.headers)
    assert resp.status_code == 409 and "Upgrade" in resp.json()["detail"]

    customer, subscription = new_id("cus"), new_id("sub")
    t = int(time.time())
    await deliver(client, checkout_completed(user.id, customer, subscription, created=t))
    await deliver(
        client,
        subscription_event(
            "customer.subscription.created", subscription, customer, "active", created=t
        ),
    )
    resp = await client.post(CHECKOUT, headers=user.headers)
    assert resp.status_code == 409 and "Manage subscription" in resp.json()["detail"]
    resp = await client.post(PORTAL, headers=user.headers)
    assert resp.status_code == 200
    assert "/api/v1/billing/offline/portal/bps_offline_" in resp.json()["url"]
    provider = billing.provider
    assert isinstance(provider, OfflineBillingProvider)
    assert getattr(provider.sessions[-1][1], "customer_id", None) == customer


@pytest.mark.usefixtures("billing")
async def test_return_pages_render(client: httpx.AsyncClient) -> None:
    ok = await client.get("/api/v1/billing/return", params={"result": "success"})
    cancel = await client.get("/api/v1/billing/return", params={"result": "cancel"})
    assert "Thank you" in ok.text and "Nothing was charged" in cancel.text


# --- the real Stripe provider against a local stand-in ----------------------------------


@dataclass
class FakeStripe:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_with: int | None = None


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    """Answers /v1/checkout/sessions and /v1/billing_portal/sessions like api.stripe.com."""
    state = FakeStripe(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            length = int(self.headers.get("Content-Length") or 0)
            form = urllib.parse.parse_qs(self.rfile.read(length).decode())
            state.requests.append({"path": self.path, "headers": dict(self.headers), "form": form})
            if state.fail_with:
                body: dict[str, Any] = {
                    "error": {"type": "invalid_request_error", "message": "No such price"}
                }
                status = state.fail_with
            elif self.path == "/v1/checkout/sessions":
                status, body = (
                    200,
                    {
                        "id": "cs_test_a1",
                        "object": "checkout.session",
                        "mode": "subscription",
                        "url": "https://checkout.stripe.com/c/pay/cs_test_a1",
                    },
                )
            elif self.path == "/v1/billing_portal/sessions":
                status, body = (
                    200,
                    {
                        "id": "bps_test_b2",
                        "object": "billing_portal.session",
                        "url": "https://billing.stripe.com/p/session/test_b2",
                    },
                )
            else:
                status, body = 404, {"error": {"type": "invalid_request_error"}}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", "req_test")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def stripe_billing(
    runtime: Runtime, billing: BillingService, fake_stripe: FakeStripe
) -> Iterator[BillingService]:
    client = stripe.StripeClient(
        "sk_test_fake", base_addresses={"api": fake_stripe.url}, max_network_retries=0
    )
    service = BillingService(
        BillingSettings(
            stripe_api_key="sk_test_fake",
            stripe_price_id="price_pro_monthly",
            stripe_webhook_secret="whsec_x",
            checkout_success_url="https://nojoin.example/thanks",
            checkout_cancel_url="https://nojoin.example/cancel",
        ),
        StripeBillingProvider(client),
    )
    runtime.billing = service
    yield service
    runtime.billing = billing


@pytest.mark.usefixtures("stripe_billing")
async def test_stripe_checkout_request_is_a_subscription_for_this_user(
    client: httpx.AsyncClient,
    fake_stripe: FakeStripe,
    create_user: Callable[..., Any],
) -> None:
    user = create_user()
    headers = {**user.headers, "Idempotency-Key": "k-1"}
    resp = await client.post(CHECKOUT, headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"url": "https://checkout.stripe.com/c/pay/cs_test_a1"}

    [sent] = fake_stripe.requests
    form = {k: v[0] for k, v in sent["form"].items()}
    assert sent["path"] == "/v1/checkout/sessions"
    assert form["mode"] == "subscription"
    assert form["line_items[0][price]"] == "price_pro_monthly"
    assert form["line_items[0][quantity]"] == "1"
    assert form["client_reference_id"] == str(user.id)
    assert form["subscription_data[metadata][nojoin_user_id]"] == str(user.id)
    assert form["success_url"] == "https://nojoin.example/thanks"
    assert form["cancel_url"] == "https://nojoin.example/cancel"
    assert form["customer_email"] == user.email
    lower = {k.lower(): v for k, v in sent["headers"].items()}
    assert lower["idempotency-key"] == f"nojoin-checkout-{user.id}-k-1"
    assert lower["authorization"] == "Bearer sk_test_fake"

    again = await client.post(CHECKOUT, headers=headers)
    assert again.json()["url"] == resp.json()["url"]
    assert len(fake_stripe.requests) == 1


@pytest.mark.usefixtures("stripe_billing")
async def test_stripe_portal_and_errors(
    client: httpx.AsyncClient,
    fake_stripe: FakeStripe,
    runtime: Runtime,
    create_user: Callable[..., Any],
) -> None:
    user = create_user()
    with runtime.db.transaction() as conn:
        conn.execute(
            "INSERT INTO subscriptions (user_id, stripe_customer_id) VALUES (%s, 'cus_portal1')",
            (user.id,),
        )
    resp = await client.post(PORTAL, headers=user.headers)
    assert resp.json() == {"url": "https://billing.stripe.com/p/session/test_b2"}
    form = {k: v[0] for k, v in fake_stripe.requests[-1]["form"].items()}
    assert form["customer"] == "cus_portal1"

    fake_stripe.fail_with = 400
    resp = await client.post(CHECKOUT, headers=create_user().headers)
    assert resp.status_code == 503
    assert "try again" in resp.json()["detail"]


@pytest.mark.usefixtures("billing")
@pytest.mark.parametrize("stripe_status", ["past_due", "unpaid"])
async def test_an_unpaid_subscription_is_fixed_in_the_portal_not_bought_again(
    client: httpx.AsyncClient,
    create_user: Callable[..., Any],
    stripe_status: str,
) -> None:
    """Stripe keeps retrying the open invoice: a second checkout would bill the user twice."""
    user = create_user()
    customer, subscription = new_id("cus"), new_id("sub")
    t = int(time.time())
    await deliver(client, checkout_completed(user.id, customer, subscription, created=t))
    await deliver(
        client,
        subscription_event(
            "customer.subscription.created", subscription, customer, "active", created=t
        ),
    )
    await deliver(
        client,
        subscription_event(
            "customer.subscription.updated", subscription, customer, stripe_status, created=t + 1
        ),
    )
    resp = await client.post(CHECKOUT, headers=user.headers)
    assert resp.status_code == 409, resp.text
    assert "Manage subscription" in resp.json()["detail"]
    assert (await client.post(PORTAL, headers=user.headers)).status_code == 200

    # Once Stripe ends the subscription, buying a new one is fine again.
    await deliver(
        client,
        subscription_event(
            "customer.subscription.deleted", subscription, customer, "canceled", created=t + 2
        ),
    )
    resp = await client.post(CHECKOUT, headers=user.headers)
    assert resp.status_code == 200, resp.text
