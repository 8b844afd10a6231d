"""Running claimed jobs: `JobProcessor` (one job, start to finish), its heartbeat thread, the
pull loop and the maintenance loop (reaper + re-dispatch).

The same `JobProcessor.process()` runs in the API's in-process worker thread (embedded mode),
in `nojoin-worker --mode pull` and inside the Celery task, so every path leases, heartbeats,
fences and bills the same way.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from backend.errors import NotFoundError
from backend.jobs import kinds
from backend.jobs.queue import JobQueue
from backend.jobs.repository import FINISHED, JobState, Lease
from backend.jobs.settings import JobSettings
from backend.storage.base import StorageProvider
from nojoin.processing.contract import (
    AudioError,
    CancelledError,
    CancelToken,
    ModelNotFoundError,
    NojoinError,
    ProcessingStrategy,
    Progress,
)

logger = logging.getLogger(__name__)

# Progress is pushed to the database at most this often (the lease renews on its own clock).
PROGRESS_FLUSH_SECONDS = 1.0

EngineFactory = Callable[[], ProcessingStrategy]
# What an attempt ended in: the job's new state, or "lost" (the lease went elsewhere).
Outcome = JobState | Literal["lost"]


def default_worker_id(suffix: str = "") -> str:
    base = f"{socket.gethostname()}:{os.getpid()}"
    return f"{base}:{suffix}" if suffix else base


def local_engine() -> ProcessingStrategy:
    """The engine the desktop app runs locally (faster-whisper + diarization in a spawned process)."""
    from nojoin.processing.strategies.local_strategy import LocalProcessingStrategy

    return LocalProcessingStrategy(keep_alive=True)


class Heartbeat:
    """Renews a lease and publishes progress from its own thread.

    Sets `cancel` when the user asked to cancel or when the lease is lost (reaped after a stall,
    or the database unreachable for longer than a lease): the job then stops at the next
    stage boundary and, having lost the lease, writes nothing."""

    def __init__(
        self, queue: JobQueue, lease: Lease, cancel: CancelToken, *, interval: float
    ) -> None:
        self.queue = queue
        self.lease = lease
        self.cancel = cancel
        self.interval = interval
        self.lost = False
        self.cancel_requested = False
        self._progress: tuple[float, str] | None = None
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._last_ok = time.monotonic()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{lease.job_id}", daemon=True
        )

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def report(self, fraction: float, stage: str) -> None:
        self._progress = (fraction, stage)
        self._dirty.set()

    def stop(self) -> None:
        self._stop.set()
        self._dirty.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        next_beat = time.monotonic() + self.interval
        while not self._stop.is_set():
            self._dirty.wait(timeout=max(0.0, next_beat - time.monotonic()))
            if self._stop.is_set():
                return
            self._dirty.clear()
            progress = self._progress
            try:
                res = self.queue.heartbeat(
                    self.lease,
                    progress=progress[0] if progress else None,
                    stage=progress[1] if progress else None,
                )
            except Exception:
                logger.warning("heartbeat for job %s failed", self.lease.job_id, exc_info=True)
                if time.monotonic() - self._last_ok > self.queue.lease_seconds:
                    self._lose("database unreachable for longer than the lease")
                    return
            else:
                self._last_ok = time.monotonic()
                if not res.held:
                    self._lose("lease lost")
                    return
                if res.cancel_requested and not self.cancel_requested:
                    logger.info("job %s: cancel requested by the user", self.lease.job_id)
                    self.cancel_requested = True
                    self.cancel.cancel()
            next_beat = time.monotonic() + self.interval
            # Rate-limit progress writes; lease renewals keep their own schedule.
            self._stop.wait(PROGRESS_FLUSH_SECONDS)

    def _lose(self, why: str) -> None:
        logger.warning("job %s: %s; stopping work on it", self.lease.job_id, why)
        self.lost = True
        self.cancel.cancel()


class JobProcessor:
    """Processes claimed jobs with one engine that stays loaded between jobs."""

    def __init__(
        self,
        queue: JobQueue,
        storage: StorageProvider,
        settings: JobSettings,
        *,
        worker_id: str | None = None,
        engine_factory: EngineFactory = local_engine,
        scratch_dir: Path | None = None,
    ) -> None:
        self.queue = queue
        self.storage = storage
        self.settings = settings
        self.worker_id = worker_id or default_worker_id()
        self._engine_factory = engine_factory
        self._engine: ProcessingStrategy | None = None
        self.scratch_dir = scratch_dir
        # The running job's token, canceled by `shut_down()`. The lock makes
        # "closing" and "a job starts" ordered: a job claimed while the worker stops (a claim
        # in flight when SIGTERM arrived) sees the close and goes straight back.
        self._state = threading.Lock()
        self._current: CancelToken | None = None
        self._closing = False

    def engine(self) -> ProcessingStrategy:
        if self._engine is None:
            self._engine = self._engine_factory()
        return self._engine

    def shut_down(self) -> None:
        """Hand a running job back to the queue (no attempt counted) and claim nothing more.
        Returns at once; the job's own thread writes the release when its engine stopped."""
        with self._state:
            self._closing = True
            current = self._current
        if current is not None:
            current.cancel()

    def close(self) -> None:
        """Stop for good: `shut_down()`, then wait for the engine process to exit."""
        self.shut_down()
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def run_next(self, kinds_filter: list[str] | None = None) -> bool:
        """Claim and process the next due job; False when the queue had none."""
        if self._closing:
            return False
        lease = self.queue.claim_next(self.worker_id, kinds_filter)
        if lease is None:
            return False
        self.process(lease)
        return True

    def run_job(self, job_id: uuid.UUID) -> Outcome | None:
        """Claim one named job and process it (the Celery task). None when it was not
        claimable: someone else has it, it is finished, or it waits out a retry backoff."""
        lease = self.queue.claim_job(job_id, self.worker_id)
        if lease is None:
            logger.info("job %s not claimable by %s; nothing to do", job_id, self.worker_id)
            return None
        return self.process(lease)

    def process(self, lease: Lease) -> Outcome:
        """Run a leased job to a final write. Returns what happened: COMPLETED, FAILED,
        QUEUED (retry later), CANCELED, or "lost" (the lease went elsewhere: nothing written).

        Once the job is finished its uploaded audio is deleted (the transcript is kept),
        unless NOJOIN_JOB_KEEP_INPUTS is set."""
        with AttemptLog(lease) as attempt_log:
            outcome = self._process(lease)
        if outcome != "lost":  # a worker that lost its lease writes nothing, not even a log
            self._store_log(lease, attempt_log.text(outcome))
        if outcome in FINISHED and not self.settings.job_keep_inputs:
            delete_input(self.queue, self.storage, lease.job_id)
        return outcome

    def _process(self, lease: Lease) -> Outcome:
        job = lease.job
        cancel = CancelToken()
        with self._state:
            self._current = cancel
            if self._closing:
                cancel.cancel()
        hb = Heartbeat(self.queue, lease, cancel, interval=self.settings.job_heartbeat_seconds)
        workdir = Path(tempfile.mkdtemp(prefix=f"nojoin-job-{job.id}-", dir=self.scratch_dir))
        started = time.monotonic()
        hb.start()
        try:
            cancel.raise_if_cancelled()  # the worker is closing: hand it back untouched
            kind = kinds.get(job.kind)
            options = kind.options(
                job.params,
                allowed_models=self.settings.allowed_models,
                device=self.settings.job_device,
            )
            hb.report(0.0, "downloading")
            audio = self._download(job.id, workdir, cancel)
            cancel.raise_if_cancelled()

            def on_progress(p: Progress) -> None:
                hb.report(p.fraction, p.stage)

            transcript = kind.run(self.engine(), audio, options, on_progress, cancel)
            cancel.raise_if_cancelled()  # canceled while the last stage finished
            result = transcript.to_dict()
            self._store_result(lease, result)
            cancel.raise_if_cancelled()
            hb.stop()
            if hb.lost:
                return "lost"
            duration = time.monotonic() - started
            audio_seconds = float(transcript.duration or job.audio_seconds or 0.0)
            if self.queue.complete(
                lease, result, duration_seconds=duration, audio_seconds=audio_seconds
            ):
                return JobState.COMPLETED
            # Still holding the lease but not completed: the user canceled after the last
            # heartbeat. The cancel wins; cancel_running is fenced by the lease as well.
            return JobState.CANCELED if self.queue.cancel_running(lease) else "lost"
        except CancelledError:
            hb.stop()
            if hb.lost:
                return "lost"
            if hb.cancel_requested:
                return JobState.CANCELED if self.queue.cancel_running(lease) else "lost"
            # Our own shutdown: give the job back for another worker, no attempt burned.
            return JobState.QUEUED if self.queue.release(lease) else "lost"
        except (AudioError, ModelNotFoundError, kinds.InvalidParamsError) as exc:
            hb.stop()
            status = self.queue.fail(lease, _message(exc), retryable=False)
            return status or "lost"
        except NojoinError as exc:
            # ProcessingError: an engine crash (OOM, native fault) may well pass on a retry.
            hb.stop()
            status = self.queue.fail(lease, _message(exc), retryable=True)
            return status or "lost"
        except Exception as exc:
            logger.exception("job %s: unexpected error", job.id)
            hb.stop()
            status = self.queue.fail(
                lease, f"Internal error while processing: {type(exc).__name__}", retryable=True
            )
            return status or "lost"
        finally:
            hb.stop()
            with self._state:
                self._current = None
            shutil.rmtree(workdir, ignore_errors=True)

    def _download(self, job_id: uuid.UUID, workdir: Path, cancel: CancelToken) -> Path:
        key = self.queue.input_path(job_id)
        if key is None:
            raise AudioError("The uploaded file for this job is missing; submit it again.")
        suffix = Path(key).suffix or ".bin"
        path = workdir / f"input{suffix}"
        try:
            with open(path, "wb") as out:
                for chunk in self.storage.iter_bytes(key):
                    out.write(chunk)
                    cancel.raise_if_cancelled()
        except NotFoundError:
            raise AudioError(
                "The uploaded file for this job is missing; submit it again."
            ) from None
        return path

    def _store_log(self, lease: Lease, text: str) -> None:
        """Best effort: the attempt's log for operators (job_files kind `log`)."""
        data = text.encode("utf-8")
        name = f"attempt-{lease.job.attempts}-{lease.token.hex[:8]}.log"  # one per claim
        key = f"{lease.job.user_id}/jobs/{lease.job_id}/{name}"
        try:
            self.storage.put(key, io.BytesIO(data))
            self.queue.add_log(lease, key, len(data))
        except Exception:
            logger.warning("could not store the log of job %s", lease.job_id, exc_info=True)

    def _store_result(self, lease: Lease, result: dict[str, object]) -> None:
        data = json.dumps(result, ensure_ascii=False).encode("utf-8")
        key = f"{lease.job.user_id}/jobs/{lease.job_id}/result.json"
        self.storage.put(key, io.BytesIO(data))
        self.queue.add_output(lease, key, len(data))


