"""Record controls: a QObject adapter over the Qt-free `Recorder`, level meters and buttons.

The recorder's listener is called on its writer thread; the adapter turns each event into a
signal, which Qt queues to the UI thread. Starting and stopping block (devices open, files
close), so they run on the app's `TaskRunner` too (lane "recorder", in order).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtCore import QObject, QRectF, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from nojoin.errors import AudioError
from nojoin.ui import formatting
from nojoin.ui.tasks import TaskRunner

if TYPE_CHECKING:
    from nojoin.audio.recorder import (
        Levels,
        RecorderListener,
        RecorderState,
        RecordingResult,
        Source,
    )

log = logging.getLogger(__name__)

LANE = "recorder"


class RecorderLike(Protocol):
    """What the adapter needs of `nojoin.audio.recorder.Recorder` (tests use a fake)."""

    def start(self) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def stop(self) -> Any: ...


RecorderFactory = Callable[["RecorderListener"], RecorderLike]
"""Builds a recorder for one recording, with the current device settings and our listener."""


class _Listener:
    """Implements RecorderListener by emitting the adapter's signals (any thread)."""

    def __init__(self, adapter: RecorderAdapter) -> None:
        self._a = adapter

    def state_changed(self, state: RecorderState) -> None:
        self._a.state_changed.emit(str(state))

    def levels(self, levels: Levels) -> None:
        self._a.levels_changed.emit(levels.mic.rms, levels.system.rms, levels.elapsed)

    def device_lost(self, source: Source, message: str) -> None:  # noqa: ARG002 (listener API)
        self._a.device_lost.emit(message)

    def error(self, message: str) -> None:
        self._a.error.emit(message)

    def finished(self, result: RecordingResult) -> None:
        pass  # reported by the stop worker with the result, after stop() returned


