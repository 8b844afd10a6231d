"""The one way the desktop runs work in the background (after Anki's taskman / QueryOp).

An operation is one small function, `op(progress, cancel) -> result`, that never touches a
widget: it reports with the engine contract's `Progress` and checks its `CancelToken`. Hand it
to `TaskRunner.run()`; the runner runs it on a worker thread of a lane (a lane runs one
operation at a time, in order; `lane=None` runs next to the others), and the returned `Task`
delivers progress, the result or the error, then `finished`, on the UI thread. Every window,
queue and service gets the app's runner from the composition root, so quitting waits for all
of them in one place.

    task = runner.run("list devices", lambda progress, cancel: list_devices())
    task.completed.connect(self._fill_devices)

`post(fn, *args)` calls `fn` on the UI thread from any thread (e.g. an exception hook).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QThreadPool, Signal, Slot

from nojoin.errors import CancelledError, NojoinError
from nojoin.processing.contract import CancelToken, Progress, ProgressCallback

log = logging.getLogger(__name__)

Op = Callable[[ProgressCallback, CancelToken], Any]
"""A long operation: reports progress, checks the cancel token, returns a result."""


class Task(QObject):
    """One operation handed to a `TaskRunner`.

    Signals (always on the UI thread, in this order):
        progress(Progress): a report from the operation.
        completed(object): its result.
        failed(BaseException): it raised; `CancelledError` means the user cancelled.
        finished(): always last, after completed or failed.
    """

    progress = Signal(object)
    completed = Signal(object)
    failed = Signal(object)
    finished = Signal()
    # From the worker thread; queued to this object's (the UI) thread, then re-emitted.
    _reported = Signal(object)
    _returned = Signal(object)
    _raised = Signal(object)

    def __init__(self, name: str, cancel: CancelToken | None = None) -> None:
        super().__init__()
        self.name = name
        self.cancel_token = cancel or CancelToken()
        self.done = False
        self._reported.connect(self.progress.emit, Qt.ConnectionType.QueuedConnection)
        self._returned.connect(self._on_returned, Qt.ConnectionType.QueuedConnection)
        self._raised.connect(self._on_raised, Qt.ConnectionType.QueuedConnection)

    def cancel(self) -> None:
        """Ask the operation to stop (it raises CancelledError at its next check)."""
        self.cancel_token.cancel()

    @property
    def cancelled(self) -> bool:
        return self.cancel_token.cancelled

    @Slot(object)
    def _on_returned(self, result: object) -> None:
        self.completed.emit(result)
        self._finish()

    @Slot(object)
    def _on_raised(self, exc: BaseException) -> None:
        self.failed.emit(exc)
        self._finish()

    def _finish(self) -> None:
        self.done = True
        self.finished.emit()

    def _work(self, op: Op) -> None:
        """The worker thread's part: run `op`, send what happened to the UI thread."""
        try:
            result = op(self._reported.emit, self.cancel_token)
        except BaseException as exc:  # reported to the UI, never swallowed
            if not isinstance(exc, CancelledError):
                log.warning(
                    "background task %r failed: %s",
                    self.name,
                    exc,
                    exc_info=not isinstance(exc, NojoinError),
                )
            self._raised.emit(exc)
        else:
            self._returned.emit(result)


class _Poster(QObject):
    """Carries calls from any thread to the UI thread."""

    call = Signal(object, object)

    def __init__(self) -> None:
        super().__init__()
        self.call.connect(self._run, Qt.ConnectionType.QueuedConnection)

    @Slot(object, object)
    def _run(self, fn: Callable[..., object], args: tuple[Any, ...]) -> None:
        fn(*args)


class TaskRunner(QObject):
    """Runs operations off the UI thread, one at a time per lane; see the module docstring.

    Create it on the UI thread (the composition root does); `shutdown()` cancels what is
    left and waits for the worker threads.
    """

    def __init__(self, parent: QObject | None = None, *, threads: int = 4) -> None:
        super().__init__(parent)
        self._threads = threads
        self._pools: dict[str | None, QThreadPool] = {}
        self._tasks: set[Task] = set()  # held until finished (a collected Task loses signals)
        self._lock = threading.Lock()
        self._closed = False
        self._poster = _Poster()

    # ------------------------------------------------------------------ running

    def run(
        self,
        name: str,
        op: Op,
        *,
        lane: str | None = None,
        cancel: CancelToken | None = None,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> Task:
        """Run `op(progress, cancel)` on a worker thread of `lane`; returns its `Task`.

        The operation starts at once; what it reports reaches the UI thread through queued
        signals, so a caller may still connect to the task's signals after `run()` returned.
        """
        task = Task(name, cancel)
        if on_progress is not None:
            task.progress.connect(on_progress)
        if on_done is not None:
            task.completed.connect(on_done)
        if on_error is not None:
            task.failed.connect(on_error)
        task.finished.connect(lambda: self._tasks.discard(task))
        self._tasks.add(task)

        if self._closed:
            task._raised.emit(CancelledError("Nojoin is closing."))
        else:
            self._pool(lane).start(lambda: task._work(op))
        return task

    def post(self, fn: Callable[..., object], *args: Any) -> None:
        """Call `fn(*args)` on the UI thread soon (safe from any thread)."""
        self._poster.call.emit(fn, args)

    def _pool(self, lane: str | None) -> QThreadPool:
        with self._lock:
            pool = self._pools.get(lane)
            if pool is None:
                pool = QThreadPool(self)
                pool.setMaxThreadCount(1 if lane is not None else self._threads)
                self._pools[lane] = pool
            return pool

    # ------------------------------------------------------------------ queries

    @property
    def active(self) -> int:
        """Tasks whose `finished` has not been delivered yet (tests check none is left)."""
        return len(self._tasks)

    # ------------------------------------------------------------------ ending

    def wait(self, timeout_ms: int = 10_000) -> bool:
        """Block until every worker thread is idle (at quit, so none outlives the app)."""
        ok = True
        for pool in list(self._pools.values()):
            try:
                ok = bool(pool.waitForDone(timeout_ms)) and ok
            except RuntimeError:  # the pool was already deleted (interpreter exit)
                pass
        return ok

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Cancel every task, refuse new ones, and wait for the threads. Idempotent."""
        self._closed = True
        self.cancel_all()
        return self.wait(timeout_ms)
