"""All SQL of the job queue: create, read, claim (SKIP LOCKED), heartbeat, finish, reap.

`JobRepository` works over one session (a connection already inside a transaction) and never
commits.
Worker-side writes are *fenced*: they match `lease_token` and status PROCESSING, so a worker
whose lease expired (and was reaped or re-claimed) changes nothing and learns so from the
return value.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from psycopg.types.json import Jsonb

from backend.db import Repository


class JobState(StrEnum):
    """A job's status: QUEUED -> PROCESSING -> COMPLETED / FAILED, or CANCELED. The same five
    values as the CHECK constraint on `public.jobs.status` (migration 0100_jobs.sql), which
    stays the database's own guard; the SQL below spells them as literals."""

    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


FINISHED = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELED})


@dataclass(frozen=True, slots=True)
class JobRow:
    id: uuid.UUID
    user_id: uuid.UUID
    kind: str
    params: dict[str, Any]
    status: JobState
    priority: int
    attempts: int
    max_attempts: int
    run_after: datetime
    lease_token: uuid.UUID | None
    lease_expires_at: datetime | None
    worker_id: str | None
    cancel_requested: bool
    progress: float
    stage: str | None
    audio_seconds: float | None
    input_size: int | None
    idempotency_key: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    result: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> JobRow:
        values = {name: row[name] for name in cls.__slots__}
        values["status"] = JobState(values["status"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Lease:
    """A claimed job: the row as claimed plus the token that fences every later write."""

    job: JobRow
    token: uuid.UUID
    worker_id: str

    @property
    def job_id(self) -> uuid.UUID:
        return self.job.id


@dataclass(frozen=True, slots=True)
class HeartbeatResult:
    """`held` False: the lease is gone (expired and reaped, or finished); stop working."""

    held: bool
    cancel_requested: bool = False


@dataclass(frozen=True, slots=True)
class ReapResult:
    requeued: int = 0
    failed: int = 0
    canceled: int = 0

    @property
    def total(self) -> int:
        return self.requeued + self.failed + self.canceled


_JOB_COLUMNS = ", ".join(JobRow.__slots__)


_CLAIM_SET = """
    status = 'PROCESSING',
    lease_token = gen_random_uuid(),
    lease_expires_at = now() + make_interval(secs => %(lease)s),
    worker_id = %(worker)s,
    heartbeat_at = now(),
    attempts = attempts + 1,
    started_at = coalesce(started_at, now()),
    stage = 'starting',
    error = NULL
"""


def _lease(row: dict[str, Any] | None, worker_id: str) -> Lease | None:
    if row is None:
        return None
    job = JobRow.from_row(row)
    assert job.lease_token is not None
    return Lease(job=job, token=job.lease_token, worker_id=worker_id)


def _clamp(progress: float | None) -> float | None:
    if progress is None:
        return None
    return min(1.0, max(0.0, float(progress)))


class JobRepository(Repository):
    """The job queue's SQL over one session (see the module docstring for the fencing rule)."""

    # --- submission and reading (API side) -------------------------------------------------

    def insert_job(
        self,
        *,
        job_id: uuid.UUID,
        user_id: uuid.UUID,
        kind: str,
        params: dict[str, Any],
        idempotency_key: str | None,
        priority: int,
        max_attempts: int,
        audio_seconds: float | None,
        input_size: int | None,
    ) -> tuple[JobRow, bool]:
        """Insert a QUEUED job; with an idempotency key already used by this user, return the
        existing job instead. Returns (job, created)."""
        row = self.session.execute(
            f"""
            INSERT INTO public.jobs (id, user_id, kind, params, idempotency_key, priority,
                                     max_attempts, audio_seconds, input_size)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
            RETURNING {_JOB_COLUMNS}
            """,
            (
                job_id,
                user_id,
                kind,
                Jsonb(params),
                idempotency_key,
                priority,
                max_attempts,
                audio_seconds,
                input_size,
            ),
        ).fetchone()
        if row is not None:
            return JobRow.from_row(row), True
        assert idempotency_key is not None  # only the idempotency index can conflict here
        existing = self.find_by_idempotency_key(user_id, idempotency_key)
        assert existing is not None
        return existing, False

    def find_by_idempotency_key(self, user_id: uuid.UUID, key: str) -> JobRow | None:
        row = self.session.execute(
            f"SELECT {_JOB_COLUMNS} FROM public.jobs WHERE user_id = %s AND idempotency_key = %s",
            (user_id, key),
        ).fetchone()
        return JobRow.from_row(row) if row else None

    def add_file(
        self,
        job_id: uuid.UUID,
        kind: str,
        storage_path: str,
        *,
        size: int | None = None,
        content_type: str | None = None,
    ) -> None:
        self.session.execute(
            """
            INSERT INTO public.job_files (job_id, kind, storage_path, size, content_type)
            VALUES (%s, %s, %s, %s, %s) ON CONFLICT (job_id, kind, storage_path) DO NOTHING
            """,
            (job_id, kind, storage_path, size, content_type),
        )

    def file_path(self, job_id: uuid.UUID, kind: str) -> str | None:
        row = self.session.execute(
            "SELECT storage_path FROM public.job_files WHERE job_id = %s AND kind = %s"
            " ORDER BY id LIMIT 1",
            (job_id, kind),
        ).fetchone()
        return str(row["storage_path"]) if row else None

    def get_job(self, job_id: uuid.UUID) -> JobRow | None:
        row = self.session.execute(
            f"SELECT {_JOB_COLUMNS} FROM public.jobs WHERE id = %s", (job_id,)
        ).fetchone()
        return JobRow.from_row(row) if row else None

    def get_user_job(self, user_id: uuid.UUID, job_id: uuid.UUID) -> JobRow | None:
        row = self.session.execute(
            f"SELECT {_JOB_COLUMNS} FROM public.jobs WHERE id = %s AND user_id = %s",
            (job_id, user_id),
        ).fetchone()
        return JobRow.from_row(row) if row else None

    def list_user_jobs(
        self, user_id: uuid.UUID, *, limit: int, status: JobState | None = None
    ) -> list[JobRow]:
        rows = self.session.execute(
            f"""
            SELECT {_JOB_COLUMNS} FROM public.jobs
            WHERE user_id = %s AND (%s::text IS NULL OR status = %s)
            ORDER BY created_at DESC, id LIMIT %s
            """,
            (user_id, status, status, limit),
        ).fetchall()
        return [JobRow.from_row(r) for r in rows]

    def request_cancel(self, user_id: uuid.UUID, job_id: uuid.UUID) -> JobRow | None:
        """Cancel a queued job at once; flag a running one (its worker stops at the next stage).

        Returns the updated row, or None when the job is missing, not the user's, or finished."""
        row = self.session.execute(
            f"""
            UPDATE public.jobs SET
                status = CASE WHEN status = 'QUEUED' THEN 'CANCELED' ELSE status END,
                finished_at = CASE WHEN status = 'QUEUED' THEN now() ELSE finished_at END,
                error = CASE WHEN status = 'QUEUED' THEN 'Canceled by the user.' ELSE error END,
                cancel_requested = true
            WHERE id = %s AND user_id = %s AND status IN ('QUEUED', 'PROCESSING')
            RETURNING {_JOB_COLUMNS}
            """,
            (job_id, user_id),
        ).fetchone()
        if row is None:
            return None
        job = JobRow.from_row(row)
        if job.status is JobState.CANCELED:
            self._event(job.id, "canceled", job.attempts, None, "canceled while queued")
        return job

    def mark_dispatched(self, job_ids: list[uuid.UUID]) -> None:
        self.session.execute(
            "UPDATE public.jobs SET dispatched_at = now() WHERE id = ANY(%s)", (job_ids,)
        )

    def due_undispatched(self, *, older_than_seconds: float, limit: int = 500) -> list[uuid.UUID]:
        """Queued, due jobs not handed to the broker in the last `older_than_seconds` (or never):
        what a lost broker message, a restart or a backoff left waiting. Marks them dispatched."""
        rows = self.session.execute(
            """
            UPDATE public.jobs SET dispatched_at = now()
            WHERE id IN (
                SELECT id FROM public.jobs
                WHERE status = 'QUEUED' AND run_after <= now()
                  AND (dispatched_at IS NULL
                       OR dispatched_at < now() - make_interval(secs => %s))
                ORDER BY priority, run_after, created_at
                LIMIT %s
                FOR UPDATE SKIP LOCKED
            )
            RETURNING id
            """,
            (older_than_seconds, limit),
        ).fetchall()
        return [r["id"] for r in rows]

    # --- worker side ----------------------------------------------------------------------

    def _relaxed_commit(self) -> None:
        """Claims and heartbeats may skip the WAL flush at commit (about 8x the throughput here).

        Safe because losing one in a database crash only ever moves a job *back*: a lost claim
        leaves it QUEUED, a lost heartbeat makes its lease expire sooner; the worker's next fenced
        write then fails and it stops. Completion, failure and cancel stay fully durable."""
        self.session.execute("SET LOCAL synchronous_commit = off")

    def claim_next(
        self, worker_id: str, lease_seconds: float, kinds: list[str] | None = None
    ) -> Lease | None:
        """Claim the most urgent due job (optionally of `kinds`); None when nothing is claimable."""
        self._relaxed_commit()
        row = self.session.execute(
            f"""
            UPDATE public.jobs SET {_CLAIM_SET}
            WHERE id = (
                SELECT id FROM public.jobs
                WHERE status = 'QUEUED' AND run_after <= now()
                  AND (%(kinds)s::text[] IS NULL OR kind = ANY(%(kinds)s::text[]))
                ORDER BY priority, run_after, created_at
                LIMIT 1
                FOR UPDATE SKIP LOCKED
            )
            RETURNING {_JOB_COLUMNS}
            """,
            {"lease": lease_seconds, "worker": worker_id, "kinds": kinds},
        ).fetchone()
        return _lease(row, worker_id)

    def claim_job(self, job_id: uuid.UUID, worker_id: str, lease_seconds: float) -> Lease | None:
        """Claim one specific job (a Celery task names it); None if it is not claimable now
        (already taken, finished, canceled, or waiting out a retry backoff)."""
        self._relaxed_commit()
        row = self.session.execute(
            f"""
            UPDATE public.jobs SET {_CLAIM_SET}
            WHERE id = (
                SELECT id FROM public.jobs
                WHERE id = %(id)s AND status = 'QUEUED' AND run_after <= now()
                FOR UPDATE SKIP LOCKED
            )
            RETURNING {_JOB_COLUMNS}
            """,
            {"lease": lease_seconds, "worker": worker_id, "id": job_id},
        ).fetchone()
        return _lease(row, worker_id)

    def heartbeat(
        self,
        job_id: uuid.UUID,
        token: uuid.UUID,
        lease_seconds: float,
        *,
        progress: float | None = None,
        stage: str | None = None,
    ) -> HeartbeatResult:
        """Extend the lease (and record progress) if `token` still holds it."""
        self._relaxed_commit()
        row = self.session.execute(
            """
            UPDATE public.jobs SET
                lease_expires_at = now() + make_interval(secs => %s),
                heartbeat_at = now(),
                progress = coalesce(%s, progress),
                stage = coalesce(%s, stage)
            WHERE id = %s AND lease_token = %s AND status = 'PROCESSING'
            RETURNING cancel_requested
            """,
            (lease_seconds, _clamp(progress), stage, job_id, token),
        ).fetchone()
        if row is None:
            return HeartbeatResult(held=False)
        return HeartbeatResult(held=True, cancel_requested=bool(row["cancel_requested"]))

    def complete(
        self,
        lease: Lease,
        result: dict[str, Any],
        *,
        duration_seconds: float,
        audio_seconds: float,
    ) -> bool:
        """COMPLETED + the job's one usage row, in the caller's (single) transaction.

        False when the lease is no longer held, or the user canceled while the job ran (the
        result is not wanted and not billed; the worker then records the cancel): nothing
        was written."""
        row = self.session.execute(
            """
            UPDATE public.jobs SET
                status = 'COMPLETED', result = %s, progress = 1, stage = 'done',
                finished_at = now(), lease_token = NULL, lease_expires_at = NULL, error = NULL,
                audio_seconds = %s
            WHERE id = %s AND lease_token = %s AND status = 'PROCESSING' AND NOT cancel_requested
            RETURNING user_id, kind, attempts
            """,
            (Jsonb(result), audio_seconds, lease.job_id, lease.token),
        ).fetchone()
        if row is None:
            return False
        # job_id is UNIQUE: even a bug that reached this line twice could not bill twice.
        self.session.execute(
            """
            INSERT INTO public.gpu_usage_logs
                (job_id, user_id, kind, duration_seconds, audio_seconds, worker_id)
            VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (job_id) DO NOTHING
            """,
            (
                lease.job_id,
                row["user_id"],
                row["kind"],
                max(0.0, duration_seconds),
                max(0.0, audio_seconds),
                lease.worker_id,
            ),
        )
        self._event(lease.job_id, "completed", row["attempts"], lease.worker_id, None)
        return True

    def fail(
        self,
        lease: Lease,
        error: str,
        *,
        retryable: bool,
        backoff_base: float,
        backoff_max: float,
    ) -> JobState | None:
        """Record a failed attempt: back to QUEUED with backoff when retryable and attempts are
        left, else FAILED. Returns the new status, or None when the lease is no longer held."""
        row = self.session.execute(
            """
            UPDATE public.jobs SET
                status = CASE WHEN %(retry)s AND attempts < max_attempts AND NOT cancel_requested
                              THEN 'QUEUED' ELSE 'FAILED' END,
                run_after = CASE WHEN %(retry)s AND attempts < max_attempts
                                 THEN now() + make_interval(secs => least(%(max)s,
                                      %(base)s * power(2, greatest(attempts - 1, 0)))
                                      * (0.5 + random() * 0.5))
                                 ELSE run_after END,
                finished_at = CASE WHEN %(retry)s AND attempts < max_attempts AND NOT cancel_requested
                                   THEN NULL ELSE now() END,
                lease_token = NULL, lease_expires_at = NULL, worker_id = NULL,
                dispatched_at = NULL, error = %(error)s, stage = NULL, progress = 0
            WHERE id = %(id)s AND lease_token = %(token)s AND status = 'PROCESSING'
            RETURNING status, attempts
            """,
            {
                "retry": retryable,
                "max": backoff_max,
                "base": backoff_base,
                "error": error[:4000],
                "id": lease.job_id,
                "token": lease.token,
            },
        ).fetchone()
        if row is None:
            return None
        status = JobState(row["status"])
        event = "requeued" if status is JobState.QUEUED else "failed"
        self._event(lease.job_id, event, row["attempts"], lease.worker_id, error[:1000])
        return status

    def release(self, lease: Lease) -> bool:
        """Give a job back untouched (the worker is shutting down): QUEUED now, attempt not
        counted, and its place in the line kept (run_after, already due, is left as it was), so
        a drained worker does not send the oldest job behind newer ones. Fenced like every
        worker write."""
        row = self.session.execute(
            """
            UPDATE public.jobs SET
                status = 'QUEUED', attempts = greatest(attempts - 1, 0),
                lease_token = NULL, lease_expires_at = NULL, worker_id = NULL, dispatched_at = NULL,
                stage = NULL, progress = 0
            WHERE id = %s AND lease_token = %s AND status = 'PROCESSING'
            RETURNING attempts
            """,
            (lease.job_id, lease.token),
        ).fetchone()
        if row is None:
            return False
        self._event(lease.job_id, "requeued", row["attempts"], lease.worker_id, "worker shut down")
        return True

    def cancel_running(self, lease: Lease) -> bool:
        """The worker stopped because the user canceled: CANCELED, fenced by the lease."""
        row = self.session.execute(
            """
            UPDATE public.jobs SET
                status = 'CANCELED', finished_at = now(), lease_token = NULL,
                lease_expires_at = NULL, error = 'Canceled by the user.', stage = NULL
            WHERE id = %s AND lease_token = %s AND status = 'PROCESSING'
            RETURNING attempts
            """,
            (lease.job_id, lease.token),
        ).fetchone()
        if row is None:
            return False
        self._event(lease.job_id, "canceled", row["attempts"], lease.worker_id, None)
        return True

    def reap_expired(
        self, *, backoff_base: float, backoff_max: float, limit: int = 100
    ) -> ReapResult:
        """Expired leases (dead or stuck workers): canceled if the user asked, FAILED after
        max_attempts, else back to QUEUED after an exponential backoff with jitter."""
        rows = self.session.execute(
            """
            WITH expired AS (
                SELECT id FROM public.jobs
                WHERE status = 'PROCESSING' AND lease_expires_at < now()
                ORDER BY lease_expires_at
                LIMIT %(limit)s
                FOR UPDATE SKIP LOCKED
            )
            UPDATE public.jobs j SET
                status = CASE WHEN j.cancel_requested THEN 'CANCELED'
                              WHEN j.attempts >= j.max_attempts THEN 'FAILED'
                              ELSE 'QUEUED' END,
                finished_at = CASE WHEN j.cancel_requested OR j.attempts >= j.max_attempts
                                   THEN now() ELSE NULL END,
                error = CASE WHEN j.cancel_requested THEN 'Canceled by the user.'
                             WHEN j.attempts >= j.max_attempts
                             THEN 'The worker processing this job stopped responding '
                                  || j.attempts || ' times; giving up.'
                             ELSE 'Worker ' || coalesce(j.worker_id, '?')
                                  || ' stopped responding; retrying.' END,
                run_after = now() + make_interval(secs => least(%(max)s,
                            %(base)s * power(2, greatest(j.attempts - 1, 0)))
                            * (0.5 + random() * 0.5)),
                lease_token = NULL, lease_expires_at = NULL, dispatched_at = NULL, stage = NULL,
                progress = 0
            FROM expired WHERE j.id = expired.id
            RETURNING j.id, j.status, j.attempts, j.error, j.worker_id AS old_worker
            """,
            {"limit": limit, "base": backoff_base, "max": backoff_max},
        ).fetchall()
        counts = {JobState.QUEUED: 0, JobState.FAILED: 0, JobState.CANCELED: 0}
        for r in rows:
            counts[JobState(r["status"])] += 1
            self._event(r["id"], "lease_expired", r["attempts"], r["old_worker"], r["error"])
            if r["status"] != JobState.QUEUED:
                event = "canceled" if r["status"] == JobState.CANCELED else "failed"
                self._event(r["id"], event, r["attempts"], r["old_worker"], r["error"])
        if rows:
            self.session.execute(
                "UPDATE public.jobs SET worker_id = NULL WHERE id = ANY(%s) AND status = 'QUEUED'",
                ([r["id"] for r in rows],),
            )
        return ReapResult(
            requeued=counts[JobState.QUEUED],
            failed=counts[JobState.FAILED],
            canceled=counts[JobState.CANCELED],
        )

    def _event(
        self,
        job_id: uuid.UUID,
        event: str,
        attempt: int,
        worker_id: str | None,
        detail: str | None,
    ) -> None:
        self.session.execute(
            "INSERT INTO public.job_events (job_id, event, attempt, worker_id, detail)"
            " VALUES (%s, %s, %s, %s, %s)",
            (job_id, event, attempt, worker_id, detail),
        )