class AttemptLog(logging.Handler):
    """Collects what this thread logs while it processes one job attempt: the worker's own
    records and the engine's (relayed by the local strategy on the same thread), capped so a
    chatty engine cannot fill storage. Nothing of the user's audio or transcript is logged."""

    MAX_CHARS = 200_000

    def __init__(self, lease: Lease) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self._thread = threading.get_ident()
        job = lease.job
        self._lines: list[str] = [
            f"job {job.id} kind {job.kind} attempt {job.attempts}/{job.max_attempts}"
            f" worker {lease.worker_id} params {json.dumps(job.params, sort_keys=True)}"
        ]
        self._chars = 0
        self._dropped = 0

    def __enter__(self) -> AttemptLog:
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self._thread:
            return
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        if self._chars + len(line) > self.MAX_CHARS:
            self._dropped += 1
            return
        self._lines.append(line)
        self._chars += len(line) + 1

    def text(self, outcome: str) -> str:
        tail = [f"... {self._dropped} more line(s) not kept"] if self._dropped else []
        return "\n".join([*self._lines, *tail, f"outcome: {outcome}", ""])


def delete_input(queue: JobQueue, storage: StorageProvider, job_id: uuid.UUID) -> None:
    """Best effort: a leftover object costs storage, never correctness."""
    try:
        key = queue.input_path(job_id)
        if key is not None:
            storage.delete(key)
    except Exception:
        logger.warning("could not delete the input of job %s", job_id, exc_info=True)


