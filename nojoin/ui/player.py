"""Audio playback bar (QtMultimedia), created on first use so start-up does not pay for it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QUrl, Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QStyle, QWidget

from nojoin.ui import formatting

if TYPE_CHECKING:
    from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer

log = logging.getLogger(__name__)


class PlayerBar(QWidget):
    """Play/pause, a position slider and the time.

    Signals:
        position_changed(float): playback position in seconds (while playing or after a seek).
        error(str): the file cannot be played; the message says why.
    """

    position_changed = Signal(float)
    error = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._player: QMediaPlayer | None = None
        self._audio: QAudioOutput | None = None
        self._duration_ms = 0
        self._dragging = False
        self._loaded = False
        self._pending_seek: int | None = None
        self.play_button = QPushButton()
        self.play_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self.play_button.setToolTip("Play / pause (Space)")
        self.play_button.setEnabled(False)
        self.play_button.clicked.connect(self.toggle)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setEnabled(False)
        self.slider.sliderPressed.connect(lambda: setattr(self, "_dragging", True))
        self.slider.sliderReleased.connect(self._on_slider_released)
        self.time_label = QLabel("00:00 / 00:00")
        self.time_label.setObjectName("muted")
        self.time_label.setMinimumWidth(110)
        self.time_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.play_button)
        lay.addWidget(self.slider, 1)
        lay.addWidget(self.time_label)

    @property
    def player(self) -> QMediaPlayer:
        if self._player is None:
            from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer

            self._player = QMediaPlayer(self)
            self._audio = QAudioOutput(self)
            self._player.setAudioOutput(self._audio)
            self._player.positionChanged.connect(self._on_position)
            self._player.durationChanged.connect(self._on_duration)
            self._player.playbackStateChanged.connect(self._on_state)
            self._player.errorOccurred.connect(self._on_error)
            self._player.mediaStatusChanged.connect(self._on_media_status)
        return self._player

    def set_source(self, path: str | None) -> None:
        """Load `path` (None or a missing file: playback disabled)."""
        ok = bool(path) and Path(str(path)).is_file()
        self.stop()
        self._loaded = False
        self._pending_seek = None
        if ok:
            self.player.setSource(QUrl.fromLocalFile(str(path)))
        elif self._player is not None:
            self._player.setSource(QUrl())
        self.play_button.setEnabled(ok)
        self.slider.setEnabled(ok)
        self.play_button.setToolTip(
            "Play / pause (Space)" if ok else "The audio file of this meeting is missing."
        )
        self._duration_ms = 0
        self._show_time(0)

    def toggle(self) -> None:
        from PySide6.QtMultimedia import QMediaPlayer

        p = self.player
        if p.playbackState() == QMediaPlayer.PlaybackState.PlayingState:
            p.pause()
        else:
            p.play()

    def stop(self) -> None:
        """Stop playback. A player that is not playing is left alone: QMediaPlayer.stop() called
        from Python (holding the GIL) while the FFmpeg backend tears down its audio sink on its
        own thread (which needs the GIL for the Python-made QAudioOutput) deadlocks, and
        closing the window used to do exactly that with nothing playing."""
        from PySide6.QtMultimedia import QMediaPlayer

        p = self._player
        if p is not None and p.playbackState() != QMediaPlayer.PlaybackState.StoppedState:
            p.stop()

    def seek(self, seconds: float) -> None:
        """Jump to `seconds`; before the file has loaded, the jump happens once it has."""
        ms = int(max(0.0, seconds) * 1000)
        if self._loaded:
            self.player.setPosition(ms)
        else:
            self._pending_seek = ms

    @Slot(object)
    def _on_media_status(self, status: object) -> None:
        from PySide6.QtMultimedia import QMediaPlayer

        if status in (
            QMediaPlayer.MediaStatus.LoadedMedia,
            QMediaPlayer.MediaStatus.BufferedMedia,
            QMediaPlayer.MediaStatus.BufferingMedia,
            QMediaPlayer.MediaStatus.EndOfMedia,
        ):
            if not self._loaded:
                self._loaded = True
                if self._pending_seek is not None:
                    ms, self._pending_seek = self._pending_seek, None
                    self.player.setPosition(ms)

    def is_playing(self) -> bool:
        if self._player is None:
            return False
        from PySide6.QtMultimedia import QMediaPlayer

        return self._player.playbackState() == QMediaPlayer.PlaybackState.PlayingState

    @Slot(int)
    def _on_position(self, ms: int) -> None:
        if not self._dragging:
            self.slider.setValue(ms)
        self._show_time(ms)
        self.position_changed.emit(ms / 1000.0)

    @Slot(int)
    def _on_duration(self, ms: int) -> None:
        self._duration_ms = ms
        self.slider.setRange(0, max(0, ms))
        self._show_time(self.player.position())

    @Slot()
    def _on_slider_released(self) -> None:
        self._dragging = False
        self.player.setPosition(self.slider.value())

    @Slot(object)
    def _on_state(self, _state: object) -> None:
        icon = (
            QStyle.StandardPixmap.SP_MediaPause
            if self.is_playing()
            else QStyle.StandardPixmap.SP_MediaPlay
        )
        self.play_button.setIcon(self.style().standardIcon(icon))

    @Slot(object, str)
    def _on_error(self, _err: object, message: str) -> None:
        log.warning("playback error: %s", message)
        self.error.emit(f"The audio cannot be played: {message}")

    def _show_time(self, ms: int) -> None:
        self.time_label.setText(
            f"{formatting.clock(ms / 1000)} / {formatting.clock(self._duration_ms / 1000)}"
        )
