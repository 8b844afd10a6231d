"""Crash safety with real worker processes (`nojoin-worker --mode pull`) and short leases:
kill -9 mid-job -> the lease expires -> another worker completes it, exactly once, billed
once; the dead worker's lease token is refused. SIGTERM mid-job -> the job is handed back at
once, unbilled, and another worker completes it; a restarted backend loses no queued job."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from backend.jobs.queue import JobQueue
from backend.jobs.repository import JobRow, Lease
from backend.jobs.settings import JobSettings
from backend.runtime import Runtime
from nojoin.testing.synth import SynthMeeting

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

JOBS = "/api/v1/jobs"
# Hang detectors only: a worker's first job starts an engine process (torch, Whisper) and runs
# it, which takes several seconds here but over a minute on a slow, oversubscribed machine.
# Together they stay under the 600 s per-test limit.
ENGINE_START_TIMEOUT = 120.0
ENGINE_RUN_TIMEOUT = 240.0
# Stages the engine process itself reports ("starting" is the worker's own, before it spawns
# the engine): seeing one means the kill lands mid-job, with the engine running.
ENGINE_STAGES = {"loading", "decoding", "transcribing", "diarizing", "merging"}


@pytest.fixture(scope="module")
def job_settings_overrides() -> dict[str, Any]:
    # Nothing in the API processes jobs; its maintenance loop still reaps expired leases.
    return {"job_dispatch": "none"}


def submit(http: httpx.Client, user: Any, path: Path, params: dict[str, Any]) -> uuid.UUID:
    with open(path, "rb") as fh:
        r = http.post(
            JOBS,
            headers=user.headers,
            files={"file": (path.name, fh)},
            data={"params": json.dumps(params)},
        )
    assert r.status_code == 202, r.text
    return uuid.UUID(r.json()["job_id"])


def job(runtime: Runtime, job_id: uuid.UUID) -> dict[str, Any]:
    with runtime.db.transaction() as conn:
        row = conn.execute("SELECT * FROM public.jobs WHERE id = %s", (job_id,)).fetchone()
    assert row is not None
    return row


def scalar(runtime: Runtime, sql: str, *params: Any) -> Any:
    with runtime.db.transaction() as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    return next(iter(row.values()))


def events(runtime: Runtime, job_id: uuid.UUID) -> list[tuple[str, str | None]]:
    with runtime.db.transaction() as conn:
        rows = conn.execute(
            "SELECT event, detail FROM public.job_events WHERE job_id = %s ORDER BY id",
            (job_id,),
        ).fetchall()
    return [(r["event"], r["detail"]) for r in rows]


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

    def engine_running() -> dict[str, Any] | None:
        row = job(runtime, job_id)
        return row if row["status"] == "PROCESSING" and row["stage"] in ENGINE_STAGES else None

    try:
        held = wait_until(
            engine_running, ENGINE_START_TIMEOUT, "the first worker to run the engine", step=0.02
        )
    except AssertionError:
        raise AssertionError(doomed.log()) from None
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
    try:
        done = wait_until(
            lambda: (r := job(runtime, job_id))["status"] in ("COMPLETED", "FAILED") and r,
            ENGINE_RUN_TIMEOUT,
            "the second worker to finish",
        )
    except AssertionError:
        raise AssertionError(rescuer.log()) from None
    assert done["status"] == "COMPLETED", done["error"]
    assert done["worker_id"] == "rescuer" and done["attempts"] == 2
    assert done["result"]["speakers"] == ["SPEAKER_00", "SPEAKER_01"]

    # The killed worker's lease is dead: a late heartbeat or completion changes nothing.
    queue = JobQueue(runtime.db, job_settings)
    assert not queue.heartbeat(old, progress=0.5).held
    assert not queue.complete(old, {"segments": []}, duration_seconds=1.0, audio_seconds=1.0)
    assert queue.fail(old, "late", retryable=True) is None
    assert not queue.cancel_running(old)
    assert not queue.release(old)

    assert (
        scalar(
            runtime,
            "SELECT count(*) FROM public.job_events WHERE job_id = %s AND event = 'completed'",
            job_id,
        )
        == 1
    )
    assert (
        scalar(
            runtime,
            "SELECT count(*) FROM public.job_events WHERE job_id = %s AND event = 'lease_expired'",
            job_id,
        )
        == 1
    )
    assert (
        scalar(runtime, "SELECT count(*) FROM public.gpu_usage_logs WHERE job_id = %s", job_id) == 1
    )
    assert (
        scalar(runtime, "SELECT worker_id FROM public.gpu_usage_logs WHERE job_id = %s", job_id)
        == "rescuer"
    )
    after = job(runtime, job_id)
    assert after["status"] == "COMPLETED" and after["result"] == done["result"]

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
    wait_until: Callable[..., Any],
) -> None:
    """A GPU host being drained (deploy, autoscaler) SIGTERMs its worker mid-job: the job
    goes back to the queue at once, not after its lease expires, and unbilled."""
    user = create_user()
    job_id = submit(http, user, short_meeting.path, {"model": "tiny.en", "diarize": True})
    leaving = start_worker("--mode", "pull", "--worker-id", "leaving", "--no-maintenance")

    def engine_running() -> dict[str, Any] | None:
        row = job(runtime, job_id)
        return row if row["status"] == "PROCESSING" and row["stage"] in ENGINE_STAGES else None

    try:
        wait_until(engine_running, ENGINE_START_TIMEOUT, "the worker to run the engine", step=0.02)
    except AssertionError:
        raise AssertionError(leaving.log()) from None
    engine_procs = psutil.Process(leaving.pid).children(recursive=True)
    assert engine_procs, "the engine reported progress, so its process must exist"
    asked = time.monotonic()
    leaving.proc.terminate()
    leaving.proc.wait(timeout=60)
    stopped_in = time.monotonic() - asked
    assert leaving.proc.returncode == 0, leaving.log()
    assert "Traceback" not in leaving.log(), leaving.log()

    # Back in the queue when the worker exits: given back, not reaped after the 5 s lease.
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
    try:
        done = wait_until(
            lambda: (r := job(runtime, job_id))["status"] in ("COMPLETED", "FAILED") and r,
            ENGINE_RUN_TIMEOUT,
            "the second worker to finish",
        )
    except AssertionError:
        raise AssertionError(taker.log()) from None
    assert done["status"] == "COMPLETED", done["error"]
    assert done["worker_id"] == "taker" and done["attempts"] == 1
    assert done["result"]["speakers"] == ["SPEAKER_00", "SPEAKER_01"]
    assert [e for e, _ in events(runtime, job_id)] == ["requeued", "completed"]
    assert (
        scalar(runtime, "SELECT worker_id FROM public.gpu_usage_logs WHERE job_id = %s", job_id)
        == "taker"
    )
    assert (
        scalar(runtime, "SELECT count(*) FROM public.gpu_usage_logs WHERE job_id = %s", job_id) == 1
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_restarted_backend_loses_no_queued_job(
    http: httpx.Client,
    runtime: Runtime,
    job_settings: JobSettings,
    create_user: Callable[..., Any],
    tiny_meeting: SynthMeeting,
    wait_until: Callable[..., Any],
    tmp_path: Path,
) -> None:
    user = create_user()
    ids = [
        submit(http, user, tiny_meeting.path, {"model": "tiny.en", "diarize": False})
        for _ in range(2)
    ]
    assert {job(runtime, i)["status"] for i in ids} == {"QUEUED"}

    # A new backend process on the same database, with its in-process worker.
    port = _free_port()
    env = dict(os.environ)
    env.update(
        {
            "NOJOIN_DATABASE_URL": str(runtime.settings.database_url),
            "NOJOIN_BACKEND_DATA_DIR": str(runtime.settings.data_dir),
            "NOJOIN_BUILTIN_AUTH": "true",
            "NOJOIN_JOB_DISPATCH": "embedded",
            "NOJOIN_JOB_POLL_SECONDS": "0.2",
        }
    )
    log = open(tmp_path / "backend.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.main", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def all_done() -> bool:
            return all(job(runtime, i)["status"] == "COMPLETED" for i in ids)

        try:
            wait_until(
                all_done, ENGINE_RUN_TIMEOUT, "the restarted backend to process the queued jobs"
            )
        except AssertionError:
            raise AssertionError((tmp_path / "backend.log").read_text()) from None
        r = httpx.get(f"http://127.0.0.1:{port}{JOBS}/{ids[0]}", headers=user.headers)
        assert r.status_code == 200 and r.json()["status"] == "COMPLETED"
        assert "report" in r.json()["result"]["segments"][0]["text"].lower()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    assert (
        scalar(runtime, "SELECT count(*) FROM public.gpu_usage_logs WHERE job_id = ANY(%s)", ids)
        == 2
    )
