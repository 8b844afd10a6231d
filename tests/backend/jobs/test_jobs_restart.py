"""A restarted backend loses no job: `nojoin-backend` processes (embedded dispatch: the
worker runs inside the API) on one database and storage. Jobs are queued and one is mid-job
when the API stops (SIGTERM) or crashes (SIGKILL); a new API process on the same database
completes every one of them exactly once, billed once.

Its own module, with no in-process API: nothing but the backend processes started here may
reap or run these jobs."""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable
from typing import Any

import httpx
import psutil
import pytest
from job_checks import (
    JOBS,
    completed_once,
    events,
    job,
    submit,
    wait_engine_running,
    wait_finished,
)

from backend.runtime import Runtime
from nojoin.testing.synth import SynthMeeting

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
def job_settings_overrides() -> dict[str, Any]:
    return {"job_dispatch": "embedded"}


def embedded_worker_id(pid: int) -> str:
    """What `default_worker_id("embedded")` names the in-process worker of API `pid`."""
    return f"{socket.gethostname()}:{pid}:embedded"


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_restarted_backend_loses_no_job(
    stop: signal.Signals,
    runtime: Runtime,
    create_user: Callable[..., Any],
    short_meeting: SynthMeeting,
    tiny_meeting: SynthMeeting,
    start_backend: Callable[..., Any],
) -> None:
    user = create_user()
    first = start_backend()
    with httpx.Client(base_url=first.url, timeout=60) as http:
        # The first job is taken by the API's worker; the others wait behind it.
        running = submit(http, user, short_meeting.path, {"model": "tiny.en", "diarize": True})
        queued = [
            submit(http, user, tiny_meeting.path, {"model": "tiny.en", "diarize": False})
            for _ in range(2)
        ]
    held = wait_engine_running(runtime, running, first.log)
    assert held["worker_id"] == embedded_worker_id(first.pid)
    assert {job(runtime, i)["status"] for i in queued} == {"QUEUED"}
    engine_procs = psutil.Process(first.pid).children(recursive=True)
    assert engine_procs, "the engine reported progress, so its process must exist"

    if stop == signal.SIGTERM:
        first.stop()
        assert first.proc.returncode == 0, first.log()
        # A clean shutdown hands the running job back at once, no attempt counted.
        row = job(runtime, running)
        assert row["status"] == "QUEUED" and row["attempts"] == 0, (row, first.log())
    else:
        first.kill9()
        # A crash leaves it PROCESSING under a lease nobody renews.
        row = job(runtime, running)
        assert row["status"] == "PROCESSING" and row["lease_token"] is not None
    gone, alive = psutil.wait_procs(engine_procs, timeout=60)
    assert not alive, f"orphaned engine processes: {alive}"
    assert {job(runtime, i)["status"] for i in queued} == {"QUEUED"}

    # A new API process on the same database and storage.
    second = start_backend()
    ids = [running, *queued]
    wait_finished(runtime, ids, second.log)
    for job_id in ids:
        done = completed_once(runtime, job_id)
        assert done["worker_id"] == embedded_worker_id(second.pid)
    history = [e for e, _ in events(runtime, running)]
    if stop == signal.SIGTERM:
        assert history == ["requeued", "completed"]
        assert job(runtime, running)["attempts"] == 1
        # Handed back in its place in the line: still the first of the three to be done.
        finished = {i: job(runtime, i)["finished_at"] for i in ids}
        assert min(finished, key=finished.__getitem__) == running
    else:
        # The new API's maintenance loop reaped the dead worker's lease.
        assert history == ["lease_expired", "completed"]
        assert job(runtime, running)["attempts"] == 2
    assert job(runtime, running)["result"]["speakers"] == ["SPEAKER_00", "SPEAKER_01"]

    r = httpx.get(f"{second.url}{JOBS}/{queued[0]}", headers=user.headers)
    assert r.status_code == 200 and r.json()["status"] == "COMPLETED"
    assert "report" in r.json()["result"]["segments"][0]["text"].lower()
    second.stop()
    assert second.proc.returncode == 0, second.log()
