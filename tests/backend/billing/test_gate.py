"""Tier gate and quotas, end to end through POST /api/v1/jobs on a live server (real uvicorn,
real PostgreSQL, real concurrency), plus the settings contract."""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf

from backend.billing.provider import OfflineBillingProvider
from backend.billing.service import NEEDS_SUBSCRIPTION, PAYMENT_PROBLEM, BillingService
from backend.billing.settings import BillingSettings
from backend.jobs.settings import JobSettings
from backend.runtime import Runtime
from tests.backend.billing.conftest import (
    WEBHOOK_PATH,
    checkout_completed,
    invoice_event,
    new_id,
    signed_headers,
    subscription_event,
)

pytestmark = [pytest.mark.postgres]

JOBS = "/api/v1/jobs"


@pytest.fixture(scope="module")
def billing_overrides() -> dict[str, Any]:
    return {
        "quota_free_jobs_per_day": 2,
        "quota_pro_jobs_per_day": 3,
        "quota_free_max_file_bytes": 100_000,
        "quota_pro_max_file_bytes": 200_000,
    }


@pytest.fixture(scope="module")
def job_settings() -> JobSettings:
    """Dispatch "none": submitted jobs are only recorded, not transcribed."""
    return JobSettings(job_dispatch="none")


def _wav(seconds: float, rate: int = 16000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    buf = io.BytesIO()
    sf.write(
        buf,
        (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32),
        rate,
        format="WAV",
        subtype="PCM_16",
    )
    return buf.getvalue()


SMALL_WAV = _wav(0.5, 8000)  # ~8 KB
BIG_WAV = _wav(4.0)  # ~128 KB: over the free plan's 100 KB, under Pro's 200 KB


@pytest.fixture
def http(
    live_server: str,
    billing: BillingService,  # noqa: ARG001 (the module's gated billing is in place first)
) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server, timeout=30) as c:
        yield c


def submit(http: httpx.Client, user: Any, data: bytes = SMALL_WAV) -> httpx.Response:
    return http.post(
        JOBS,
        headers=user.headers,
        files={"file": ("meeting.wav", data, "audio/wav")},
        data={"params": json.dumps({"model": "tiny.en"})},
    )


def deliver(http: httpx.Client, evt: dict[str, Any]) -> None:
    payload = json.dumps(evt)
    resp = http.post(WEBHOOK_PATH, content=payload, headers=signed_headers(payload))
    assert resp.status_code == 200, resp.text


def make_pro(http: httpx.Client, user: Any) -> tuple[str, str]:
    customer, subscription = new_id("cus"), new_id("sub")
    t = int(time.time())
    deliver(http, checkout_completed(user.id, customer, subscription, created=t))
    deliver(
        http,
        subscription_event(
            "customer.subscription.created",
            subscription,
            customer,
            "active",
            user_id=user.id,
            created=t,
        ),
    )
    return customer, subscription


def job_count(runtime: Runtime, user_id: uuid.UUID) -> int:
    with runtime.db.transaction() as conn:
        row = conn.execute(
            "SELECT count(*) AS n FROM jobs WHERE user_id = %s", (user_id,)
        ).fetchone()
    assert row is not None
    return int(row["n"])


def test_free_user_is_refused_with_the_message_the_app_shows(
    http: httpx.Client, runtime: Runtime, create_user: Callable[..., Any]
) -> None:
    user = create_user()
    resp = submit(http, user)
    assert resp.status_code == 403
    assert resp.json()["detail"] == NEEDS_SUBSCRIPTION
    assert job_count(runtime, user.id) == 0


def test_subscribing_through_signed_webhooks_lets_jobs_in_and_cancelling_stops_them(
    http: httpx.Client, runtime: Runtime, create_user: Callable[..., Any]
) -> None:
    user = create_user()
    assert submit(http, user).status_code == 403
    customer, subscription = make_pro(http, user)
    resp = submit(http, user)
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["job_id"]
    assert http.get(f"{JOBS}/{job_id}", headers=user.headers).json()["status"] == "QUEUED"

    # A failed renewal keeps cloud processing on while Stripe retries the card (7 days)...
    deliver(
        http,
        invoice_event(
            "invoice.payment_failed", subscription, customer, created=int(time.time()) + 1
        ),
    )
    assert submit(http, user).status_code == 202
    # ...then pauses it with a payment-specific message...
    with runtime.db.transaction() as conn:
        conn.execute(
            "UPDATE subscriptions SET past_due_since = now() - interval '8 days'"
            " WHERE user_id = %s",
            (user.id,),
        )
    resp = submit(http, user)
    assert resp.status_code == 403 and resp.json()["detail"] == PAYMENT_PROBLEM
    # ...and cancellation returns the user to free: refused again.
    deliver(
        http,
        subscription_event(
            "customer.subscription.deleted",
            subscription,
            customer,
            "canceled",
            created=int(time.time()) + 2,
        ),
    )
    resp = submit(http, user)
    assert resp.status_code == 403 and resp.json()["detail"] == NEEDS_SUBSCRIPTION
    assert job_count(runtime, user.id) == 2


