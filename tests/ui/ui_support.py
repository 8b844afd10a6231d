"""Test doubles and helpers for the desktop UI tests: a test strategy, a fake recorder, a fake
account service (billing API), the Cloud Mode link the window sees, and a harness.

The doubles implement the real interfaces (`ProcessingStrategy`, the recorder's listener
protocol, `AccountService`, the window's `CloudLink`); they exist only here, never in the
shipped app. Everything else (library, pipeline, queue, widgets, Account dialog) is real.
"""

from __future__ import annotations

import threading
import wave
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QUrl
from PySide6.QtWidgets import QMessageBox

from nojoin.app import App
from nojoin.audio.recorder import (
    Levels,
    RecorderState,
    RecordingResult,
    Source,
    SourceLevel,
)
from nojoin.audio.saving import save_recording
from nojoin.cloud.billing_client import AccountStatus
from nojoin.errors import AudioError, NojoinError
from nojoin.library import Library
from nojoin.models import Segment, Transcript
from nojoin.processing.contract import CancelToken, ProcessingOptions, Progress
from nojoin.ui.cloud.account_dialog import AccountDialog

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


FREE = AccountStatus(
    tier="free",
    status="active",
    entitled=False,
    current_period_end=None,
    cancel_at_period_end=False,
    can_manage=False,
    gate_enabled=True,
    provider="stripe",
    quotas_enforced=True,
    jobs_today=0,
    jobs_per_day=2,
    max_file_bytes=500 * 1024 * 1024,
)
PRO = replace(
    FREE,
    tier="pro",
    entitled=True,
    can_manage=True,
    current_period_end=datetime(2026, 12, 22, 12, tzinfo=UTC),
    jobs_today=3,
    jobs_per_day=200,
)


class FakeAccount:
    """Answers from `statuses` in turn (the last one repeats); records every call and the
    thread it ran on."""

    def __init__(self, *statuses: AccountStatus) -> None:
        self.statuses = list(statuses)
        self.calls: list[str] = []
        self.threads: set[int] = set()
        self.checkout_keys: list[str] = []
        self.fail: Exception | None = None

    def _note(self, name: str) -> None:
        self.calls.append(name)
        self.threads.add(threading.get_ident())
        if self.fail is not None:
            raise self.fail

    def subscription(self) -> AccountStatus:
        self._note("subscription")
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]

    def checkout_url(self, idempotency_key: str) -> str:
        self._note("checkout")
        self.checkout_keys.append(idempotency_key)
        return "https://checkout.stripe.com/c/pay/cs_test_1"

    def portal_url(self, idempotency_key: str) -> str:
        self._note("portal")
        return "https://billing.stripe.com/p/session/test_1"


class Browser:
    def __init__(self, works: bool = True) -> None:
        self.opened: list[str] = []
        self.works = works

    def __call__(self, url: QUrl) -> bool:
        self.opened.append(url.toString())
        return self.works


class FakeCloud:
    """The window's `CloudLink` (what CloudController provides): sign-in state, and Upgrade
    opening the real Account dialog over a fake billing service, as CloudController does."""

    def __init__(
        self,
        account: FakeAccount | None = None,
        *,
        configured: bool = True,
        signed_in: bool = True,
    ) -> None:
        self.account = account or FakeAccount(FREE)
        self.browser = Browser()
        self.configured = configured
        self.signed_in = signed_in
        self.dialogs: list[AccountDialog] = []

    def start_upgrade(self) -> AccountDialog:
        dialog = AccountDialog(self.account, open_url=self.browser, poll_interval_ms=20)
        self.dialogs.append(dialog)
        dialog.show()
        dialog.upgrade_when_ready()
        return dialog

    def close(self) -> None:
        for dialog in self.dialogs:
            dialog.close()


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
        self.lost: list[Source] = []
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

    def lose(self, source: Source, *, on_thread: bool = True) -> None:
        """A device is unplugged: what the writer thread reports (with the real recorder's
        messages); once both are gone the recording FAILED and waits for stop() to save it.
        `on_thread=False` reports from the calling thread, so the adapter has seen it when
        this returns."""

        def report() -> None:
            self.lost.append(source)
            self.listener.device_lost(
                source,
                f"The {source.label} device stopped working (it was disconnected). "
                "What was recorded so far is kept.",
            )
            if set(self.lost) == set(Source):
                self.listener.error(
                    "Every recording device is gone, so the recording stopped. "
                    "What was recorded so far is kept."
                )
                self._set(RecorderState.FAILED)

        if not on_thread:
            report()
            return
        t = threading.Thread(target=report)
        t.start()
        t.join()

    def stop(self) -> RecordingResult:
        self.calls.append("stop")
        if self.state not in (RecorderState.RECORDING, RecorderState.PAUSED, RecorderState.FAILED):
            raise AudioError("The recorder is not running.")
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
            lost_sources=tuple(self.lost),
            discarded=False,
        )
        meeting = save_recording(self.library, result)
        self._set(RecorderState.STOPPED)
        return replace(result, meeting=meeting)


@dataclass
class Harness:
    app: App
    strategy: ScriptedStrategy  # the pipeline's "local" strategy
    wav: Path
    recorders: list[FakeRecorder] = field(default_factory=list)
    remote: ScriptedStrategy = field(default_factory=ScriptedStrategy)  # its "remote" one

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
