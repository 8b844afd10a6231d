"""The processing queue and its widget: meetings processed one at a time off the UI thread.

`ProcessingQueue` hands each meeting to the app's `TaskRunner` (lane "processing": the engine
already uses every core) to run on this computer or on Nojoin Cloud as it was queued (`mode`).
The heavy work itself happens in the engine's child process or on the server, so the worker
thread mostly waits; the UI thread only receives the task's signals.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from nojoin.errors import CancelledError
from nojoin.models import ProcessingMode
from nojoin.processing.contract import (
    CancelToken,
    ProcessingOptions,
    Progress,
    ProgressCallback,
)
from nojoin.ui.tasks import Task, TaskRunner

log = logging.getLogger(__name__)

MeetingRunner = Callable[[int, ProcessingOptions, ProgressCallback, CancelToken, str], object]
"""Processes one stored meeting in a mode ("local" / "remote") and stores the result (the
composition root adapts Pipeline.process_meeting)."""

LANE = "processing"


class ItemState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass
class QueueItem:
    meeting_id: int
    title: str
    options: ProcessingOptions
    mode: str = ProcessingMode.LOCAL  # the Pipeline mode: this computer or Nojoin Cloud
    state: ItemState = ItemState.QUEUED
    progress: Progress = field(default_factory=lambda: Progress("queued", 0.0))
    started_at: float | None = None
    error: BaseException | None = None
    cancel: CancelToken = field(default_factory=CancelToken)

    @property
    def eta(self) -> float | None:
        """Seconds left: the engine's estimate, else extrapolated from progress so far."""
        if self.progress.eta is not None:
            return max(0.0, self.progress.eta)
        f = self.progress.fraction
        if self.started_at is None or f < 0.05:
            return None
        elapsed = time.monotonic() - self.started_at
        return max(0.0, elapsed * (1.0 - f) / f)