def test_file_above_the_plan_limit_is_413(
    http: httpx.Client, create_user: Callable[..., Any]
) -> None:
    user = create_user()
    make_pro(http, user)
    assert submit(http, user, BIG_WAV).status_code == 202
    big = _wav(8.0)  # ~256 KB > Pro's 200 KB
    resp = submit(http, user, big)
    assert resp.status_code == 413
    assert "your plan allows files up to" in resp.json()["detail"]


def test_quota_holds_under_parallel_submissions(
    http: httpx.Client, live_server: str, runtime: Runtime, create_user: Callable[..., Any]
) -> None:
    """Pro allows 3 jobs a day: 8 parallel uploads -> exactly 3 accepted, 5 x 429."""
    user = create_user()
    make_pro(http, user)
    results: list[httpx.Response] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker() -> None:
        with httpx.Client(base_url=live_server, timeout=60) as c:
            barrier.wait(timeout=10)
            resp = submit(c, user)
            with lock:
                results.append(resp)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    codes = sorted(r.status_code for r in results)
    assert codes == [202] * 3 + [429] * 5, [r.text for r in results]
    assert job_count(runtime, user.id) == 3
    refused = next(r for r in results if r.status_code == 429)
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 86400
    assert "3 cloud processing jobs for today" in refused.json()["detail"]
    # The 4th sequential submission is refused as well, before its upload is stored.
    assert submit(http, user).status_code == 429
    view = http.get("/api/v1/billing/subscription", headers=user.headers).json()
    assert (view["jobs_today"], view["jobs_per_day"]) == (3, 3)


def test_yesterdays_jobs_do_not_count(
    http: httpx.Client, runtime: Runtime, create_user: Callable[..., Any]
) -> None:
    user = create_user()
    make_pro(http, user)
    with runtime.db.transaction() as conn:
        for _ in range(3):
            conn.execute(
                "INSERT INTO jobs (user_id, kind, created_at) VALUES"
                " (%s, 'transcribe', date_trunc('day', now() AT TIME ZONE 'UTC')"
                " AT TIME ZONE 'UTC' - interval '1 second')",
                (user.id,),
            )
    assert submit(http, user).status_code == 202


def test_gate_off_lets_free_users_in_with_free_quotas(
    http: httpx.Client, runtime: Runtime, create_user: Callable[..., Any]
) -> None:
    """A server without subscriptions but with NOJOIN_ENFORCE_QUOTAS=true."""
    saved = runtime.billing
    runtime.billing = BillingService(
        BillingSettings(require_subscription=False, enforce_quotas=True, quota_free_jobs_per_day=1),
        OfflineBillingProvider(),
    )
    try:
        user = create_user()
        assert submit(http, user).status_code == 202
        resp = submit(http, user)
        assert resp.status_code == 429 and "Upgrade to Pro" in resp.json()["detail"]
    finally:
        runtime.billing = saved


def test_embedded_default_has_no_gate_and_no_quotas(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STRIPE_API_KEY", "REQUIRE_SUBSCRIPTION", "ENFORCE_QUOTAS", "BILLING_PROVIDER"):
        monkeypatch.delenv(f"NOJOIN_{name}", raising=False)
    default = BillingSettings()
    assert (default.gate_enabled, default.quotas_enabled, default.provider_name) == (
        False,
        False,
        "offline",
    )
    monkeypatch.setenv("NOJOIN_REQUIRE_SUBSCRIPTION", "true")
    assert BillingSettings().gate_enabled and BillingSettings().quotas_enabled
    monkeypatch.delenv("NOJOIN_REQUIRE_SUBSCRIPTION")
    monkeypatch.setenv("NOJOIN_STRIPE_API_KEY", "sk_test_123")
    configured = BillingSettings()
    assert configured.gate_enabled and configured.provider_name == "stripe"
    assert "sk_test_123" not in repr(configured)
    monkeypatch.setenv("NOJOIN_REQUIRE_SUBSCRIPTION", "false")
    assert not BillingSettings().gate_enabled


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NOJOIN_QUOTA_PRO_JOBS_PER_DAY": "lots"}, "quota_pro_jobs_per_day"),
        ({"NOJOIN_BILLING_PROVIDER": "stripe"}, "needs NOJOIN_STRIPE_API_KEY"),
        ({"NOJOIN_STRIPE_API_KEY": "sk_test_1"}, "NOJOIN_STRIPE_PRICE_ID"),
        (
            {"NOJOIN_STRIPE_API_KEY": "sk_test_1", "NOJOIN_STRIPE_PRICE_ID": "price_1"},
            "NOJOIN_STRIPE_WEBHOOK_SECRET",
        ),
    ],
)
def test_bad_billing_settings_stop_start_up(
    monkeypatch: pytest.MonkeyPatch, runtime: Runtime, env: dict[str, str], message: str
) -> None:
    """Runtime.start reads the billing settings first: nothing is started, the message says
    which setting is wrong."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        Runtime.start(runtime.settings)
