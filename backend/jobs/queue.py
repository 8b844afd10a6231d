"""The job queue as workers and the maintenance loop see it: each call is one transaction.

Thin on purpose: the SQL lives in `repository`; this adds transactions, settings and logs.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from backend.db import Database
from backend.jobs import repository as repo
from backend.jobs.repository import HeartbeatResult, Lease, ReapResult
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
            lease = repo.claim_next(conn, worker_id, self.lease_seconds, kinds)
        if lease is not None:
            logger.info(
                "%s claimed job %s (attempt %d)", worker_id, lease.job_id, lease.job.attempts
            )
        return lease

    def claim_job(self, job_id: uuid.UUID, worker_id: str) -> Lease | None:
        with self.db.transaction() as conn:
            lease = repo.claim_job(conn, job_id, worker_id, self.lease_seconds)
        if lease is not None:
            logger.info(
                "%s claimed job %s (attempt %d)", worker_id, lease.job_id, lease.job.attempts
            )
        return lease

    def heartbeat(
        self, lease: Lease, *, progress: float | None = None, stage: str | None = None
    ) -> HeartbeatResult:
        with self.db.transaction() as conn:
            return repo.heartbeat(
                conn, lease.job_id, lease.token, self.lease_seconds, progress=progress, stage=stage
            )

    def complete(
        self, lease: Lease, result: dict[str, Any], *, duration_seconds: float, audio_seconds: float
    ) -> bool:
        with self.db.transaction() as conn:
            done = repo.complete(
                conn,
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

    def fail(self, lease: Lease, error: str, *, retryable: bool) -> str | None:
        with self.db.transaction() as conn:
            status = repo.fail(
                conn,
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
            return repo.release(conn, lease)

    def cancel_running(self, lease: Lease) -> bool:
        with self.db.transaction() as conn:
            return repo.cancel_running(conn, lease)

    def add_output(self, lease: Lease, storage_path: str, size: int) -> None:
        with self.db.transaction() as conn:
            repo.add_file(
                conn,
                lease.job_id,
                "output",
                storage_path,
                size=size,
                content_type="application/json",
            )

    def add_log(self, lease: Lease, storage_path: str, size: int) -> None:
        with self.db.transaction() as conn:
            repo.add_file(
                conn, lease.job_id, "log", storage_path, size=size, content_type="text/plain"
            )

    def input_path(self, job_id: uuid.UUID) -> str | None:
        with self.db.transaction() as conn:
            return repo.file_path(conn, job_id, "input")

    def reap(self) -> ReapResult:
        with self.db.transaction() as conn:
            result = repo.reap_expired(
                conn,
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
            return repo.due_undispatched(conn, older_than_seconds=older_than_seconds)
