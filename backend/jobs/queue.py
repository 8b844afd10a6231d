"""The job queue as workers and the maintenance loop see it: each call is one transaction.

Thin on purpose: the SQL lives in `JobRepository`; this adds transactions, settings and logs.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from backend.db import Database
from backend.jobs.repository import HeartbeatResult, JobRepository, JobState, Lease, ReapResult
from backend.jobs.settings import JobSettings

logger = logging.getLogger(__name__)


class JobQueue:
    def __init__(self, db: Database, settings: JobSettings) -> None:
        self.db = db
        self.settings = settings

    @property
    def lease_seconds(self) -> float:
        return self.settings.job_lease_seconds

    def claim_next(self, worker_id: str, kinds: list[str] | None = None) -> Lease | None:
        with self.db.transaction() as conn:
            lease = JobRepository.from_session(conn).claim_next(
                worker_id, self.lease_seconds, kinds
            )
        if lease is not None:
            logger.info(
                "%s claimed job %s (attempt %d)", worker_id, lease.job_id, lease.job.attempts
            )
        return lease

    def claim_job(self, job_id: uuid.UUID, worker_id: str) -> Lease | None:
        with self.db.transaction() as conn:
            lease = JobRepository.from_session(conn).claim_job(
                job_id, worker_id, self.lease_seconds
            )
        if lease is not None:
            logger.info(
                "%s claimed job %s (attempt %d)", worker_id, lease.job_id, lease.job.attempts
            )
        return lease

    def heartbeat(
        self, lease: Lease, *, progress: float | None = None, stage: str | None = None
    ) -> HeartbeatResult:
        with self.db.transaction() as conn:
            return JobRepository.from_session(conn).heartbeat(
                lease.job_id, lease.token, self.lease_seconds, progress=progress, stage=stage
            )

    def complete(
        self, lease: Lease, result: dict[str, Any], *, duration_seconds: float, audio_seconds: float
    ) -> bool:
        with self.db.transaction() as conn:
            done = JobRepository.from_session(conn).complete(
                lease,
                result,
                duration_seconds=duration_seconds,
                audio_seconds=audio_seconds,
            )
        if done:
            logger.info("job %s completed by %s", lease.job_id, lease.worker_id)
        else:
            logger.warning(
                "job %s: completion by %s refused (lease lost)", lease.job_id, lease.worker_id
            )
        return done

    def fail(self, lease: Lease, error: str, *, retryable: bool) -> JobState | None:
        with self.db.transaction() as conn:
            status = JobRepository.from_session(conn).fail(
                lease,
                error,
                retryable=retryable,
                backoff_base=self.settings.job_backoff_base_seconds,
                backoff_max=self.settings.job_backoff_max_seconds,
            )
        logger.info(
            "job %s attempt failed (%s): %s -> %s", lease.job_id, lease.worker_id, error, status
        )
        return status

    def release(self, lease: Lease) -> bool:
        with self.db.transaction() as conn:
            return JobRepository.from_session(conn).release(lease)

    def cancel_running(self, lease: Lease) -> bool:
        with self.db.transaction() as conn:
            return JobRepository.from_session(conn).cancel_running(lease)

    def add_output(self, lease: Lease, storage_path: str, size: int) -> None:
        with self.db.transaction() as conn:
            JobRepository.from_session(conn).add_file(
                lease.job_id,
                "output",
                storage_path,
                size=size,
                content_type="application/json",
            )

    def add_log(self, lease: Lease, storage_path: str, size: int) -> None:
        with self.db.transaction() as conn:
            JobRepository.from_session(conn).add_file(
                lease.job_id, "log", storage_path, size=size, content_type="text/plain"
            )

    def input_path(self, job_id: uuid.UUID) -> str | None:
        with self.db.transaction() as conn:
            return JobRepository.from_session(conn).file_path(job_id, "input")

    def reap(self) -> ReapResult:
        with self.db.transaction() as conn:
            result = JobRepository.from_session(conn).reap_expired(
                backoff_base=self.settings.job_backoff_base_seconds,
                backoff_max=self.settings.job_backoff_max_seconds,
            )
        if result.total:
            logger.warning(
                "reaper: %d expired lease(s): %d requeued, %d failed, %d canceled",
                result.total,
                result.requeued,
                result.failed,
                result.canceled,
            )
        return result

    def due_for_dispatch(self, *, older_than_seconds: float) -> list[uuid.UUID]:
        with self.db.transaction() as conn:
            return JobRepository.from_session(conn).due_undispatched(
                older_than_seconds=older_than_seconds
            )
