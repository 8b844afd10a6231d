"""The desktop side's BillingClient (over the real ApiClient) against the live backend: the
JSON the Account dialog reads is what the server sends, and refusals become CloudErrors."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from backend.billing.service import BillingService
from nojoin.cloud.api_client import ApiClient
from nojoin.cloud.billing_client import BillingClient
from nojoin.cloud.errors import ConflictError
from tests.backend.billing.conftest import (
    checkout_completed,
    new_id,
    signed_headers,
    subscription_event,
)

pytestmark = [pytest.mark.postgres]


class StaticToken:
    def __init__(self, token: str) -> None:
        self.token = token

    def access_token(self, *, force_refresh: bool = False) -> str:
        return self.token

    def session_rejected(self) -> None:
        pass


@pytest.fixture
def user_client(
    live_server: str, billing: BillingService, create_user: Callable[..., Any]
) -> Iterator[tuple[Any, BillingClient, ApiClient]]:
    user = create_user()
    api = ApiClient(live_server, StaticToken(user.token), retries=0)
    yield user, BillingClient(api), api
    api.close()


def test_account_status_upgrade_and_manage(
    user_client: tuple[Any, BillingClient, ApiClient], live_server: str
) -> None:
    user, billing_client, _ = user_client
    status = billing_client.subscription()
    assert (status.tier, status.entitled, status.can_manage, status.gate_enabled) == (
        "free",
        False,
        False,
        True,
    )
    url = billing_client.checkout_url("dialog-key-1")
    assert url.startswith(live_server) and "/offline/checkout/" in url
    assert billing_client.checkout_url("dialog-key-1") == url
    with pytest.raises(ConflictError, match="Upgrade"):
        billing_client.portal_url("p1")

    customer, subscription = new_id("cus"), new_id("sub")
    t = int(time.time())
    with httpx.Client(base_url=live_server) as http:
        for evt in (
            checkout_completed(user.id, customer, subscription, created=t),
            subscription_event(
                "customer.subscription.created", subscription, customer, "active", created=t
            ),
        ):
            payload = json.dumps(evt)
            assert (
                http.post(
                    "/api/v1/billing/webhook", content=payload, headers=signed_headers(payload)
                ).status_code
                == 200
            )
    status = billing_client.subscription()
    assert status.tier == "pro" and status.entitled and status.current_period_end is not None
    assert "/offline/portal/" in billing_client.portal_url("p2")
