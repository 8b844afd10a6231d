"""JobProcessor's failure paths in-process (real storage, real engine's input checks): bad
inputs fail at once with a clear message and bill nothing; a job claimed while the worker
shuts down goes straight back; the CLI refuses to start without its database."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest

from backend.jobs.queue import JobQueue
from backend.jobs.repository import JobRepository
from backend.jobs.settings import JobSettings
from backend.jobs.worker import JobProcessor
from backend.runtime import Runtime

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def processor(runtime: Runtime) -> Any:
    settings = JobSettings(job_lease_seconds=30, job_heartbeat_seconds=0.2)
    p = JobProcessor(JobQueue(runtime.db, settings), runtime.storage, settings, worker_id="t")
    yield p
    p.close()


def queued_job(
    runtime: Runtime, user_id: uuid.UUID, data: bytes | None, params: dict[str, Any] | None = None
) -> uuid.UUID:
    job_id = uuid.uuid4()
    key = f"{user_id}/jobs/{job_id}/input.wav"
    if data is not None:
        runtime.storage.put(key, io.BytesIO(data))
    with runtime.db.transaction() as conn:
        JobRepository.from_session(conn).insert_job(
            job_id=job_id,
            user_id=user_id,
            kind="transcribe",
            params=params or {},
            idempotency_key=None,
            priority=100,
            max_attempts=3,
            audio_seconds=1.0,
            input_size=len(data or b""),
        )
        JobRepository.from_session(conn).add_file(job_id, "input", key)
    return job_id


def status(runtime: Runtime, job_id: uuid.UUID) -> dict[str, Any]:
    with runtime.db.transaction() as conn:
        row = conn.execute(
            "SELECT j.status, j.error, j.attempts, (SELECT count(*) FROM public.gpu_usage_logs u"
            " WHERE u.job_id = j.id) AS usage FROM public.jobs j WHERE j.id = %s",
            (job_id,),
        ).fetchone()
    assert row is not None
    return row


@pytest.mark.parametrize(
    ("data", "params", "needle"),
    [
        (None, None, "uploaded file for this job is missing"),
        (b"RIFF\x24\x00\x00\x00WAVEjunk" + b"\x00" * 64, None, ""),
        (b"RIFF", {"model": "/etc"}, "params.model"),
    ],
    ids=["missing-input", "undecodable", "bad-params"],
)
def test_bad_jobs_fail_at_once_without_billing(
    runtime: Runtime, processor: JobProcessor, create_user: Any, data: Any, params: Any, needle: str
) -> None:
    user = create_user()
    job_id = queued_job(runtime, user.id, data, params)
    assert processor.run_job(job_id) == "FAILED"
    row = status(runtime, job_id)
    assert row["status"] == "FAILED" and row["attempts"] == 1 and row["usage"] == 0
    assert needle in row["error"] and row["error"]
    assert processor.run_job(job_id) is None  # finished: nothing to claim


def test_a_job_claimed_while_the_worker_closes_goes_straight_back(
    runtime: Runtime, create_user: Any
) -> None:
    """SIGTERM can land while a claim is in flight: the claimed job must not then run to the
    end in a worker that is shutting down, but return to the queue, no attempt counted."""

    def no_engine() -> Any:
        raise AssertionError("a closing worker must not start the engine")

    settings = JobSettings(job_lease_seconds=30, job_heartbeat_seconds=0.2)
    closing = JobProcessor(
        JobQueue(runtime.db, settings),
        runtime.storage,
        settings,
        worker_id="closing",
        engine_factory=no_engine,
    )
    job_id = queued_job(runtime, create_user().id, b"RIFF")
    closing.close()
    assert not closing.run_next()  # a closed worker claims nothing more ...
    assert status(runtime, job_id)["status"] == "QUEUED"
    assert closing.run_job(job_id) == "QUEUED"  # ... and hands back one it was sent
    row = status(runtime, job_id)
    assert row["status"] == "QUEUED" and row["attempts"] == 0 and row["usage"] == 0
    with runtime.db.transaction() as conn:
        events = conn.execute(
            "SELECT event, detail FROM public.job_events WHERE job_id = %s", (job_id,)
        ).fetchall()
    assert [(e["event"], e["detail"]) for e in events] == [("requeued", "worker shut down")]


def test_worker_cli_needs_a_database() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOJOIN_")}
    r = subprocess.run(
        [sys.executable, "-m", "backend.jobs.worker_cli", "--mode", "pull"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "NOJOIN_DATABASE_URL" in r.stderr
    env["NOJOIN_DATABASE_URL"] = "postgresql://127.0.0.1:1/x"
    r = subprocess.run(
        [sys.executable, "-m", "backend.jobs.worker_cli", "--mode", "celery"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "NOJOIN_REDIS_URL" in r.stderr


def job_logs(runtime: Runtime, job_id: uuid.UUID) -> list[str]:
    with runtime.db.transaction() as conn:
        rows = conn.execute(
            "SELECT storage_path, size, content_type FROM public.job_files"
            " WHERE job_id = %s AND kind = 'log' ORDER BY id",
            (job_id,),
        ).fetchall()
    texts = []
    for row in rows:
        assert row["content_type"] == "text/plain"
        data = b"".join(runtime.storage.iter_bytes(row["storage_path"]))
        assert len(data) == row["size"]
        texts.append(data.decode())
    return texts


def test_each_attempt_leaves_its_log_for_operators(
    runtime: Runtime, processor: JobProcessor, create_user: Any, caplog: Any
) -> None:
    # A failed attempt is what an operator has to look into: its log names the job, the
    # reason and the outcome, and it survives the input's deletion.
    caplog.set_level(logging.INFO)  # as nojoin-worker runs
    job_id = queued_job(runtime, create_user().id, None)
    assert processor.run_job(job_id) == "FAILED"
    (text,) = job_logs(runtime, job_id)
    assert str(job_id) in text and "uploaded file for this job is missing" in text
    assert text.rstrip().endswith("outcome: FAILED")


def test_a_job_handed_back_at_shutdown_logs_only_that(runtime: Runtime, create_user: Any) -> None:
    settings = JobSettings(job_lease_seconds=30, job_heartbeat_seconds=0.2)
    closing = JobProcessor(
        JobQueue(runtime.db, settings), runtime.storage, settings, worker_id="closing"
    )
    job_id = queued_job(runtime, create_user().id, b"RIFF")
    closing.close()
    assert closing.run_job(job_id) == "QUEUED"
    (text,) = job_logs(runtime, job_id)
    assert text.rstrip().endswith("outcome: QUEUED")
