"""Processing from the UI: progress then transcript, cancel, errors, retry after a crash."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from ui_support import Boxes, Harness, error_boxes

from nojoin.errors import ModelNotFoundError
from nojoin.models import MeetingStatus
from nojoin.ui.processing import ItemState


def test_processing_shows_progress_then_the_transcript(harness: Harness, qtbot: Any) -> None:
    s = harness.strategy
    s.hold = True
    mid = harness.add_meeting("Standup")
    w = harness.window
    w.open_meeting(mid)
    view = w.meeting_view
    assert view.banner.isVisibleTo(view) and "not been transcribed" in view.banner_label.text()
    qtbot.mouseClick(view.banner_button, Qt.MouseButton.LeftButton)  # "Transcribe now"

    # While the engine works, the UI shows stage, percentage and ETA everywhere.
    qtbot.waitUntil(lambda: s.reached_hold.is_set(), timeout=5000)
    qtbot.waitUntil(lambda: "Transcribing" in view.banner_label.text(), timeout=3000)
    assert "50%" in view.banner_label.text() and "left" in view.banner_label.text()
    row = w.queue_widget.row(mid)
    assert row is not None
    assert row.stage.text() == "Transcribing"
    assert row.bar.value() == 500
    assert "left" in row.eta.text()
    assert w.queue_dock.isVisibleTo(w)
    assert "Transcribing “Standup” 50%" in w.work_label.text()
    assert w.library_panel.model.index(0, 3).data() == "Transcribing 50%"
    assert harness.library.get_meeting(mid).status is MeetingStatus.PROCESSING

    s.release.set()
    qtbot.waitUntil(lambda: view.model.rowCount() == 4, timeout=5000)
    assert {view.model.index(r, 1).data() for r in range(4)} == {"SPEAKER_00", "SPEAKER_01"}
    assert not view.banner.isVisibleTo(view)
    assert harness.library.get_meeting(mid).status is MeetingStatus.PROCESSED
    qtbot.waitUntil(lambda: row.stage.text() == "Done", timeout=3000)
    assert w.library_panel.model.index(0, 3).data() == "Ready"
    # Options came from the settings.
    assert s.calls[0][1].model == harness.app.config.settings.model


def test_cancel_from_the_queue(harness: Harness, qtbot: Any) -> None:
    s = harness.strategy
    s.hold = True
    mid = harness.add_meeting("Long meeting")
    w = harness.window
    w.open_meeting(mid)
    w.process_meeting(mid)
    qtbot.waitUntil(lambda: s.reached_hold.is_set(), timeout=5000)
    row = w.queue_widget.row(mid)
    assert row is not None and row.cancel_button.isVisibleTo(row)
    with qtbot.wait_signal(harness.app.queue.item_cancelled, timeout=5000) as blocker:
        qtbot.mouseClick(row.cancel_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [mid]
    qtbot.waitUntil(lambda: harness.app.queue.current is None, timeout=5000)
    assert harness.app.queue.items[0].state is ItemState.CANCELLED
    assert row.stage.text() == "Cancelled"
    m = harness.library.get_meeting(mid)
    assert m.status is MeetingStatus.RECORDED  # back to "not transcribed", not "failed"
    assert error_boxes() == []  # a cancel is not an error
    assert "not been transcribed" in w.meeting_view.banner_label.text()


def test_cancel_waiting_item_and_queue_order(harness: Harness, qtbot: Any) -> None:
    s = harness.strategy
    s.hold = True
    a = harness.add_meeting("First")
    b = harness.add_meeting("Second")
    w = harness.window
    w.process_meeting(a)
    w.process_meeting(b)
    w.process_meeting(b)  # not queued twice
    assert [it.meeting_id for it in harness.app.queue.items] == [a, b]
    qtbot.waitUntil(lambda: s.reached_hold.is_set(), timeout=5000)
    assert harness.app.queue.items[1].state is ItemState.QUEUED
    assert "1 waiting" in w.work_label.text()
    harness.app.queue.cancel(b)
    assert harness.app.queue.items[1].state is ItemState.CANCELLED
    s.release.set()
    qtbot.waitUntil(lambda: not harness.app.queue.is_busy(), timeout=5000)
    assert len(s.calls) == 1  # the cancelled one never ran
    assert harness.library.get_meeting(a).status is MeetingStatus.PROCESSED
    assert harness.library.get_meeting(b).status is MeetingStatus.RECORDED


def test_failing_strategy_shows_what_to_do(harness: Harness, qtbot: Any) -> None:
    s = harness.strategy
    s.error = ModelNotFoundError(
        "The speech model 'small' is not installed. Install it with: pip install nojoin[ml]"
    )
    mid = harness.add_meeting("Board meeting")
    w = harness.window
    w.open_meeting(mid)
    w.process_meeting(mid)
    qtbot.waitUntil(lambda: len(error_boxes()) == 1, timeout=5000)
    box = error_boxes()[0]
    assert "Board meeting" in box.text()
    assert "pip install nojoin[ml]" in box.informativeText()
    m = harness.library.get_meeting(mid)
    assert m.status is MeetingStatus.ERROR and "not installed" in (m.error or "")
    view = w.meeting_view
    qtbot.waitUntil(lambda: view.banner_button.text() == "Try again", timeout=3000)
    assert "not installed" in view.banner_label.text()
    assert w.library_panel.model.index(0, 3).data() == "Failed"
    box.close()
    # Retry works once the problem is fixed.
    s.error = None
    qtbot.mouseClick(view.banner_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.model.rowCount() == 4, timeout=5000)
    assert harness.library.get_meeting(mid).status is MeetingStatus.PROCESSED


def test_unexpected_error_is_shown_with_details(harness: Harness, qtbot: Any) -> None:
    harness.strategy.error = RuntimeError("engine exploded")
    mid = harness.add_meeting("Oops")
    harness.window.process_meeting(mid)
    qtbot.waitUntil(lambda: len(error_boxes()) == 1, timeout=5000)
    box = error_boxes()[0]
    assert "engine exploded" in box.informativeText()
    assert "log" in box.informativeText().lower()
    box.close()


def test_missing_audio_is_refused_before_queueing(
    harness: Harness, qtbot: Any, tmp_path: Any
) -> None:
    m = harness.library.add_meeting("Lost", audio_path=tmp_path / "gone.wav")
    harness.window.process_meeting(m.id)
    assert harness.app.queue.items == []
    box = error_boxes()[0]
    assert "Move the file back" in box.informativeText()
    box.close()


def test_reprocess_with_other_settings(harness: Harness, qtbot: Any) -> None:
    mid = harness.add_meeting("Planning", processed=True)
    harness.library.rename_speaker(mid, "SPEAKER_00", "Alice")
    w = harness.window
    w.open_meeting(mid)
    dialog = w.reprocess_dialog(mid)
    assert dialog is not None
    dialog.model.set_value("base")
    dialog.max_speakers.setValue(2)
    dialog.min_speakers.setValue(2)
    dialog._accept()
    qtbot.waitUntil(lambda: len(harness.strategy.calls) == 1, timeout=5000)
    opts = harness.strategy.calls[0][1]
    assert opts.model == "base" and opts.num_speakers == 2
    qtbot.waitUntil(lambda: not harness.app.queue.is_busy(), timeout=5000)
    assert harness.library.speaker_names(mid)["SPEAKER_00"] == "Alice"  # names survive
    assert harness.app.config.settings.model == "tiny.en"  # a one-off, settings unchanged


def test_interrupted_meetings_are_offered_for_retry(
    harness: Harness, boxes: Boxes, qtbot: Any
) -> None:
    mid = harness.add_meeting("Crashed")
    harness.library.set_status(mid, MeetingStatus.PROCESSING)  # as a crash leaves it
    boxes.answer = QMessageBox.StandardButton.Yes
    harness.window.offer_retry_interrupted()
    assert "Crashed" in boxes.questions[0]
    qtbot.waitUntil(
        lambda: harness.library.get_meeting(mid).status is MeetingStatus.PROCESSED, timeout=5000
    )


def test_interrupted_meetings_declined_become_retryable(harness: Harness, boxes: Boxes) -> None:
    mid = harness.add_meeting("Crashed")
    harness.library.set_status(mid, MeetingStatus.PROCESSING)
    boxes.answer = QMessageBox.StandardButton.No
    harness.window.offer_retry_interrupted()
    m = harness.library.get_meeting(mid)
    assert m.status is MeetingStatus.ERROR and "interrupted" in (m.error or "")
    assert harness.app.queue.items == []