class ProcessingQueue(QObject):
    """Meetings waiting to be processed, run one after another on a worker thread.

    Signals:
        changed(): items were added, removed or changed state.
        item_progress(int, Progress): meeting id and its latest report.
        item_completed(int): the meeting was processed and stored.
        item_failed(int, BaseException): processing failed (not cancelled).
        item_cancelled(int): the user cancelled it.
        busy_changed(bool): whether anything is queued or running.
    """

    changed = Signal()
    item_progress = Signal(int, object)
    item_completed = Signal(int)
    item_failed = Signal(int, object)
    item_cancelled = Signal(int)
    busy_changed = Signal(bool)

    def __init__(
        self, runner: MeetingRunner, tasks: TaskRunner, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._runner = runner
        self._tasks = tasks
        self._items: list[QueueItem] = []
        self._current: QueueItem | None = None
        self._task: Task | None = None

    # ------------------------------------------------------------------ queries
    @property
    def items(self) -> list[QueueItem]:
        return list(self._items)

    @property
    def current(self) -> QueueItem | None:
        return self._current

    def item(self, meeting_id: int) -> QueueItem | None:
        for it in self._items:
            if it.meeting_id == meeting_id and it.state in (ItemState.QUEUED, ItemState.RUNNING):
                return it
        return None

    def is_busy(self) -> bool:
        return any(it.state in (ItemState.QUEUED, ItemState.RUNNING) for it in self._items)

    # ------------------------------------------------------------------ actions
    def enqueue(
        self,
        meeting_id: int,
        title: str,
        options: ProcessingOptions,
        *,
        mode: str = ProcessingMode.LOCAL,
    ) -> QueueItem:
        """Queue a meeting to process in `mode` (a meeting already waiting or running is not
        queued twice)."""
        existing = self.item(meeting_id)
        if existing is not None:
            return existing
        was_busy = self.is_busy()
        # Finished entries of the same meeting make way for the new run.
        self._items = [it for it in self._items if it.meeting_id != meeting_id]
        item = QueueItem(meeting_id, title, options, mode)
        self._items.append(item)
        self.changed.emit()
        if not was_busy:
            self.busy_changed.emit(True)
        self._start_next()
        return item

    def cancel(self, meeting_id: int) -> None:
        item = self.item(meeting_id)
        if item is None:
            return
        item.cancel.cancel()
        if item.state is ItemState.QUEUED:
            item.state = ItemState.CANCELLED
            self.changed.emit()
            self.item_cancelled.emit(meeting_id)
            self._emit_idle_if_done()

    def cancel_all(self) -> None:
        for it in list(self._items):
            self.cancel(it.meeting_id)

    def clear_finished(self) -> None:
        self._items = [
            it for it in self._items if it.state in (ItemState.QUEUED, ItemState.RUNNING)
        ]
        self.changed.emit()

    def wait_idle(self, timeout_ms: int = 10_000) -> bool:
        """Block until the running meeting's worker thread is done (used when the app quits)."""
        if self._task is None:
            return True
        return self._tasks.wait(timeout_ms)

    # ---------------------------------------------------------------- internals
    def _start_next(self) -> None:
        if self._current is not None:
            return
        nxt = next((it for it in self._items if it.state is ItemState.QUEUED), None)
        if nxt is None:
            return
        self._current = nxt
        nxt.state = ItemState.RUNNING
        nxt.started_at = time.monotonic()
        nxt.progress = Progress("starting", 0.0)
        mid, options, mode, runner = nxt.meeting_id, nxt.options, nxt.mode, self._runner

        def job(progress: ProgressCallback, cancel: CancelToken) -> object:
            return runner(mid, options, progress, cancel, mode)

        task = self._tasks.run(f"process meeting {mid}", job, lane=LANE, cancel=nxt.cancel)
        task.progress.connect(self._on_progress)
        task.completed.connect(self._on_completed)
        task.failed.connect(self._on_failed)
        task.finished.connect(self._on_task_finished)
        self._task = task
        self.changed.emit()

    @Slot(object)
    def _on_progress(self, progress: Progress) -> None:
        item = self._current
        if item is None:
            return
        item.progress = progress
        self.item_progress.emit(item.meeting_id, progress)

    @Slot(object)
    def _on_completed(self, _result: object) -> None:
        item = self._current
        if item is None:
            return
        item.state = ItemState.DONE
        item.progress = Progress("done", 1.0, 0.0)
        self.item_completed.emit(item.meeting_id)

    @Slot(object)
    def _on_failed(self, exc: BaseException) -> None:
        item = self._current
        if item is None:
            return
        if isinstance(exc, CancelledError) or item.cancel.cancelled:
            item.state = ItemState.CANCELLED
            self.item_cancelled.emit(item.meeting_id)
        else:
            item.state = ItemState.FAILED
            item.error = exc
            self.item_failed.emit(item.meeting_id, exc)

    @Slot()
    def _on_task_finished(self) -> None:
        self._current = None
        self._task = None
        self.changed.emit()
        self._start_next()
        self._emit_idle_if_done()

    def _emit_idle_if_done(self) -> None:
        if not self.is_busy():
            self.busy_changed.emit(False)


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "estimating…"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s left"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m} min {s:02d} s left"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min left"


STAGE_LABELS = {
    "queued": "Waiting",
    "starting": "Starting",
    "loading": "Loading model",
    "decoding": "Reading audio",
    "transcribing": "Transcribing",
    "diarizing": "Finding speakers",
    "merging": "Putting it together",
    "uploading": "Uploading",
    "done": "Done",
}


def stage_label(stage: str) -> str:
    return STAGE_LABELS.get(stage, stage.capitalize())


class _ItemRow(QFrame):
    def __init__(self, queue: ProcessingQueue, item: QueueItem) -> None:
        super().__init__()
        self.meeting_id = item.meeting_id
        self.setObjectName("queueRow")
        remote = item.mode == ProcessingMode.REMOTE
        self.title = QLabel(f"☁ {item.title}" if remote else item.title)
        self.title.setToolTip("On Nojoin Cloud" if remote else "On this computer")
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.stage = QLabel()
        self.stage.setObjectName("muted")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setFixedWidth(180)
        self.eta = QLabel()
        self.eta.setObjectName("muted")
        self.eta.setMinimumWidth(110)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(lambda: queue.cancel(self.meeting_id))
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 4, 8, 4)
        lay.addWidget(self.title, 3)
        lay.addWidget(self.stage, 2)
        lay.addWidget(self.bar)
        lay.addWidget(self.eta)
        lay.addWidget(self.cancel_button)
        self.update_from(item)

    def update_from(self, item: QueueItem) -> None:
        self.bar.setValue(int(max(0.0, min(1.0, item.progress.fraction)) * 1000))
        active = item.state in (ItemState.QUEUED, ItemState.RUNNING)
        self.cancel_button.setVisible(active)
        if item.state is ItemState.QUEUED:
            self.stage.setText("Waiting")
            self.eta.setText("")
        elif item.state is ItemState.RUNNING:
            text = stage_label(item.progress.stage)
            self.stage.setText(text)
            self.stage.setToolTip(item.progress.message)
            self.eta.setText(format_eta(item.eta))
        elif item.state is ItemState.DONE:
            self.stage.setText("Done")
            self.eta.setText("")
        elif item.state is ItemState.CANCELLED:
            self.stage.setText("Cancelled")
            self.eta.setText("")
        else:
            self.stage.setText("Failed")
            self.stage.setToolTip(str(item.error or ""))
            self.eta.setText("")


