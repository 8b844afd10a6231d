"""Crash safety with real worker processes (`nojoin-worker --mode pull`) and short leases:
kill -9 mid-job -> the lease expires -> another worker completes it, exactly once, billed
once; the dead worker's lease token is refused. SIGTERM mid-job -> the job is handed back at
once, unbilled, and another worker completes it. (A restarted backend: test_jobs_restart.py.)"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import psutil
import pytest
from job_checks import (
    completed_once,
    events,
    job,
    scalar,
    submit,
    wait_engine_running,
    wait_finished,
)

from backend.jobs.queue import JobQueue
from backend.jobs.repository import JobRow, Lease
from backend.jobs.settings import JobSettings
from backend.runtime import Runtime
from nojoin.testing.synth import SynthMeeting

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
def job_settings_overrides() -> dict[str, Any]:
    # Nothing in the API processes jobs; its maintenance loop still reaps expired leases.
    return {"job_dispatch": "none"}


def test_kill_9_mid_job_then_another_worker_completes_once(
    http: httpx.Client,
    runtime: Runtime,
    job_settings: JobSettings,
    create_user: Callable[..., Any],
    short_meeting: SynthMeeting,
    start_worker: Callable[..., Any],
    wait_until: Callable[..., Any],
) -> None:
    user = create_user()
    job_id = submit(http, user, short_meeting.path, {"model": "tiny.en", "diarize": True})
    doomed = start_worker("--mode", "pull", "--worker-id", "doomed", "--no-maintenance")
    held = wait_engine_running(runtime, job_id, doomed.log)
    assert held["worker_id"] == "doomed"
    old = Lease(job=JobRow.from_row(held), token=held["lease_token"], worker_id="doomed")
    engine_procs = psutil.Process(doomed.pid).children(recursive=True)
    assert engine_procs, "the engine reported progress, so its process must exist"
    doomed.kill9()

    # The engine process notices its parent died and exits (no orphaned GPU work).
    gone, alive = psutil.wait_procs(engine_procs, timeout=60)
    assert not alive, f"orphaned engine processes: {alive}"

    # The API's reaper returns the job to the queue once the lease (5 s) expires.
    requeued = wait_until(
        lambda: (r := job(runtime, job_id))["status"] == "QUEUED" and r,
        job_settings.job_lease_seconds + 10,
        "the reaper to requeue the job",
    )
    assert requeued["attempts"] == 1 and requeued["lease_token"] is None
    assert "stopped responding" in requeued["error"]

    rescuer = start_worker("--mode", "pull", "--worker-id", "rescuer", "--no-maintenance")
    wait_finished(runtime, [job_id], rescuer.log)
    done = completed_once(runtime, job_id)
    assert done["worker_id"] == "rescuer" and done["attempts"] == 2
    assert done["result"]["speakers"] == ["SPEAKER_00", "SPEAKER_01"]
    assert [e for e, _ in events(runtime, job_id)] == ["lease_expired", "completed"]

    # The killed worker's lease is dead: a late heartbeat or completion changes nothing.
    queue = JobQueue(runtime.db, job_settings)
    assert not queue.heartbeat(old, progress=0.5).held
    assert not queue.complete(old, {"segments": []}, duration_seconds=1.0, audio_seconds=1.0)
    assert queue.fail(old, "late", retryable=True) is None
    assert not queue.cancel_running(old)
    assert not queue.release(old)
    completed_once(runtime, job_id)
    assert job(runtime, job_id)["result"] == done["result"]

    # SIGTERM: the worker stops cleanly.
    rescuer.stop()
    assert rescuer.proc.returncode == 0, rescuer.log()


def test_sigterm_mid_job_hands_it_back_then_another_worker_completes_once(
    http: httpx.Client,
    runtime: Runtime,
    job_settings: JobSettings,
    create_user: Callable[..., Any],
    short_meeting: SynthMeeting,
    start_worker: Callable[..., Any],
) -> None:
    """A GPU host being drained (deploy, autoscaler) SIGTERMs its worker mid-job: the job
    goes back to the queue at once, not after its lease expires, and unbilled."""
    user = create_user()
    job_id = submit(http, user, short_meeting.path, {"model": "tiny.en", "diarize": True})
    leaving = start_worker("--mode", "pull", "--worker-id", "leaving", "--no-maintenance")
    wait_engine_running(runtime, job_id, leaving.log)
    engine_procs = psutil.Process(leaving.pid).children(recursive=True)
    assert engine_procs, "the engine reported progress, so its process must exist"
    asked = time.monotonic()
    leaving.stop()
    stopped_in = time.monotonic() - asked
    assert leaving.proc.returncode == 0, leaving.log()
    assert "Traceback" not in leaving.log(), leaving.log()

    # Back in the queue when the worker exits: handed back, not reaped after the 5 s lease.
    row = job(runtime, job_id)
    assert row["status"] == "QUEUED", (row, leaving.log())
    assert row["attempts"] == 0 and row["lease_token"] is None and row["worker_id"] is None
    assert events(runtime, job_id) == [("requeued", "worker shut down")]
    assert stopped_in < job_settings.job_lease_seconds * 2, stopped_in
    assert (
        scalar(runtime, "SELECT count(*) FROM public.gpu_usage_logs WHERE job_id = %s", job_id) == 0
    )
    gone, alive = psutil.wait_procs(engine_procs, timeout=30)
    assert not alive, f"orphaned engine processes: {alive}"

    taker = start_worker("--mode", "pull", "--worker-id", "taker", "--no-maintenance")
    wait_finished(runtime, [job_id], taker.log)
    done = completed_once(runtime, job_id)
    assert done["worker_id"] == "taker" and done["attempts"] == 1
    assert done["result"]["speakers"] == ["SPEAKER_00", "SPEAKER_01"]
    assert [e for e, _ in events(runtime, job_id)] == ["requeued", "completed"]
