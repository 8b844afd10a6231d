"""The queue's guarantees at the SQL level, on a real PostgreSQL: SKIP LOCKED claims, fresh
lease tokens, fencing of late workers, one usage row per job, reaper backoff, cancel, RLS."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from backend.db import Connection
from backend.jobs.queue import JobQueue
from backend.jobs.repository import JobRepository, JobState
from backend.jobs.settings import JobSettings
from backend.runtime import Runtime

pytestmark = pytest.mark.postgres

LEASE = 30.0


@pytest.fixture(scope="module")
def queue(runtime: Runtime) -> JobQueue:
    settings = JobSettings(
        job_lease_seconds=LEASE, job_backoff_base_seconds=10.0, job_backoff_max_seconds=100.0
    )
    return JobQueue(runtime.db, settings)


@pytest.fixture(autouse=True)
def empty_queue(runtime: Runtime) -> None:
    with runtime.db.transaction() as conn:
        conn.execute("DELETE FROM public.jobs")


@pytest.fixture(scope="module")
def user(create_user: Callable[..., Any]) -> Any:
    return create_user()


def add_job(runtime: Runtime, user_id: uuid.UUID, **kw: Any) -> uuid.UUID:
    job_id = uuid.uuid4()
    with runtime.db.transaction() as conn:
        JobRepository.from_session(conn).insert_job(
            job_id=job_id,
            user_id=user_id,
            kind=kw.get("kind", "transcribe"),
            params={},
            idempotency_key=kw.get("key"),
            priority=kw.get("priority", 100),
            max_attempts=kw.get("max_attempts", 3),
            audio_seconds=1.0,
            input_size=10,
        )
    return job_id


def expire_lease(runtime: Runtime, job_id: uuid.UUID) -> None:
    with runtime.db.transaction() as conn:
        conn.execute(
            "UPDATE public.jobs SET lease_expires_at = now() - interval '1 second' WHERE id = %s",
            (job_id,),
        )


def make_due(runtime: Runtime, job_id: uuid.UUID) -> None:
    with runtime.db.transaction() as conn:
        conn.execute("UPDATE public.jobs SET run_after = now() WHERE id = %s", (job_id,))


def row(runtime: Runtime, job_id: uuid.UUID) -> dict[str, Any]:
    with runtime.db.transaction() as conn:
        r = conn.execute("SELECT * FROM public.jobs WHERE id = %s", (job_id,)).fetchone()
    assert r is not None
    return r


def count(runtime: Runtime, sql: str, *params: Any) -> int:
    with runtime.db.transaction() as conn:
        r = conn.execute(sql, params).fetchone()
    assert r is not None
    return int(next(iter(r.values())))


def test_claim_order_and_fresh_tokens(runtime: Runtime, queue: JobQueue, user: Any) -> None:
    low = add_job(runtime, user.id, priority=200)
    high = add_job(runtime, user.id, priority=10)
    first = queue.claim_next("w1")
    second = queue.claim_next("w2")
    assert first is not None and second is not None
    assert first.job_id == high and second.job_id == low  # lower number = more urgent
    assert first.token != second.token
    assert queue.claim_next("w3") is None  # nothing claimable left
    r = row(runtime, high)
    assert r["status"] == "PROCESSING" and r["worker_id"] == "w1" and r["attempts"] == 1
    assert r["lease_expires_at"] > r["heartbeat_at"]


def test_concurrent_claims_take_each_job_once(runtime: Runtime, queue: JobQueue, user: Any) -> None:
    ids = {add_job(runtime, user.id) for _ in range(40)}
    claimed: list[uuid.UUID] = []
    lock = threading.Lock()

    def claimer(n: int) -> None:
        while (lease := queue.claim_next(f"w{n}")) is not None:
            with lock:
                claimed.append(lease.job_id)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(claimed) == sorted(ids)  # every job once, none twice


def test_claim_skips_rows_locked_by_another_transaction(
    runtime: Runtime, queue: JobQueue, user: Any
) -> None:
    a = add_job(runtime, user.id, priority=1)
    b = add_job(runtime, user.id, priority=2)
    with runtime.db.transaction() as conn:
        conn.execute("SELECT 1 FROM public.jobs WHERE id = %s FOR UPDATE", (a,))
        lease = queue.claim_next("w")  # another connection: must not wait for the lock
        assert lease is not None and lease.job_id == b


def test_claimable_index_only_covers_queued_rows(runtime: Runtime) -> None:
    with runtime.db.transaction() as conn:
        r = conn.execute(
            "SELECT pg_get_indexdef('public.jobs_claimable_idx'::regclass) AS d"
        ).fetchone()
    assert r is not None and "WHERE (status = 'QUEUED'::text)" in r["d"]


def test_heartbeat_extends_and_reports_cancel(runtime: Runtime, queue: JobQueue, user: Any) -> None:
    job = add_job(runtime, user.id)
    lease = queue.claim_next("w")
    assert lease is not None
    before = row(runtime, job)["lease_expires_at"]
    hb = queue.heartbeat(lease, progress=0.4, stage="transcribing")
    assert hb.held and not hb.cancel_requested
    r = row(runtime, job)
    assert r["lease_expires_at"] >= before and r["progress"] == pytest.approx(0.4)
    with runtime.db.transaction() as conn:
        assert JobRepository.from_session(conn).request_cancel(user.id, job) is not None
    assert queue.heartbeat(lease).cancel_requested
    assert queue.cancel_running(lease)
    r = row(runtime, job)
    assert r["status"] == "CANCELED" and r["lease_token"] is None


def test_complete_writes_one_usage_row_and_fences_duplicates(
    runtime: Runtime, queue: JobQueue, user: Any
) -> None:
    job = add_job(runtime, user.id)
    lease = queue.claim_next("w")
    assert lease is not None
    result = {"duration": 1.0, "language": "en", "speakers": [], "segments": []}
    assert queue.complete(lease, result, duration_seconds=2.5, audio_seconds=1.0)
    # A duplicate completion (retry after a lost ack, a second worker) changes nothing.
    assert not queue.complete(lease, {"evil": True}, duration_seconds=9, audio_seconds=9)
    assert not queue.heartbeat(lease).held
    assert queue.fail(lease, "late failure", retryable=False) is None
    r = row(runtime, job)
    assert r["status"] == "COMPLETED" and r["result"] == result and r["progress"] == 1
    usage = count(runtime, "SELECT count(*) FROM public.gpu_usage_logs WHERE job_id = %s", job)
    assert usage == 1
    done = count(
        runtime,
        "SELECT count(*) FROM public.job_events WHERE job_id = %s AND event = 'completed'",
        job,
    )
    assert done == 1


def test_cancel_requested_while_running_beats_a_late_completion(
    runtime: Runtime, queue: JobQueue, user: Any
) -> None:
    job = add_job(runtime, user.id)
    lease = queue.claim_next("w")
    assert lease is not None
    with runtime.db.transaction() as conn:
        assert JobRepository.from_session(conn).request_cancel(user.id, job) is not None
    # The engine finished before the worker's next heartbeat saw the cancel.
    assert not queue.complete(lease, {"segments": []}, duration_seconds=1, audio_seconds=1)
    assert queue.cancel_running(lease)
    r = row(runtime, job)
    assert r["status"] == "CANCELED" and r["result"] is None
    assert count(runtime, "SELECT count(*) FROM public.gpu_usage_logs WHERE job_id = %s", job) == 0


def test_usage_row_is_unique_per_job_even_if_inserted_again(
    runtime: Runtime, queue: JobQueue, user: Any
) -> None:
    job = add_job(runtime, user.id)
    lease = queue.claim_next("w")
    assert lease is not None
    assert queue.complete(lease, {"segments": []}, duration_seconds=1, audio_seconds=1)
    with pytest.raises(psycopg.errors.UniqueViolation):
        with runtime.db.transaction() as conn:
            conn.execute(
                "INSERT INTO public.gpu_usage_logs (job_id, user_id, kind, duration_seconds,"
                " worker_id) VALUES (%s, %s, 'transcribe', 1, 'x')",
                (job, user.id),
            )


def test_reaper_requeues_with_backoff_then_fails(
    runtime: Runtime, queue: JobQueue, user: Any
) -> None:
    job = add_job(runtime, user.id, max_attempts=2)
    lease1 = queue.claim_next("dead-worker")
    assert lease1 is not None
    assert queue.heartbeat(lease1, progress=0.5, stage="transcribing").held
    expire_lease(runtime, job)
    assert queue.reap().requeued == 1
    r = row(runtime, job)
    assert r["status"] == "QUEUED" and r["lease_token"] is None and r["attempts"] == 1
    assert r["progress"] == 0 and r["stage"] is None  # the retry starts from scratch
    # attempt 1 -> base 10 s with jitter in [0.5, 1.0]
    delay = r["run_after"] - count_now(runtime)
    assert timedelta(seconds=4.5) <= delay <= timedelta(seconds=10.5)
    assert queue.claim_next("w2") is None  # still backing off
    # The dead worker wakes up: its heartbeat and completion are refused.
    assert not queue.heartbeat(lease1).held
    assert not queue.complete(lease1, {"segments": []}, duration_seconds=1, audio_seconds=1)
    make_due(runtime, job)
    lease2 = queue.claim_next("w2")
    assert lease2 is not None and lease2.token != lease1.token and lease2.job.attempts == 2
    assert not queue.complete(lease1, {"segments": []}, duration_seconds=1, audio_seconds=1)
    expire_lease(runtime, job)
    assert queue.reap().failed == 1  # max_attempts reached
    r = row(runtime, job)
    assert r["status"] == "FAILED" and "stopped responding" in r["error"]
    assert count(runtime, "SELECT count(*) FROM public.gpu_usage_logs WHERE job_id = %s", job) == 0


def count_now(runtime: Runtime) -> Any:
    with runtime.db.transaction() as conn:
        r = conn.execute("SELECT now() AS n").fetchone()
    assert r is not None
    return r["n"]


def test_backoff_grows_exponentially_and_is_capped(runtime: Runtime, user: Any) -> None:
    settings = JobSettings(
        job_lease_seconds=LEASE, job_backoff_base_seconds=10.0, job_backoff_max_seconds=30.0
    )
    q = JobQueue(runtime.db, settings)
    job = add_job(runtime, user.id, max_attempts=10)
    delays = []
    for _ in range(4):
        make_due(runtime, job)
        lease = q.claim_next("w")
        assert lease is not None
        assert q.fail(lease, "transient", retryable=True) == "QUEUED"
        delays.append((row(runtime, job)["run_after"] - count_now(runtime)).total_seconds())
    # attempts 1..4 -> nominal 10, 20, 40->30 (cap), 80->30; jitter keeps 50-100 % of it.
    for got, nominal in zip(delays, (10, 20, 30, 30), strict=True):
        assert 0.5 * nominal - 0.5 <= got <= nominal + 0.5, delays


def test_permanent_failure_and_release(runtime: Runtime, queue: JobQueue, user: Any) -> None:
    job = add_job(runtime, user.id)
    later = add_job(runtime, user.id)
    lease = queue.claim_next("w")
    assert lease is not None and lease.job_id == job
    assert queue.release(lease)  # shutdown: back at once, attempt not counted
    r = row(runtime, job)
    assert r["status"] == "QUEUED" and r["attempts"] == 0
    # ... and in its old place in the line: a worker's restart does not send it to the back.
    lease = queue.claim_next("w")
    assert lease is not None and lease.job_id == job
    assert queue.release(lease)
    with runtime.db.transaction() as conn:
        conn.execute("DELETE FROM public.jobs WHERE id = %s", (later,))
    lease = queue.claim_next("w")
    assert lease is not None
    assert queue.fail(lease, "not audio", retryable=False) == "FAILED"
    r = row(runtime, job)
    assert r["status"] == "FAILED" and r["error"] == "not audio" and r["finished_at"] is not None


def test_cancel_queued_job_and_finished_job(runtime: Runtime, user: Any) -> None:
    job = add_job(runtime, user.id)
    other = uuid.uuid4()
    with runtime.db.transaction() as conn:
        assert JobRepository.from_session(conn).request_cancel(other, job) is None  # not the owner
        canceled = JobRepository.from_session(conn).request_cancel(user.id, job)
        assert canceled is not None and canceled.status == "CANCELED"
        assert (
            JobRepository.from_session(conn).request_cancel(user.id, job) is None
        )  # already finished


def test_idempotency_key_is_unique_per_user(runtime: Runtime, user: Any, create_user: Any) -> None:
    first = add_job(runtime, user.id, key="abc")
    with runtime.db.transaction() as conn:
        again, created = JobRepository.from_session(conn).insert_job(
            job_id=uuid.uuid4(),
            user_id=user.id,
            kind="transcribe",
            params={},
            idempotency_key="abc",
            priority=100,
            max_attempts=3,
            audio_seconds=None,
            input_size=None,
        )
    assert not created and again.id == first
    other_user = create_user()
    assert add_job(runtime, other_user.id, key="abc") != first  # keys are per user


# --- Row Level Security, as a Supabase project enforces it ------------------------------


def as_user(conn: Connection, user_id: uuid.UUID | None, role: str = "authenticated") -> None:
    conn.execute(f"SET LOCAL ROLE {role}")
    claims = {"sub": str(user_id), "role": role} if user_id else {"role": role}
    conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))


def test_rls_users_read_only_their_own_jobs_and_usage(
    runtime: Runtime, queue: JobQueue, create_user: Any
) -> None:
    alice, bob = create_user(), create_user()
    a_job = add_job(runtime, alice.id)
    add_job(runtime, bob.id)
    lease = queue.claim_job(a_job, "w")
    assert lease is not None
    assert queue.complete(lease, {"segments": []}, duration_seconds=1, audio_seconds=1)
    with runtime.db.pool.connection() as conn:
        with conn.transaction():
            as_user(conn, alice.id)
            jobs = conn.execute("SELECT id FROM public.jobs").fetchall()
            assert [r["id"] for r in jobs] == [a_job]
            usage = conn.execute("SELECT job_id FROM public.gpu_usage_logs").fetchall()
            assert [r["job_id"] for r in usage] == [a_job]
            events = conn.execute("SELECT DISTINCT job_id FROM public.job_events").fetchall()
            assert [r["job_id"] for r in events] == [a_job]
        with conn.transaction():
            as_user(conn, bob.id)
            assert (
                conn.execute("SELECT id FROM public.jobs WHERE id = %s", (a_job,)).fetchall() == []
            )
            assert conn.execute("SELECT * FROM public.gpu_usage_logs").fetchall() == []
        with conn.transaction():
            as_user(conn, None, role="anon")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT id FROM public.jobs")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE public.jobs SET status = 'COMPLETED' WHERE user_id = %(uid)s",
        "INSERT INTO public.jobs (user_id, kind) VALUES (%(uid)s, 'transcribe')",
        "DELETE FROM public.jobs WHERE user_id = %(uid)s",
        "INSERT INTO public.gpu_usage_logs (job_id, user_id, kind, duration_seconds, worker_id)"
        " VALUES (gen_random_uuid(), %(uid)s, 'x', 0, 'x')",
        "DELETE FROM public.gpu_usage_logs WHERE user_id = %(uid)s",
    ],
)
def test_rls_users_cannot_write_jobs_or_usage(runtime: Runtime, user: Any, statement: str) -> None:
    add_job(runtime, user.id)
    with runtime.db.pool.connection() as conn:
        with conn.transaction():
            as_user(conn, user.id)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement, {"uid": user.id})


def test_rls_service_role_writes(runtime: Runtime, user: Any) -> None:
    job = add_job(runtime, user.id)
    with runtime.db.pool.connection() as conn:
        with conn.transaction():
            as_user(conn, None, role="service_role")
            lease = JobRepository.from_session(conn).claim_job(job, "svc-worker", 10)
            assert lease is not None
            assert JobRepository.from_session(conn).complete(
                lease, {"segments": []}, duration_seconds=1, audio_seconds=1
            )


def test_job_state_enum_mirrors_the_database_check(runtime: Runtime, user: Any) -> None:
    """JobState and the CHECK on public.jobs.status name the same five states: every member
    is storable and reads back as itself; anything else is refused by the database."""
    with runtime.db.transaction() as conn:
        definition = conn.execute(
            "SELECT pg_get_constraintdef(c.oid) AS d FROM pg_constraint c"
            " WHERE c.conrelid = 'public.jobs'::regclass AND c.contype = 'c'"
            " AND pg_get_constraintdef(c.oid) LIKE 'CHECK ((status = ANY%%'"
        ).fetchone()
    assert definition is not None
    assert set(re.findall(r"'([A-Z]+)'::text", definition["d"])) == {s.value for s in JobState}
    job_id = add_job(runtime, user.id)
    for state in JobState:
        with runtime.db.transaction() as conn:
            # The other CHECKs tie finished_at/lease/result to the state: satisfy them.
            conn.execute(
                "UPDATE public.jobs SET status = %s,"
                " lease_token = CASE WHEN %s = 'PROCESSING' THEN gen_random_uuid() END,"
                " lease_expires_at = CASE WHEN %s = 'PROCESSING' THEN now() END,"
                " finished_at = CASE WHEN %s IN ('COMPLETED', 'FAILED', 'CANCELED')"
                " THEN now() END,"
                " result = CASE WHEN %s = 'COMPLETED' THEN '{}'::jsonb END WHERE id = %s",
                (state, state, state, state, state, job_id),
            )
            job = JobRepository.from_session(conn).get_job(job_id)
        assert job is not None and job.status is state
    with pytest.raises(psycopg.errors.CheckViolation), runtime.db.transaction() as conn:
        conn.execute("UPDATE public.jobs SET status = 'PAUSED' WHERE id = %s", (job_id,))