class ProcessingQueueWidget(QWidget):
    """One row per queued/running/finished meeting: title, stage, progress, ETA, Cancel."""

    def __init__(self, queue: ProcessingQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._queue = queue
        self._rows: dict[int, _ItemRow] = {}
        self._list = QVBoxLayout()
        self._list.setSpacing(2)
        self._list.setContentsMargins(0, 0, 0, 0)
        inner = QWidget()
        inner_lay = QVBoxLayout(inner)
        inner_lay.setContentsMargins(0, 0, 0, 0)
        inner_lay.addLayout(self._list)
        inner_lay.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(inner)
        self.empty_label = QLabel("Nothing is being processed.")
        self.empty_label.setObjectName("muted")
        self.clear_button = QPushButton("Clear finished")
        self.clear_button.clicked.connect(queue.clear_finished)
        top = QHBoxLayout()
        top.addWidget(self.empty_label)
        top.addStretch(1)
        top.addWidget(self.clear_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 4, 8, 4)
        lay.addLayout(top)
        lay.addWidget(scroll)
        queue.changed.connect(self._rebuild)
        queue.item_progress.connect(self._on_progress)
        self._rebuild()

    def row(self, meeting_id: int) -> _ItemRow | None:
        return self._rows.get(meeting_id)

    @Slot()
    def _rebuild(self) -> None:
        items = self._queue.items
        wanted = {it.meeting_id for it in items}
        for mid in list(self._rows):
            if mid not in wanted:
                old = self._rows.pop(mid)
                self._list.removeWidget(old)
                old.deleteLater()
        for it in items:
            row = self._rows.get(it.meeting_id)
            if row is None:
                row = _ItemRow(self._queue, it)
                self._rows[it.meeting_id] = row
                self._list.addWidget(row)
            row.update_from(it)
        self.empty_label.setVisible(not items)
        self.clear_button.setVisible(
            any(it.state not in (ItemState.QUEUED, ItemState.RUNNING) for it in items)
        )

    @Slot(int, object)
    def _on_progress(self, meeting_id: int, _progress: Progress) -> None:
        row = self._rows.get(meeting_id)
        item = self._queue.item(meeting_id)
        if row is not None and item is not None:
            row.update_from(item)
