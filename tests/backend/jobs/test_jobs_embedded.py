"""End to end in embedded mode: the API's in-process worker runs the real engine (tiny.en).

RemoteProcessingStrategy (signed in through the backend's built-in auth) must return exactly
what LocalProcessingStrategy returns for the same file; progress, cancel, and the 403/429
answers of the billing gate reach the caller with the server's message.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from backend.billing.service import BillingService
from backend.billing.settings import BillingSettings
from backend.runtime import Runtime
from nojoin.models import Transcript
from nojoin.processing.contract import CancelledError, CancelToken, ProcessingOptions, Progress
from nojoin.processing.strategies.remote_strategy import (
    QuotaExceededError,
    RemoteAuthError,
    RemoteProcessingStrategy,
    StaticConnection,
    SubscriptionRequiredError,
)
from nojoin.testing.synth import SynthMeeting

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
def job_settings_overrides() -> dict[str, Any]:
    return {"job_dispatch": "embedded"}


def sign_up(base_url: str, runtime: Runtime) -> tuple[str, uuid.UUID]:
    """A real account and access token from the backend's built-in (Supabase-style) auth."""
    assert runtime.anon_key
    r = httpx.post(
        f"{base_url}/auth/v1/signup",
        headers={"apikey": runtime.anon_key},
        json={"email": f"remote-{uuid.uuid4().hex[:8]}@example.test", "password": "s3cret-pass!"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    return body["access_token"], uuid.UUID(body["user"]["id"])


@pytest.fixture(scope="module")
def account(live_server: str, runtime: Runtime) -> tuple[str, uuid.UUID]:
    return sign_up(live_server, runtime)


@pytest.fixture
def remote(live_server: str, account: tuple[str, uuid.UUID]) -> Iterator[RemoteProcessingStrategy]:
    strategy = RemoteProcessingStrategy(
        StaticConnection(live_server, account[0]), poll_initial=0.1, poll_max=0.5
    )
    yield strategy
    strategy.close()


def db_one(runtime: Runtime, sql: str, *params: Any) -> Any:
    with runtime.db.transaction() as conn:
        return conn.execute(sql, params).fetchone()


def test_remote_result_equals_local(
    remote: RemoteProcessingStrategy,
    runtime: Runtime,
    short_meeting: SynthMeeting,
    local_results: dict[bool, Transcript],
    account: tuple[str, uuid.UUID],
) -> None:
    reports: list[Progress] = []
    got = remote.process(
        short_meeting.path,
        ProcessingOptions(model="tiny.en", diarize=False),
        reports.append,
        CancelToken(),
    )
    assert got.to_dict() == local_results[False].to_dict()
    assert "budget" in got.text
    stages = [p.stage for p in reports]
    assert stages[0] == "uploading" and stages[-1] == "done"
    fractions = [p.fraction for p in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0

    job_id = remote.last_job_id
    job = db_one(runtime, "SELECT * FROM public.jobs WHERE id = %s", job_id)
    assert job["status"] == "COMPLETED" and job["user_id"] == account[1] and job["attempts"] == 1
    usage = db_one(runtime, "SELECT * FROM public.gpu_usage_logs WHERE job_id = %s", job_id)
    assert usage["user_id"] == account[1] and usage["duration_seconds"] > 0
    assert usage["audio_seconds"] == pytest.approx(short_meeting.duration, abs=0.1)
    out = db_one(
        runtime,
        "SELECT storage_path FROM public.job_files WHERE job_id = %s AND kind = 'output'",
        job_id,
    )
    import json

    stored = json.loads(b"".join(runtime.storage.iter_bytes(out["storage_path"])))
    assert stored == got.to_dict()
    # The uploaded audio is deleted once the job is done; the transcript stays.
    inp = db_one(
        runtime,
        "SELECT storage_path FROM public.job_files WHERE job_id = %s AND kind = 'input'",
        job_id,
    )
    assert runtime.storage.stat(inp["storage_path"]) is None


def test_remote_with_diarization_equals_local(
    remote: RemoteProcessingStrategy,
    short_meeting: SynthMeeting,
    local_results: dict[bool, Transcript],
) -> None:
    reports: list[Progress] = []
    got = remote.process(
        short_meeting.path,
        ProcessingOptions(model="tiny.en", diarize=True),
        reports.append,
        CancelToken(),
    )
    assert got.to_dict() == local_results[True].to_dict()
    assert got.speakers == ["SPEAKER_00", "SPEAKER_01"]
    # The worker's progress reached the client while the job ran.
    assert any(p.stage == "transcribing" and 0.15 < p.fraction < 1 for p in reports), reports


def test_cancel_while_processing(
    remote: RemoteProcessingStrategy,
    runtime: Runtime,
    minute_meeting: SynthMeeting,
    wait_until: Any,
) -> None:
    cancel = CancelToken()
    outcome: dict[str, Any] = {}
    seen_processing = threading.Event()

    def on_progress(p: Progress) -> None:
        if p.stage not in ("uploading", "queued"):
            seen_processing.set()

    def run() -> None:
        try:
            outcome["result"] = remote.process(
                minute_meeting.path,
                ProcessingOptions(model="tiny.en", diarize=True),
                on_progress,
                cancel,
            )
        except CancelledError as exc:
            outcome["cancelled"] = exc

    t = threading.Thread(target=run)
    t.start()
    assert seen_processing.wait(60), "the job never started processing"
    asked = time.monotonic()
    cancel.cancel()
    t.join(timeout=30)
    assert "cancelled" in outcome, outcome
    job_id = remote.last_job_id
    # The cancel did not wait for the long poll in flight: the server heard it at once.
    row = db_one(runtime, "SELECT cancel_requested FROM public.jobs WHERE id = %s", job_id)
    assert row["cancel_requested"], "the server never heard the cancel"
    assert time.monotonic() - asked < 10

    def final() -> Any:
        row = db_one(runtime, "SELECT status FROM public.jobs WHERE id = %s", job_id)
        return row["status"] if row["status"] in ("CANCELED", "COMPLETED", "FAILED") else None

    # The worker notices at its next heartbeat, stops the engine and records the cancel.
    assert wait_until(final, 30, "the worker to stop the job") == "CANCELED"
    assert (
        db_one(
            runtime, "SELECT count(*) AS n FROM public.gpu_usage_logs WHERE job_id = %s", job_id
        )["n"]
        == 0
    )


def test_worker_still_serves_after_cancel(
    remote: RemoteProcessingStrategy, tiny_meeting: SynthMeeting
) -> None:
    got = remote.process(
        tiny_meeting.path,
        ProcessingOptions(model="tiny.en", diarize=False),
        lambda _: None,
        CancelToken(),
    )
    assert "report" in got.text.lower()


@pytest.fixture
def billing(runtime: Runtime) -> Iterator[Any]:
    """Swap in billing services with other settings (the real BillingService code)."""
    saved = runtime.billing

    def use(**settings: Any) -> None:
        runtime.billing = BillingService.from_settings(BillingSettings(**settings))

    yield use
    runtime.billing = saved


def test_no_subscription_403_carries_server_message(
    remote: RemoteProcessingStrategy, tiny_meeting: SynthMeeting, billing: Any
) -> None:
    billing(require_subscription=True)
    with pytest.raises(SubscriptionRequiredError) as info:
        remote.process(
            tiny_meeting.path, ProcessingOptions(model="tiny.en"), lambda _: None, CancelToken()
        )
    assert info.value.status_code == 403
    assert "subscription" in info.value.message.lower()


def test_quota_429_carries_server_message_and_retry_after(
    remote: RemoteProcessingStrategy, tiny_meeting: SynthMeeting, billing: Any
) -> None:
    billing(require_subscription=False, enforce_quotas=True, quota_free_jobs_per_day=0)
    with pytest.raises(QuotaExceededError) as info:
        remote.process(
            tiny_meeting.path, ProcessingOptions(model="tiny.en"), lambda _: None, CancelToken()
        )
    assert "on this computer" in info.value.message
    assert info.value.retry_after is not None and info.value.retry_after > 0


def test_expired_or_bad_token_is_an_auth_error(
    live_server: str, tiny_meeting: SynthMeeting
) -> None:
    strategy = RemoteProcessingStrategy(StaticConnection(live_server, "not-a-token"))
    with pytest.raises(RemoteAuthError) as info:
        strategy.process(
            tiny_meeting.path, ProcessingOptions(model="tiny.en"), lambda _: None, CancelToken()
        )
    strategy.close()
    assert info.value.status_code == 401 and "Sign in again" in info.value.message
