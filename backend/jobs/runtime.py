"""The jobs domain's long-lived parts in the API process: dispatch, the in-process worker
(embedded mode) and the maintenance loop. Started and stopped by the app's lifespan.
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request

from backend.jobs import repository as repo
from backend.jobs.queue import JobQueue
from backend.jobs.settings import JobSettings
from backend.jobs.worker import (
    EngineFactory,
    JobProcessor,
    Maintenance,
    PullWorker,
    default_worker_id,
    local_engine,
)
from backend.runtime import Runtime

logger = logging.getLogger(__name__)


class JobsRuntime:
    """Owns dispatch for one API process.

    embedded: a worker thread in this process claims from the database; a submission wakes it.
    celery: job ids go to Redis for `nojoin-worker` processes.
    none: nothing is dispatched; `nojoin-worker --mode pull` processes poll the database.
    In every mode a maintenance thread reaps expired leases and re-dispatches due jobs, so a
    job queued before a restart, or requeued after a crash, is picked up again."""

    def __init__(
        self,
        runtime: Runtime,
        settings: JobSettings,
        *,
        engine_factory: EngineFactory = local_engine,
    ) -> None:
        self.runtime = runtime
        self.settings = settings
        self.mode = settings.dispatch_mode()
        self.queue = JobQueue(runtime.db, settings)
        self._engine_factory = engine_factory
        self.pull_worker: PullWorker | None = None
        self.maintenance: Maintenance | None = None
        self._celery: Any = None

    def start(self) -> JobsRuntime:
        if self.mode == "embedded":
            processor = JobProcessor(
                self.queue,
                self.runtime.storage,
                self.settings,
                worker_id=default_worker_id("embedded"),
                engine_factory=self._engine_factory,
                scratch_dir=self._scratch(),
            )
            self.pull_worker = PullWorker(
                processor, poll_seconds=self.settings.job_poll_seconds, name="nojoin-job-worker"
            ).start()
        elif self.mode == "celery":
            from backend.jobs.celery_app import CeleryDispatcher, make_celery

            self._celery = CeleryDispatcher(make_celery(self.settings), self.settings.celery_queue)
        self.maintenance = Maintenance(
            self.queue,
            interval=self.settings.job_reaper_interval_seconds,
            dispatch=self._send if self.mode == "celery" else None,
            redispatch_after=self.settings.job_redispatch_seconds,
            on_requeue=self._wake,
        ).start()
        logger.info("jobs: dispatch mode %s", self.mode)
        return self

    def _scratch(self) -> Any:
        path = self.runtime.settings.data_dir / "tmp" / "jobs"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def upload_dir(self) -> Any:
        path = self.runtime.settings.data_dir / "tmp" / "uploads"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _wake(self) -> None:
        if self.pull_worker is not None:
            self.pull_worker.wake()

    def _send(self, job_ids: list[uuid.UUID]) -> None:
        if self._celery is not None:
            self._celery(job_ids)

    def dispatch(self, job_id: uuid.UUID) -> None:
        """Hand a committed job to the workers."""
        if self.mode == "embedded":
            self._wake()
        elif self.mode == "celery":
            self._send([job_id])
            with self.runtime.db.transaction() as conn:
                repo.mark_dispatched(conn, [job_id])

    def stop(self) -> None:
        if self.maintenance is not None:
            self.maintenance.stop()
        if self.pull_worker is not None:
            self.pull_worker.stop()
        if self._celery is not None:
            self._celery.close()


def start_jobs(app: FastAPI, runtime: Runtime) -> JobsRuntime:
    """Called from the app lifespan: start dispatch for this process."""
    settings = getattr(app.state, "job_settings", None) or JobSettings()
    app.state.job_settings = settings
    engine_factory = getattr(app.state, "job_engine_factory", None) or local_engine
    jobs = JobsRuntime(runtime, settings, engine_factory=engine_factory).start()
    app.state.jobs = jobs
    return jobs


def stop_jobs(app: FastAPI) -> None:
    jobs: JobsRuntime | None = getattr(app.state, "jobs", None)
    if jobs is not None:
        jobs.stop()
        app.state.jobs = None


def get_jobs_runtime(request: Request) -> JobsRuntime:
    jobs: JobsRuntime | None = getattr(request.app.state, "jobs", None)
    if jobs is None:
        raise RuntimeError("The jobs runtime is not running (app lifespan not started).")
    return jobs


JobsRuntimeDep = Annotated[JobsRuntime, Depends(get_jobs_runtime)]
