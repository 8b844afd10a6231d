"""`nojoin-worker`: process remote jobs on a GPU host with the same engine as the desktop app.

    nojoin-worker --mode celery   # consume job ids from Redis (NOJOIN_REDIS_URL)
    nojoin-worker --mode pull     # claim jobs straight from PostgreSQL

Needs NOJOIN_DATABASE_URL (the API's database) and the API's storage settings
(NOJOIN_STORAGE_BACKEND and its keys, or NOJOIN_BACKEND_DATA_DIR for local storage).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from backend.db import Database
from backend.jobs.queue import JobQueue
from backend.jobs.settings import JobSettings
from backend.jobs.worker import JobProcessor, Maintenance, PullWorker, default_worker_id
from backend.settings import Settings

logger = logging.getLogger("nojoin.worker")


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="nojoin-worker",
        description="Process Nojoin remote-processing jobs (transcription and diarization).",
    )
    parser.add_argument(
        "--mode",
        choices=["celery", "pull"],
        default=None,
        help="celery: take job ids from Redis (default when NOJOIN_REDIS_URL is set); "
        "pull: claim jobs from the database directly",
    )
    parser.add_argument("--worker-id", default=None, help="name in job rows (default host:pid)")
    parser.add_argument(
        "--device", default=None, help="auto (CUDA when present), cuda or cpu (NOJOIN_JOB_DEVICE)"
    )
    parser.add_argument(
        "--no-maintenance",
        action="store_true",
        help="do not reap expired leases here (the API does it too)",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings()
        job_settings = JobSettings()
    except Exception as exc:
        _err(f"nojoin-worker: invalid settings: {exc}")
        return 2
    if args.device:
        job_settings.job_device = args.device
    mode = args.mode or ("celery" if job_settings.redis_url else "pull")
    if settings.database_url is None:
        _err("nojoin-worker: set NOJOIN_DATABASE_URL to the API's PostgreSQL database.")
        return 2
    if mode == "celery" and not job_settings.redis_url:
        _err("nojoin-worker: --mode celery needs NOJOIN_REDIS_URL.")
        return 2

    from backend.storage.factory import build_storage

    db = Database(settings.database_url, min_size=1, max_size=4)
    try:
        db.open()
        storage = build_storage(settings)
    except Exception as exc:
        _err(f"nojoin-worker: could not start: {exc}")
        db.close()
        return 1
    queue = JobQueue(db, job_settings)
    worker_id = args.worker_id or default_worker_id(mode)
    processor = JobProcessor(queue, storage, job_settings, worker_id=worker_id)
    maintenance = None
    if not args.no_maintenance:
        maintenance = Maintenance(queue, interval=job_settings.job_reaper_interval_seconds)
        maintenance.start()
    logger.info(
        "worker %s starting in %s mode (device %s)", worker_id, mode, job_settings.job_device
    )
    try:
        if mode == "pull":
            _run_pull(processor, job_settings)
        else:
            _run_celery(processor, job_settings, worker_id)
    finally:
        if maintenance is not None:
            maintenance.stop()
        processor.close()
        db.close()
    return 0


def _err(message: str) -> None:
    """CLI output: the one place this command writes to the terminal."""
    sys.stderr.write(message + "\n")


def _run_pull(processor: JobProcessor, settings: JobSettings) -> None:
    worker = PullWorker(processor, poll_seconds=settings.job_poll_seconds, name="pull-worker")
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not stopping.is_set():
            stopping.set()
            logger.info("signal %d: stopping; a running job goes back to the queue", signum)
            threading.Thread(target=worker.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker.run_forever()


def _run_celery(processor: JobProcessor, settings: JobSettings, worker_id: str) -> None:
    from celery import signals

    from backend.jobs.celery_app import install_runner, make_celery

    install_runner(processor.run_job)

    # Celery's warm shutdown (SIGTERM, SIGINT) lets the running task finish, which may take
    # an hour for a long recording, longer than any service manager waits before SIGKILL.
    # Hand the job back instead: the task returns (its message is acked), the job is QUEUED
    # again and the API's maintenance loop sends it to another worker at once. Celery sends
    # this from its signal handler, on the thread running the task: do the rest elsewhere.
    def on_shutting_down(**_: object) -> None:
        logger.info("shutting down; a running job goes back to the queue")
        threading.Thread(target=processor.shut_down, name="shut-down", daemon=True).start()

    signals.worker_shutting_down.connect(on_shutting_down, weak=False)
    app = make_celery(settings)
    # solo pool: the job runs in this process (the engine itself runs in a spawned child),
    # one job per worker process at a time; scale out with more workers per GPU host.
    app.worker_main(
        [
            "worker",
            "--pool=solo",
            "--concurrency=1",
            f"--queues={settings.celery_queue}",
            f"--hostname={worker_id}@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
