"""Helpers for the jobs tests that run real worker and backend processes: submit over HTTP,
read job rows, wait for the engine to be mid-job, check a job completed exactly once."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from backend.runtime import Runtime

JOBS = "/api/v1/jobs"
# Hang detectors only: a worker's first job starts an engine process (torch, Whisper) and runs
# it, which takes several seconds here but over a minute on a slow, oversubscribed machine.
# Together they stay under the 600 s per-test limit.
ENGINE_START_TIMEOUT = 120.0
ENGINE_RUN_TIMEOUT = 240.0
# Stages the engine process itself reports ("starting" is the worker's own, before it spawns
# the engine): seeing one means a kill lands mid-job, with the engine running.
ENGINE_STAGES = {"loading", "decoding", "transcribing", "diarizing", "merging"}


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, step: float = 0.05) -> Any:
    """Poll `predicate` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


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
    """The job's history, oldest first: (event, detail)."""
    with runtime.db.transaction() as conn:
        rows = conn.execute(
            "SELECT event, detail FROM public.job_events WHERE job_id = %s ORDER BY id",
            (job_id,),
        ).fetchall()
    return [(r["event"], r["detail"]) for r in rows]


def wait_engine_running(runtime: Runtime, job_id: uuid.UUID, log: Callable[[], str]) -> Any:
    """The job's row once the engine itself reports a stage (so a kill lands mid-job);
    on a timeout the error carries `log()` (the worker's or backend's output)."""

    def running() -> dict[str, Any] | None:
        row = job(runtime, job_id)
        return row if row["status"] == "PROCESSING" and row["stage"] in ENGINE_STAGES else None

    try:
        return wait_until(running, ENGINE_START_TIMEOUT, "the engine to run the job", step=0.02)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{log()}") from None


def wait_finished(runtime: Runtime, job_ids: list[uuid.UUID], log: Callable[[], str]) -> None:
    def finished() -> bool:
        return all(job(runtime, i)["status"] in ("COMPLETED", "FAILED") for i in job_ids)

    try:
        wait_until(finished, ENGINE_RUN_TIMEOUT, "the jobs to finish", step=0.1)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{log()}") from None


def completed_once(runtime: Runtime, job_id: uuid.UUID) -> dict[str, Any]:
    """Assert the job COMPLETED exactly once (one `completed` event) and was billed once (one
    usage row, by the worker that completed it); return its row."""
    row = job(runtime, job_id)
    assert row["status"] == "COMPLETED", row["error"]
    history = [e for e, _ in events(runtime, job_id)]
    assert history.count("completed") == 1, history
    with runtime.db.transaction() as conn:
        usage = conn.execute(
            "SELECT worker_id FROM public.gpu_usage_logs WHERE job_id = %s", (job_id,)
        ).fetchall()
    assert [u["worker_id"] for u in usage] == [row["worker_id"]]
    return row