def _message(exc: BaseException) -> str:
    return exc.message if isinstance(exc, NojoinError) else str(exc)


class PullWorker:
    """A thread that claims due jobs from the database and processes them one at a time.

    `wake()` makes it look at once (the API calls it after a submission commits)."""

    def __init__(self, processor: JobProcessor, *, poll_seconds: float, name: str) -> None:
        self.processor = processor
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> PullWorker:
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        self.processor.close()  # cancels a running job (it goes back to the queue)
        # Under `run_forever()` the loop runs in the caller's thread and ends by itself.
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=timeout)

    def run_forever(self) -> None:
        """Run in the calling thread until `stop()` (the `nojoin-worker --mode pull` case)."""
        self._run()

    def _run(self) -> None:
        logger.info("pull worker %s started", self.processor.worker_id)
        while not self._stop.is_set():
            try:
                worked = self.processor.run_next()
            except Exception:
                logger.exception("pull worker: claim failed; retrying")
                worked = False
                self._stop.wait(self.poll_seconds)
            if not worked and not self._stop.is_set():
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
        logger.info("pull worker %s stopped", self.processor.worker_id)


Dispatch = Callable[[list[uuid.UUID]], None]


class Maintenance:
    """Periodically reaps expired leases and re-dispatches due queued jobs.

    Safe to run in many processes at once (SKIP LOCKED everywhere)."""

    def __init__(
        self,
        queue: JobQueue,
        *,
        interval: float,
        dispatch: Dispatch | None = None,
        redispatch_after: float = 300.0,
        on_requeue: Callable[[], None] | None = None,
    ) -> None:
        self.queue = queue
        self.interval = interval
        self.dispatch = dispatch
        self.redispatch_after = redispatch_after
        self.on_requeue = on_requeue
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-maintenance", daemon=True)

    def start(self) -> Maintenance:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def run_once(self) -> None:
        reaped = self.queue.reap()
        if reaped.requeued and self.on_requeue is not None:
            self.on_requeue()
        if self.dispatch is not None:
            due = self.queue.due_for_dispatch(older_than_seconds=self.redispatch_after)
            if due:
                logger.info("re-dispatching %d queued job(s)", len(due))
                self.dispatch(due)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                logger.exception("job maintenance failed; will retry")
            self._stop.wait(self.interval)
