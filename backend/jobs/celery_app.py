"""Celery wiring for production dispatch: Redis carries only job ids, Postgres holds the truth.

A task names one job; the worker claims that row (lease + fencing as everywhere) before
working and simply returns when it cannot (already done, taken, canceled, or backing off), so
duplicate or redelivered messages are harmless. `acks_late` + prefetch 1 + a visibility
timeout longer than the longest job: a message is only acknowledged after its job ran, and a
worker never hoards messages another GPU could take.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from celery import Celery

from backend.jobs.settings import JobSettings

logger = logging.getLogger(__name__)

TASK_NAME = "nojoin.jobs.process"

# The worker process's processor, installed by `nojoin-worker` before the worker starts.
RunJob = Callable[[uuid.UUID], str | None]
_run_job: RunJob | None = None


def install_runner(run_job: RunJob | None) -> None:
    global _run_job
    _run_job = run_job


def make_celery(settings: JobSettings) -> Celery:
    if not settings.redis_url:
        raise RuntimeError("Celery dispatch needs NOJOIN_REDIS_URL (e.g. redis://host:6379/0).")
    if settings.job_visibility_timeout_seconds < settings.job_max_audio_seconds:
        # Redis would redeliver a task whose worker is still busy with a long recording;
        # harmless (the claim fences it) but it keeps a second worker needlessly busy.
        logger.warning(
            "NOJOIN_JOB_VISIBILITY_TIMEOUT_SECONDS (%d) is shorter than the longest allowed "
            "recording (%.0f s); raise it above the longest job.",
            settings.job_visibility_timeout_seconds,
            settings.job_max_audio_seconds,
        )
    app = Celery("nojoin", broker=settings.redis_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        # A task whose worker process died is put back on the queue, not dropped.
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": settings.job_visibility_timeout_seconds},
        broker_connection_retry_on_startup=True,
        task_default_queue=settings.celery_queue,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )

    @app.task(name=TASK_NAME, ignore_result=True)
    def process_job(job_id: str) -> str | None:
        try:
            parsed = uuid.UUID(str(job_id))
        except ValueError:
            logger.error("ignoring task with malformed job id %r", job_id)
            return None
        if _run_job is None:
            raise RuntimeError(
                "No job runner installed in this worker; start it with nojoin-worker."
            )
        return _run_job(parsed)

    return app


class CeleryDispatcher:
    """Sends job ids to the workers through Redis."""

    def __init__(self, app: Celery, queue: str) -> None:
        self.app = app
        self.queue = queue

    def __call__(self, job_ids: list[uuid.UUID]) -> None:
        for job_id in job_ids:
            try:
                self.app.send_task(TASK_NAME, args=[str(job_id)], queue=self.queue)
            except Exception:
                # The row is safe in Postgres; maintenance re-dispatches it later.
                logger.warning("could not send job %s to the broker", job_id, exc_info=True)

    def close(self) -> None:
        self.app.close()
