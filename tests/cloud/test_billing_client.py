"""The desktop side's BillingClient, over the real ApiClient and a signed-in session, against
the live backend (`nojoin-backend` with the tier gate on and a webhook secret): the JSON the
Account dialog reads is what the server sends, refusals become CloudErrors, and the plan a
signed Stripe webhook grants is what the account shows next. (Moved here from
tests/backend/billing/: it tests nojoin/cloud/billing_client.py.)"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from cloud_support import PASSWORD, Backend, Device, new_email

from nojoin.cloud.billing_client import BillingClient
from nojoin.cloud.errors import ConflictError
from tests.backend.billing.conftest import (
    checkout_completed,
    new_id,
    signed_headers,
    subscription_event,
)


@pytest.fixture
def signed_in(device: Callable[..., Device]) -> Iterator[tuple[uuid.UUID, BillingClient]]:
    dev = device("billing", retries=0)
    account = dev.auth.sign_up(new_email(), PASSWORD)
    assert account is not None
    yield uuid.UUID(account.user_id), BillingClient(dev.api)


def test_account_status_upgrade_and_manage(
    signed_in: tuple[uuid.UUID, BillingClient], backend: Backend
) -> None:
    user_id, billing_client = signed_in
    status = billing_client.subscription()
    assert (status.tier, status.entitled, status.can_manage, status.gate_enabled) == (
        "free",
        False,
        False,
        True,
    )
    url = billing_client.checkout_url("dialog-key-1")
    assert url.startswith(backend.url) and "/offline/checkout/" in url
    assert billing_client.checkout_url("dialog-key-1") == url
    with pytest.raises(ConflictError, match="Upgrade"):
        billing_client.portal_url("p1")

    customer, subscription = new_id("cus"), new_id("sub")
    t = int(time.time())
    with httpx.Client(base_url=backend.url) as http:
        for evt in (
            checkout_completed(user_id, customer, subscription, created=t),
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
