"""Test doubles and helpers for the desktop UI tests: a test strategy, a fake recorder, a harness.

The test strategy and fake recorder implement the engine's real interfaces
(`ProcessingStrategy`, the recorder's listener protocol); they exist only here, never in the
shipped app. Everything else (library, pipeline, queue, widgets) is the real code.
"""

from __future__ import annotations

import threading
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtWidgets import QMessageBox

from nojoin.app import App
from nojoin.audio.recorder import (
    Levels,
    RecorderState,
    RecordingResult,
    SourceLevel,
    save_recording,
)
from nojoin.errors import NojoinError
from nojoin.library import Library
from nojoin.models import Segment, Transcript
from nojoin.processing.strategies.base import CancelToken, ProcessingOptions, Progress

TWO_SPEAKER_SEGMENTS = [
    Segment(0.5, 3.0, "Good morning everyone, welcome to the planning meeting.", "SPEAKER_00"),
    Segment(3.5, 6.0, "Thanks. Let us start with the website status.", "SPEAKER_01"),
    Segment(6.5, 9.0, "The design is finished but search needs testing.", "SPEAKER_00"),
    Segment(9.5, 12.0, "Then we move the launch to next month.", "SPEAKER_01"),
]


def write_wav(path: Path, seconds: float = 12.5, rate: int = 16_000) -> Path:
    """A quiet tone: real audio the player and importer can open."""
    t = np.arange(int(rate * seconds)) / rate
    pcm = (0.1 * np.sin(2 * np.pi * 330 * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


class ScriptedStrategy:
    """A ProcessingStrategy whose run the test controls.

    Reports progress through the stages; with `hold`, stops at 50% until `release` is set (or
    cancel fires); `error` makes it fail like the engine would.
    """

    name = "scripted"

    def __init__(self) -> None:
        self.segments = list(TWO_SPEAKER_SEGMENTS)
        self.hold = False
        self.release = threading.Event()
        self.reached_hold = threading.Event()
        self.error: BaseException | None = None
        self.calls: list[tuple[Path, ProcessingOptions]] = []
        self.closed = False

    def process(
        self,
        audio_path: Path,
        options: ProcessingOptions,
        progress: Callable[[Progress], None],
        cancel: CancelToken,
    ) -> Transcript:
        self.calls.append((Path(audio_path), options))
        progress(Progress("loading", 0.05, None, "Loading model"))
        progress(Progress("transcribing", 0.5, 12.0, "Transcribing"))
        if self.hold:
            self.reached_hold.set()
            while not self.release.is_set():
                cancel.raise_if_cancelled()
                self.release.wait(0.02)
        cancel.raise_if_cancelled()
        if self.error is not None:
            raise self.error
        progress(Progress("diarizing", 0.9, 1.0, "Finding speakers"))
        return Transcript(
            segments=[Segment(s.start, s.end, s.text, s.speaker) for s in self.segments],
            language="en",
            duration=12.5,
        )

    def close(self) -> None:
        self.closed = True


class FakeRecorder:
    """Behaves like nojoin.audio.recorder.Recorder towards its listener, without devices."""

    instances: list[FakeRecorder] = []

    def __init__(self, listener: Any, library: Library, wav: Path, fail: str | None = None) -> None:
        self.listener = listener
        self.library = library
        self.wav = wav
        self.fail = fail
        self.state = RecorderState.IDLE
        self.calls: list[str] = []
        FakeRecorder.instances.append(self)

    def _set(self, state: RecorderState) -> None:
        self.state = state
        self.listener.state_changed(state)

    def start(self) -> None:
        self.calls.append("start")
        self._set(RecorderState.STARTING)
        if self.fail:
            raise NojoinError(self.fail)
        self._set(RecorderState.RECORDING)

    def pause(self) -> None:
        self.calls.append("pause")
        self._set(RecorderState.PAUSED)

    def resume(self) -> None:
        self.calls.append("resume")
        self._set(RecorderState.RECORDING)

    def send_levels(self, mic: float, system: float, elapsed: float) -> None:
        """What the writer thread does about 10 times a second (called from a thread here)."""
        levels = Levels(SourceLevel(mic, mic), SourceLevel(system, system), elapsed)
        t = threading.Thread(target=self.listener.levels, args=(levels,))
        t.start()
        t.join()

    def stop(self) -> RecordingResult:
        self.calls.append("stop")
        now = datetime.now(UTC)
        result = RecordingResult(
            path=self.wav,
            duration=12.5,
            samplerate=16_000,
            started_at=now,
            ended_at=now,
            title="Recorded standup",
            gaps=0,
            gap_seconds=0.0,
            drift_corrections=0,
            lost_sources=(),
            discarded=False,
        )
        meeting = save_recording(self.library, result)
        self._set(RecorderState.STOPPED)
        from dataclasses import replace

        return replace(result, meeting=meeting)


@dataclass
class Harness:
    app: App
    strategy: ScriptedStrategy
    wav: Path
    recorders: list[FakeRecorder] = field(default_factory=list)

    @property
    def window(self):  # type: ignore[no-untyped-def]
        return self.app.window

    @property
    def library(self) -> Library:
        return self.app.library

    def add_meeting(
        self, title: str, *, processed: bool = False, tags: tuple[str, ...] = ()
    ) -> int:
        m = self.library.add_meeting(title, audio_path=self.wav, duration=12.5)
        if processed:
            self.library.save_transcript(
                m.id,
                Transcript(
                    [Segment(s.start, s.end, s.text, s.speaker) for s in TWO_SPEAKER_SEGMENTS],
                    "en",
                    12.5,
                ),
            )
        for t in tags:
            self.library.add_tag(m.id, t)
        self.window.library_panel.refresh_tags()
        self.window.library_panel.refresh()
        return m.id


@dataclass
class Boxes:
    """Message boxes the UI opened (errors are non-blocking `open()`ed boxes)."""

    questions: list[str] = field(default_factory=list)
    answer: QMessageBox.StandardButton = QMessageBox.StandardButton.Yes


def error_boxes() -> list[QMessageBox]:
    from PySide6.QtWidgets import QApplication

    return [
        w
        for w in QApplication.topLevelWidgets()
        if isinstance(w, QMessageBox) and w.objectName() == "errorBox" and w.isVisible()
    ]