class RecorderAdapter(QObject):
    """Runs one recording at a time.

    A recording that fails (every device lost, or the file cannot be written) is stopped and
    saved right away, as `nojoin record` does: what was recorded becomes a meeting, and
    `stopped_by_failure` tells the `finished` handler why it ended.

    Signals:
        state_changed(str): idle, starting, recording, paused, stopping, stopped, failed.
        levels_changed(float, float, float): mic RMS, system RMS (0..1), seconds recorded.
        device_lost(str): one device vanished; recording continues with the other.
        error(str): a problem the user should know about.
        start_failed(BaseException): the recording could not start (e.g. no microphone).
        finished(object): the RecordingResult after stop (meeting added when long enough).
    """

    state_changed = Signal(str)
    levels_changed = Signal(float, float, float)
    device_lost = Signal(str)
    error = Signal(str)
    start_failed = Signal(object)
    finished = Signal(object)

    def __init__(
        self, factory: RecorderFactory, tasks: TaskRunner, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._factory = factory
        self._tasks = tasks
        self._recorder: RecorderLike | None = None
        self._state = "idle"
        self._stopped_by_failure = False
        self.state_changed.connect(self._remember_state)

    @property
    def state(self) -> str:
        return self._state

    @property
    def stopped_by_failure(self) -> bool:
        """Whether the current (or last) recording ended because it failed, not by Stop."""
        return self._stopped_by_failure

    def is_active(self) -> bool:
        """A recording exists whose audio is not saved yet (failed ones included: their audio
        is kept until stop() saves it)."""
        return self._state in ("starting", "recording", "paused", "failed", "stopping")

    @Slot(str)
    def _remember_state(self, state: str) -> None:
        self._state = state
        if state == "failed":
            self._stopped_by_failure = True
            # Not stop() from here: the other slots of this same signal must see "failed"
            # before they see "stopping".
            QTimer.singleShot(0, self, self._save_failed)

    @Slot()
    def _save_failed(self) -> None:
        if self._state == "failed":  # not already being saved (e.g. by closing the window)
            self.stop()

    def start(self) -> None:
        if self.is_active():
            return
        try:
            recorder = self._factory(_Listener(self))
        except Exception as exc:
            self.start_failed.emit(exc)
            return
        self._recorder = recorder
        self._stopped_by_failure = False
        self._state = "starting"
        self.state_changed.emit("starting")

        def job(_progress: object, _cancel: object) -> None:
            recorder.start()

        self._tasks.run("start recording", job, lane=LANE, on_error=self._on_start_failed)

    @Slot(object)
    def _on_start_failed(self, exc: BaseException) -> None:
        log.warning("recording could not start: %s", exc)
        self._recorder = None
        self.state_changed.emit("idle")
        self.start_failed.emit(exc)

    def pause(self) -> None:
        if self._recorder is not None and self._state == "recording":
            self._recorder.pause()

    def resume(self) -> None:
        if self._recorder is not None and self._state == "paused":
            self._recorder.resume()

    def stop(self) -> None:
        recorder = self._recorder
        if recorder is None or self._state not in ("recording", "paused", "failed"):
            return
        self.state_changed.emit("stopping")

        def job(_progress: object, _cancel: object) -> object:
            return recorder.stop()

        self._tasks.run(
            "stop recording",
            job,
            lane=LANE,
            on_done=self._on_stopped,
            on_error=self._on_stop_failed,
        )

    @Slot(object)
    def _on_stopped(self, result: object) -> None:
        self._recorder = None
        self.state_changed.emit("idle")
        self.finished.emit(result)

    @Slot(object)
    def _on_stop_failed(self, exc: BaseException) -> None:
        self._recorder = None
        self.state_changed.emit("idle")
        msg = str(exc) if isinstance(exc, AudioError) else f"Saving the recording failed: {exc}"
        self.error.emit(msg)


def level_fraction(rms: float) -> float:
    """Map linear RMS to 0..1 on a -60..0 dB scale (how meters usually look)."""
    if rms <= 1e-6:
        return 0.0
    db = 20.0 * math.log10(rms)
    return max(0.0, min(1.0, (db + 60.0) / 60.0))


class LevelMeter(QWidget):
    """A horizontal meter (-60..0 dB) with a short peak hold; value set through `set_level`."""

    def __init__(self, label: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = label
        self.value = 0.0
        self._peak = 0.0
        self._peak_time = 0.0
        self.setMinimumSize(90, 10)
        self.setMaximumHeight(12)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip(f"{label} level")
        self.setAccessibleName(f"{label} level")

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(120, 10)

    def set_level(self, rms: float) -> None:
        self.value = level_fraction(rms)
        now = time.monotonic()
        if self.value >= self._peak or now - self._peak_time > 1.5:
            self._peak, self._peak_time = self.value, now
        self.update()

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        pal = self.palette()
        p.setPen(pal.mid().color())
        p.setBrush(pal.base())
        p.drawRoundedRect(r, 4, 4)
        if self.isEnabled() and self.value > 0:
            fill = QRectF(r.x() + 1, r.y() + 1, (r.width() - 2) * self.value, r.height() - 2)
            color = (
                QColor("#22c55e")
                if self.value < 0.75
                else QColor("#eab308")
                if self.value < 0.93
                else QColor("#ef4444")
            )
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(color)
            p.drawRoundedRect(fill, 3, 3)
        if self.isEnabled() and self._peak > 0:
            x = r.x() + 1 + (r.width() - 2) * self._peak
            p.setPen(pal.text().color())
            p.drawLine(int(x), int(r.y()) + 2, int(x), int(r.bottom()) - 2)
        p.end()


class RecordControls(QWidget):
    """Record / Pause / Stop, elapsed time and the two meters, driven by a RecorderAdapter."""

    def __init__(self, adapter: RecorderAdapter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.adapter = adapter
        self.record_button = QPushButton("●  Record")
        self.record_button.setObjectName("recordButton")
        self.record_button.setToolTip("Record the microphone and the system audio (Ctrl+R)")
        self.pause_button = QPushButton("Pause")
        self.stop_button = QPushButton("Stop")
        self.elapsed_label = QLabel("00:00")
        self.elapsed_label.setObjectName("elapsed")
        self.elapsed_label.setMinimumWidth(64)
        self.state_label = QLabel("")
        self.state_label.setObjectName("muted")
        self.mic_meter = LevelMeter("Microphone")
        self.system_meter = LevelMeter("System audio")
        meters = QVBoxLayout()
        meters.setSpacing(3)
        for text, meter in (("Mic", self.mic_meter), ("System", self.system_meter)):
            row = QHBoxLayout()
            row.setSpacing(6)
            lab = QLabel(text)
            lab.setObjectName("muted")
            lab.setMinimumWidth(lab.sizeHint().width() + 2)
            row.addWidget(lab)
            row.addWidget(meter, 1)
            meters.addLayout(row)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(8)
        lay.addWidget(self.record_button)
        lay.addWidget(self.pause_button)
        lay.addWidget(self.stop_button)
        lay.addSpacing(6)
        lay.addWidget(self.elapsed_label)
        meters_box = QWidget()
        meters_box.setLayout(meters)
        meters_box.setMaximumWidth(280)
        meters_box.setMinimumWidth(200)
        lay.addWidget(meters_box, 1)
        lay.addWidget(self.state_label)
        lay.addStretch(1)
        self.record_button.clicked.connect(adapter.start)
        self.pause_button.clicked.connect(self._toggle_pause)
        self.stop_button.clicked.connect(adapter.stop)
        adapter.state_changed.connect(self._on_state)
        adapter.levels_changed.connect(self._on_levels)
        self._on_state("idle")

    @Slot()
    def _toggle_pause(self) -> None:
        if self.adapter.state == "paused":
            self.adapter.resume()
        else:
            self.adapter.pause()

    @Slot(str)
    def _on_state(self, state: str) -> None:
        active = state in ("recording", "paused")
        self.record_button.setEnabled(state in ("idle", "stopped"))
        self.pause_button.setEnabled(active)
        self.stop_button.setEnabled(active or state == "failed")
        self.pause_button.setText("Resume" if state == "paused" else "Pause")
        self.mic_meter.setEnabled(active)
        self.system_meter.setEnabled(active)
        labels = {
            "starting": "Opening devices…",
            "recording": "Recording",
            "paused": "Paused",
            "stopping": "Saving…",
            "failed": "Devices lost",
        }
        self.state_label.setText(labels.get(state, ""))
        if state in ("idle", "stopped"):
            self.elapsed_label.setText("00:00")
            self.mic_meter.set_level(0.0)
            self.system_meter.set_level(0.0)

    @Slot(float, float, float)
    def _on_levels(self, mic: float, system: float, elapsed: float) -> None:
        self.mic_meter.set_level(mic)
        self.system_meter.set_level(system)
        self.elapsed_label.setText(formatting.clock(elapsed))
