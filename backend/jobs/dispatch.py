"""The jobs domain's long-lived parts in the API process: dispatch, the in-process worker
(embedded mode) and the maintenance loop. `Runtime.start_jobs()` (the app's lifespan) starts
them and `Runtime.stop_jobs()` stops them.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

from backend.db import Database
from backend.jobs.queue import JobQueue
from backend.jobs.repository import JobRepository
from backend.jobs.settings import DispatchMode, JobSettings
from backend.jobs.worker import (
    EngineFactory,
    JobProcessor,
    Maintenance,
    PullWorker,
    default_worker_id,
    local_engine,
)
from backend.storage.base import StorageProvider

logger = logging.getLogger(__name__)


class JobDispatcher:
    """Owns dispatch for one API process.

    embedded: a worker thread in this process claims from the database; a submission wakes it.
    celery: job ids go to Redis for `nojoin-worker` processes.
    none: nothing is dispatched; `nojoin-worker --mode pull` processes poll the database.
    In every mode a maintenance thread reaps expired leases and re-dispatches due jobs, so a
    job queued before a restart, or requeued after a crash, is picked up again."""

    def __init__(
        self,
        db: Database,
        storage: StorageProvider,
        settings: JobSettings,
        data_dir: Path,
        *,
        engine_factory: EngineFactory = local_engine,
    ) -> None:
        self.db = db
        self.storage = storage
        self.settings = settings
        self.data_dir = data_dir
        self.mode = settings.dispatch_mode()
        self.queue = JobQueue(db, settings)
        self._engine_factory = engine_factory
        self.pull_worker: PullWorker | None = None
        self.maintenance: Maintenance | None = None
        self._celery: Any = None

    def start(self) -> JobDispatcher:
        if self.mode is DispatchMode.EMBEDDED:
            processor = JobProcessor(
                self.queue,
                self.storage,
                self.settings,
                worker_id=default_worker_id("embedded"),
                engine_factory=self._engine_factory,
                scratch_dir=self._folder("jobs"),
            )
            self.pull_worker = PullWorker(
                processor, poll_seconds=self.settings.job_poll_seconds, name="nojoin-job-worker"
            ).start()
        elif self.mode is DispatchMode.CELERY:
            from backend.jobs.celery_app import CeleryDispatcher, make_celery

            self._celery = CeleryDispatcher(make_celery(self.settings), self.settings.celery_queue)
        self.maintenance = Maintenance(
            self.queue,
            interval=self.settings.job_reaper_interval_seconds,
            dispatch=self._send if self.mode is DispatchMode.CELERY else None,
            redispatch_after=self.settings.job_redispatch_seconds,
            on_requeue=self._wake,
        ).start()
        logger.info("jobs: dispatch mode %s", self.mode)
        return self

    def _folder(self, name: str) -> Path:
        path = self.data_dir / "tmp" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def upload_dir(self) -> Path:
        return self._folder("uploads")

    def _wake(self) -> None:
        if self.pull_worker is not None:
            self.pull_worker.wake()

    def _send(self, job_ids: list[uuid.UUID]) -> None:
        if self._celery is not None:
            self._celery(job_ids)

    def dispatch(self, job_id: uuid.UUID) -> None:
        """Hand a committed job to the workers."""
        if self.mode is DispatchMode.EMBEDDED:
            self._wake()
        elif self.mode is DispatchMode.CELERY:
            self._send([job_id])
            with self.db.transaction() as conn:
                JobRepository.from_session(conn).mark_dispatched([job_id])

    def stop(self) -> None:
        if self.maintenance is not None:
            self.maintenance.stop()
        if self.pull_worker is not None:
            self.pull_worker.stop()
        if self._celery is not None:
            self._celery.close()
