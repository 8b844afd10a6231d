"""Production dispatch: the API sends job ids through a real Redis to a real Celery worker
(`nojoin-worker --mode celery`, a subprocess) running the engine; duplicates and lost
messages are harmless because the database row is the truth; a worker killed mid-job (its
message still unacknowledged in Redis) costs a lease, not the job, and one stopped mid-job
(SIGTERM) hands it back at once."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psutil
import pytest
import redis
from job_checks import (
    completed_once,
    events,
    job,
    scalar,
    submit,
    wait_engine_running,
    wait_finished,
)

from backend.jobs.celery_app import CeleryDispatcher, make_celery
from backend.jobs.settings import JobSettings
from backend.runtime import Runtime
from nojoin.models import Transcript
from nojoin.processing.contract import CancelToken, ProcessingOptions
from nojoin.processing.strategies.remote_strategy import RemoteProcessingStrategy, StaticConnection
from nojoin.testing.synth import SynthMeeting

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


@pytest.fixture(scope="module")
def job_settings_overrides(redis_url: str) -> dict[str, Any]:
    return {"job_dispatch": "celery", "redis_url": redis_url}


@pytest.fixture(scope="module")
def user(create_user: Callable[..., Any]) -> Any:
    return create_user()


@pytest.fixture
def remote(live_server: str, user: Any) -> Iterator[RemoteProcessingStrategy]:
    strategy = RemoteProcessingStrategy(
        StaticConnection(live_server, user.token), poll_initial=0.1, poll_max=0.5
    )
    yield strategy
    strategy.close()


@pytest.fixture
def celery_worker(start_worker: Callable[..., Any], redis_url: str) -> Any:
    return start_worker("--mode", "celery", "--worker-id", "gpu1", NOJOIN_REDIS_URL=redis_url)


def test_celery_worker_result_equals_local_and_duplicates_are_harmless(
    remote: RemoteProcessingStrategy,
    runtime: Runtime,
    job_settings: JobSettings,
    short_meeting: SynthMeeting,
    local_results: dict[bool, Transcript],
    celery_worker: Any,
    wait_until: Callable[..., Any],
) -> None:
    try:
        got = remote.process(
            short_meeting.path,
            ProcessingOptions(model="tiny.en", diarize=False),
            lambda _: None,
            CancelToken(),
        )
    except Exception:
        print(celery_worker.log())
        raise
    assert got.to_dict() == local_results[False].to_dict()
    job_id = uuid.UUID(str(remote.last_job_id))
    assert job(runtime, job_id)["worker_id"] == "gpu1"

    # The same job id delivered again (a redelivery, a duplicate send): claimed by no one.
    # (The API's maintenance loop may already have re-sent it while the worker was starting,
    # so wait for two more refusals than were logged before these sends.)
    not_claimable = f"job {job_id} not claimable"
    before = celery_worker.log().count(not_claimable)
    dispatcher = CeleryDispatcher(make_celery(job_settings), job_settings.celery_queue)
    dispatcher([job_id, job_id])
    dispatcher.close()
    wait_until(
        lambda: celery_worker.log().count(not_claimable) >= before + 2,
        30,
        "the worker to ack the duplicates",
    )
    assert (
        scalar(
            runtime,
            "SELECT count(*) FROM public.job_events WHERE job_id = %s AND event = 'completed'",
            job_id,
        )
        == 1
    )
    assert (
        scalar(runtime, "SELECT count(*) FROM public.gpu_usage_logs WHERE job_id = %s", job_id) == 1
    )
    assert scalar(runtime, "SELECT attempts FROM public.jobs WHERE id = %s", job_id) == 1


def test_lost_broker_message_is_redispatched(
    remote: RemoteProcessingStrategy,
    redis_url: str,
    tiny_meeting: SynthMeeting,
    start_worker: Callable[..., Any],
) -> None:
    """Redis loses the queued message (restart without persistence): the API's maintenance
    loop sends the still-QUEUED job again and a worker started afterwards completes it."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        outcome["t"] = remote.process(
            tiny_meeting.path,
            ProcessingOptions(model="tiny.en", diarize=False),
            lambda _: None,
            CancelToken(),
        )

    t = threading.Thread(target=run)
    t.start()
    # No worker yet: wait for the message, then throw it away.
    r = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 60  # hang detector: the upload may be slow on a busy machine
    while r.llen("nojoin-jobs") == 0:
        assert time.monotonic() < deadline, "no message reached Redis"
        time.sleep(0.02)
    r.flushall()
    r.close()
    worker = start_worker("--mode", "celery", "--worker-id", "gpu2", NOJOIN_REDIS_URL=redis_url)
    t.join(timeout=240)  # hang detector: a new worker starts its engine, then runs the job
    assert not t.is_alive(), worker.log()
    assert "report" in outcome["t"].text.lower()


