"""Run the engine on this machine, in a spawned worker process.

Why a process: cancel is a plain terminate (Whisper's native code cannot be interrupted
politely), and a crash in native code (or the OOM killer) cannot take the app down; it becomes a
ProcessingError. The worker stays alive between files (models stay loaded) until `close()`, an
idle timeout, or the parent's death.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import shutil
import signal
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from nojoin import errors
from nojoin.audio.decode import probe
from nojoin.errors import CancelledError, NojoinError, ProcessingError
from nojoin.models import Transcript
from nojoin.processing.contract import (
    STAGE_STARTING,
    CancelToken,
    ProcessingOptions,
    Progress,
    ProgressCallback,
)

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1
TERMINATE_GRACE_SECONDS = 3.0


@dataclass
class _Worker:
    process: Any  # multiprocessing SpawnProcess
    conn: Connection


class LocalProcessingStrategy:
    """faster-whisper + diarization on this machine; one file at a time per instance."""

    name = "local"

    def __init__(self, *, keep_alive: bool = True, idle_timeout: float = 600.0) -> None:
        self.keep_alive = keep_alive
        self.idle_timeout = idle_timeout
        self._lock = threading.Lock()
        self._worker: _Worker | None = None
        self._job = 0
        self._answered = False
        self._last_used = 0.0
        # Shared with the finalizer, so a forgotten strategy still stops its worker.
        self._holder: list[_Worker | None] = [None]
        weakref.finalize(self, _stop_worker_ref, self._holder)

    @property
    def worker_pid(self) -> int | None:
        """PID of the engine process while it exists (for diagnostics and tests)."""
        w = self._worker
        return w.process.pid if w is not None and w.process.is_alive() else None

    def process(
        self,
        audio_path: Path,
        options: ProcessingOptions,
        progress: ProgressCallback,
        cancel: CancelToken,
    ) -> Transcript:
        audio_path = Path(audio_path)
        with self._lock:
            cancel.raise_if_cancelled()
            probe(audio_path)  # fast, clear AudioError before any process starts
            progress(Progress(STAGE_STARTING, 0.0, None, "Starting the engine"))
            worker = self._ensure_worker()
            self._job += 1
            job = self._job
            workdir = Path(tempfile.mkdtemp(prefix="nojoin-job-"))
            # True once the worker answered this job (result or a reported error) and is idle.
            self._answered = False
            try:
                worker.conn.send(
                    (
                        "job",
                        job,
                        os.fspath(audio_path.resolve()),
                        options.to_dict(),
                        os.fspath(workdir),
                    )
                )
                return self._wait(worker, job, progress, cancel)
            finally:
                if not self._answered:
                    # Cancelled, crashed, or the callback raised: the worker may still be busy
                    # with this job, so it goes.
                    self._stop_worker()
                elif not self.keep_alive:
                    self._stop_worker(graceful=True)
                self._last_used = time.monotonic()
                shutil.rmtree(workdir, ignore_errors=True)

    def close(self) -> None:
        with self._lock:
            self._stop_worker(graceful=True)

    def __enter__(self) -> LocalProcessingStrategy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals -------------------------------------------------------------------

    def _wait(
        self, worker: _Worker, job: int, progress: ProgressCallback, cancel: CancelToken
    ) -> Transcript:
        eta = _Eta()
        stage = STAGE_STARTING
        while True:
            if cancel.cancelled:
                raise CancelledError("Processing was cancelled.")
            msg: Any = None
            try:
                if worker.conn.poll(POLL_SECONDS):
                    msg = worker.conn.recv()
            except (EOFError, OSError):
                msg = None
            if msg is None:
                if not worker.process.is_alive() or worker.conn.closed:
                    worker.process.join(timeout=1)
                    raise ProcessingError(_crash_message(worker.process.exitcode, stage))
                continue
            kind = msg[0]
            if kind == "log":
                _, _, level, name, text = msg
                logging.getLogger(name).log(level, "[engine] %s", text)
                continue
            if msg[1] != job:
                continue  # a stale message from an earlier, abandoned job
            if kind == "progress":
                _, _, stage, fraction, message = msg
                progress(Progress(stage, float(fraction), eta.update(float(fraction)), message))
            elif kind == "result":
                self._answered = True
                return Transcript.from_dict(msg[2])
            elif kind == "error":
                self._answered = True
                raise _error_from(msg[2], msg[3])

    def _ensure_worker(self) -> _Worker:
        w = self._worker
        # A worker close to its idle timeout might exit just as a job arrives: replace it.
        fresh = time.monotonic() - self._last_used < self.idle_timeout * 0.8
        if w is not None and w.process.is_alive() and fresh:
            return w
        self._stop_worker()
        ctx = mp.get_context("spawn")
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        from nojoin.processing.worker import worker_main

        proc = ctx.Process(
            target=worker_main,
            args=(
                child_conn,
                os.getpid(),
                logging.getLogger("nojoin").getEffectiveLevel(),
                self.idle_timeout,
            ),
            name="nojoin-engine",
            daemon=True,  # multiprocessing terminates it at interpreter exit
        )
        proc.start()
        child_conn.close()
        self._worker = _Worker(proc, parent_conn)
        self._holder[0] = self._worker
        self._last_used = time.monotonic()
        log.info("started engine process %s", proc.pid)
        return self._worker

    def _stop_worker(self, graceful: bool = False) -> None:
        w, self._worker = self._worker, None
        self._holder[0] = None
        if w is not None:
            _terminate(w, graceful)


def _engine_log_level() -> int:
    """Forward what the parent would keep: its root level, but no chattier than INFO."""
    return max(logging.getLogger().getEffectiveLevel(), logging.INFO)


def _stop_worker_ref(holder: list[_Worker | None]) -> None:
    w, holder[0] = holder[0], None
    if w is not None:
        _terminate(w, graceful=False)


def _terminate(w: _Worker, graceful: bool) -> None:
    proc = w.process
    try:
        if graceful and proc.is_alive():
            try:
                w.conn.send(("stop",))
            except (OSError, ValueError):
                pass
            proc.join(timeout=TERMINATE_GRACE_SECONDS)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=TERMINATE_GRACE_SECONDS)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=TERMINATE_GRACE_SECONDS)
    finally:
        w.conn.close()
        if not proc.is_alive():
            proc.close()


class _Eta:
    """Seconds left, from the progress rate since the first report (None until it means something)."""

    def __init__(self) -> None:
        self._t0: float | None = None
        self._f0 = 0.0

    def update(self, fraction: float) -> float | None:
        now = time.monotonic()
        if self._t0 is None:
            self._t0, self._f0 = now, fraction
            return None
        done = fraction - self._f0
        elapsed = now - self._t0
        if done < 0.02 or elapsed < 1.0 or fraction >= 1.0:
            return 0.0 if fraction >= 1.0 else None
        return elapsed * (1.0 - fraction) / done


def _error_from(name: str, message: str) -> NojoinError:
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, NojoinError):
        return cls(message)
    return ProcessingError(message)


def _crash_message(exitcode: int | None, stage: str) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            how = f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"killed by signal {-exitcode}"
    else:
        how = f"exit code {exitcode}"
    if exitcode == -signal.SIGILL:
        from nojoin.processing.native_check import repair_hint

        return f"The processing engine stopped ({how}) while {stage}. {repair_hint()}"
    return (
        f"The processing engine stopped unexpectedly ({how}) while {stage}. "
        "If the computer ran out of memory, try a smaller model or close other programs, then retry."
    )