def test_kill_9_mid_job_then_the_job_is_redispatched_and_completed_once(
    http: httpx.Client,
    runtime: Runtime,
    user: Any,
    short_meeting: SynthMeeting,
    redis_url: str,
    start_worker: Callable[..., Any],
) -> None:
    """kill -9 of a Celery worker mid-job: its message stays unacknowledged in Redis (until the
    visibility timeout, hours), so the job comes back through its lease instead: the API's
    reaper requeues it and its maintenance loop sends it again, to another worker."""
    job_id = submit(http, user, short_meeting.path, {"model": "tiny.en", "diarize": True})
    doomed = start_worker("--mode", "celery", "--worker-id", "doomed", NOJOIN_REDIS_URL=redis_url)
    held = wait_engine_running(runtime, job_id, doomed.log)
    assert held["worker_id"] == "doomed"
    engine_procs = psutil.Process(doomed.pid).children(recursive=True)
    assert engine_procs, "the engine reported progress, so its process must exist"
    doomed.kill9()
    rescuer = start_worker("--mode", "celery", "--worker-id", "rescuer", NOJOIN_REDIS_URL=redis_url)
    gone, alive = psutil.wait_procs(engine_procs, timeout=60)
    assert not alive, f"orphaned engine processes: {alive}"

    wait_finished(runtime, [job_id], rescuer.log)
    done = completed_once(runtime, job_id)
    assert done["worker_id"] == "rescuer" and done["attempts"] == 2
    assert done["result"]["speakers"] == ["SPEAKER_00", "SPEAKER_01"]
    assert [e for e, _ in events(runtime, job_id)] == ["lease_expired", "completed"]


def test_sigterm_mid_job_hands_it_back_and_another_worker_completes_it_once(
    http: httpx.Client,
    runtime: Runtime,
    user: Any,
    short_meeting: SynthMeeting,
    redis_url: str,
    start_worker: Callable[..., Any],
) -> None:
    """SIGTERM (a deploy, a drained GPU host) does not wait for the running job, which could
    take an hour: the worker hands it back and exits; the API sends it to another worker."""
    job_id = submit(http, user, short_meeting.path, {"model": "tiny.en", "diarize": True})
    leaving = start_worker("--mode", "celery", "--worker-id", "leaving", NOJOIN_REDIS_URL=redis_url)
    wait_engine_running(runtime, job_id, leaving.log)
    engine_procs = psutil.Process(leaving.pid).children(recursive=True)
    assert engine_procs, "the engine reported progress, so its process must exist"
    leaving.stop()
    assert leaving.proc.returncode == 0, leaving.log()
    # Handed back (no lease expired), unbilled, no attempt counted, before the worker exited.
    row = job(runtime, job_id)
    assert row["status"] == "QUEUED" and row["attempts"] == 0, (row, leaving.log())
    assert events(runtime, job_id) == [("requeued", "worker shut down")]
    assert (
        scalar(runtime, "SELECT count(*) FROM public.gpu_usage_logs WHERE job_id = %s", job_id) == 0
    )
    gone, alive = psutil.wait_procs(engine_procs, timeout=30)
    assert not alive, f"orphaned engine processes: {alive}"

    taker = start_worker("--mode", "celery", "--worker-id", "taker", NOJOIN_REDIS_URL=redis_url)
    wait_finished(runtime, [job_id], taker.log)
    done = completed_once(runtime, job_id)
    assert done["worker_id"] == "taker" and done["attempts"] == 1
    assert [e for e, _ in events(runtime, job_id)] == ["requeued", "completed"]
