"""The meeting view: speaker edits, text edits, playback sync, export, delete."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QHeaderView, QInputDialog, QLineEdit
from ui_support import Boxes, Harness

from nojoin.ui.transcript_model import SPEAKER, TEXT


def open_processed(h: Harness, title: str = "Planning") -> int:
    mid = h.add_meeting(title, processed=True)
    h.window.open_meeting(mid)
    assert h.window.meeting_view.meeting_id == mid
    return mid


def shown_speakers(h: Harness) -> list[str]:
    m = h.window.meeting_view.model
    return [m.index(r, SPEAKER).data() for r in range(m.rowCount())]


def list_labels(h: Harness) -> list[str]:
    lw = h.window.meeting_view.speaker_list
    return [lw.item(i).text() for i in range(lw.count())]


def test_transcript_shows_speakers_and_times(harness: Harness) -> None:
    open_processed(harness)
    m = harness.window.meeting_view.model
    assert m.rowCount() == 4
    assert [m.index(r, 0).data() for r in range(4)] == ["00:00", "00:03", "00:06", "00:09"]
    assert shown_speakers(harness) == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_00", "SPEAKER_01"]
    assert m.index(0, TEXT).data().startswith("Good morning")
    assert list_labels(harness) == ["SPEAKER_00", "SPEAKER_01"]


def test_rename_speaker_updates_view_list_and_library(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, qtbot: Any
) -> None:
    mid = open_processed(harness)
    view = harness.window.meeting_view
    view.speaker_list.setCurrentRow(1)
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("Bob", True)))
    with qtbot.wait_signal(view.changed) as blocker:
        qtbot.mouseClick(view.rename_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [mid]
    assert shown_speakers(harness) == ["SPEAKER_00", "Bob", "SPEAKER_00", "Bob"]
    assert harness.library.speaker_names(mid)["SPEAKER_01"] == "Bob"
    assert "Bob (SPEAKER_01)" in " ".join(list_labels(harness)).replace("  ", " ")
    # The meeting list shows the new name too.
    assert "Bob" in harness.window.library_panel.model.index(0, 4).data()


def test_merge_speakers(harness: Harness, monkeypatch: pytest.MonkeyPatch, qtbot: Any) -> None:
    mid = open_processed(harness)
    view = harness.window.meeting_view
    view.speaker_list.setCurrentRow(1)  # SPEAKER_01 ...
    monkeypatch.setattr(
        QInputDialog, "getItem", staticmethod(lambda *a, **k: ("SPEAKER_00", True))
    )  # ... into SPEAKER_00
    qtbot.mouseClick(view.merge_button, Qt.MouseButton.LeftButton)
    assert shown_speakers(harness) == ["SPEAKER_00"] * 4
    assert list_labels(harness) == ["SPEAKER_00"]
    assert [s.label for s in harness.library.speakers(mid)] == ["SPEAKER_00"]
    assert not view.merge_button.isEnabled()  # nothing left to merge with


def test_link_speaker_to_person(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, qtbot: Any
) -> None:
    mid = open_processed(harness)
    view = harness.window.meeting_view
    view.speaker_list.setCurrentRow(0)
    monkeypatch.setattr(
        QInputDialog, "getItem", staticmethod(lambda *a, **k: ("Alice Smith", True))
    )
    qtbot.mouseClick(view.link_button, Qt.MouseButton.LeftButton)
    person = [p for p in harness.library.people() if p.name == "Alice Smith"]
    assert person
    sp = {s.label: s for s in harness.library.speakers(mid)}["SPEAKER_00"]
    assert sp.person_id == person[0].id
    assert shown_speakers(harness)[0] == "Alice Smith"
    assert [m.id for m in harness.library.meetings_with_person(person[0].id)] == [mid]


def test_reassign_one_segment(harness: Harness, qtbot: Any) -> None:
    mid = open_processed(harness)
    view = harness.window.meeting_view
    seg = view.model.segment(2)
    assert seg is not None and seg.id is not None and seg.speaker == "SPEAKER_00"
    view.reassign_segment(seg.id, "SPEAKER_01")
    assert shown_speakers(harness) == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_01", "SPEAKER_01"]
    assert [s.speaker for s in harness.library.segments(mid)][2] == "SPEAKER_01"


def test_reassign_from_context_menu_to_a_new_speaker(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, qtbot: Any
) -> None:
    mid = open_processed(harness)
    view = harness.window.meeting_view
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("Carol", True)))
    seg = view.model.segment(3)
    assert seg is not None and seg.id is not None
    view._reassign_new(seg.id)  # what "Assign to speaker → New speaker…" runs
    assert shown_speakers(harness)[3] == "Carol"
    assert harness.library.speaker_names(mid)["SPEAKER_02"] == "Carol"


def test_edit_segment_text(harness: Harness, qtbot: Any) -> None:
    mid = open_processed(harness)
    harness.window.show()
    qtbot.waitExposed(harness.window)
    view = harness.window.meeting_view
    idx = view.model.index(1, TEXT)
    view.table.setCurrentIndex(idx)
    view.table.edit(idx)
    editor = view.table.viewport().findChild(QLineEdit)
    assert editor is not None
    editor.selectAll()
    qtbot.keyClicks(editor, "Thanks. Let us start with the web site.")
    qtbot.keyClick(editor, Qt.Key.Key_Return)  # the delegate commits on the next loop pass
    qtbot.waitUntil(
        lambda: view.model.index(1, TEXT).data() == "Thanks. Let us start with the web site.",
        timeout=3000,
    )
    assert harness.library.segments(mid)[1].text == "Thanks. Let us start with the web site."
    # Search finds the edited text.
    assert harness.library.search_meetings("web site") == [mid]


def test_title_and_tags_edit(harness: Harness, qtbot: Any) -> None:
    mid = open_processed(harness)
    view = harness.window.meeting_view
    view.title_edit.setText("Planning (Q3)")
    view.title_edit.editingFinished.emit()
    assert harness.library.get_meeting(mid).title == "Planning (Q3)"
    view.tags_edit.setText("planning, q3")
    view.tags_edit.editingFinished.emit()
    assert harness.library.get_meeting(mid).tags == ["planning", "q3"]
    tags = harness.window.library_panel.tag_filter
    assert [tags.itemText(i) for i in range(tags.count())] == ["All meetings", "planning", "q3"]


def test_playback_position_highlights_the_right_segment(harness: Harness, qtbot: Any) -> None:
    open_processed(harness)
    view = harness.window.meeting_view
    bar = view.player_bar
    qtbot.waitUntil(lambda: bar.play_button.isEnabled(), timeout=3000)
    for seconds, row in ((7.0, 2), (0.6, 0), (10.0, 3), (4.0, 1)):
        with qtbot.wait_signal(view.model.current_changed, timeout=5000) as blocker:
            bar.seek(seconds)
        assert blocker.args == [row]
        assert view.model.current_row == row
        # The highlighted row is drawn differently from the others.
        assert view.model.index(row, TEXT).data(Qt.ItemDataRole.BackgroundRole) is not None
        other = (row + 1) % 4
        assert view.model.index(other, TEXT).data(Qt.ItemDataRole.BackgroundRole) is None
    # While playing, the highlight moves on by itself.
    bar.seek(8.8)
    qtbot.waitUntil(lambda: view.model.current_row == 2, timeout=5000)
    bar.toggle()
    qtbot.waitUntil(lambda: view.model.current_row == 3, timeout=8000)
    assert bar.is_playing()
    bar.toggle()
    qtbot.waitUntil(lambda: not bar.is_playing(), timeout=3000)


def test_clicking_a_segment_seeks(harness: Harness, qtbot: Any) -> None:
    open_processed(harness)
    view = harness.window.meeting_view
    harness.window.show()
    qtbot.waitExposed(harness.window)
    qtbot.waitUntil(lambda: view.player_bar.play_button.isEnabled(), timeout=3000)
    rect = view.table.visualRect(view.model.index(2, 0))
    with qtbot.wait_signal(view.player_bar.position_changed, timeout=5000) as blocker:
        qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args is not None and abs(blocker.args[0] - 6.5) < 0.05
    qtbot.waitUntil(lambda: view.model.current_row == 2, timeout=3000)


def test_missing_audio_disables_playback(harness: Harness, tmp_path: Path) -> None:
    m = harness.library.add_meeting("Gone", audio_path=tmp_path / "nope.wav")
    harness.window.library_panel.refresh()
    harness.window.open_meeting(m.id)
    bar = harness.window.meeting_view.player_bar
    assert not bar.play_button.isEnabled()
    assert "missing" in bar.play_button.toolTip()


def test_export_writes_the_chosen_format(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    mid = open_processed(harness)
    harness.library.rename_speaker(mid, "SPEAKER_00", "Alice")
    target = tmp_path / "out" / "planning"
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(target), "JSON (*.json)"))
    )
    harness.window.meeting_view.export_dialog("txt")
    written = target.with_suffix(".json")
    data = json.loads(written.read_text())
    assert data["title"] == "Planning"
    assert len(data["segments"]) == 4
    assert data["speaker_names"]["SPEAKER_00"] == "Alice"
    srt = harness.window.meeting_view.export_to("srt", tmp_path / "p.srt")
    assert srt is not None and "Alice: Good morning" in srt.read_text()


def test_delete_asks_first(harness: Harness, boxes: Boxes, qtbot: Any) -> None:
    from PySide6.QtWidgets import QMessageBox

    mid = open_processed(harness, "Throwaway")
    view = harness.window.meeting_view
    boxes.answer = QMessageBox.StandardButton.Cancel
    qtbot.mouseClick(view.delete_button, Qt.MouseButton.LeftButton)
    assert "Throwaway" in boxes.questions[0]
    assert harness.library.get_meeting(mid).title == "Throwaway"  # still there

    boxes.answer = QMessageBox.StandardButton.Yes
    with qtbot.wait_signal(view.deleted):
        qtbot.mouseClick(view.delete_button, Qt.MouseButton.LeftButton)
    assert harness.library.list_meetings() == []
    assert harness.window.library_panel.model.rowCount() == 0
    assert harness.window.detail.currentIndex() == 0
    assert harness.wav.exists()  # audio outside Nojoin's folder is never deleted


def test_segment_menu_assigns_to_another_speaker(harness: Harness) -> None:
    mid = open_processed(harness)
    view = harness.window.meeting_view
    menu = view.segment_menu(0)
    assert menu is not None
    assign = next(a for a in menu.actions() if a.text() == "Assign to speaker").menu()
    actions = {a.text(): a for a in assign.actions() if a.text()}
    assert list(actions) == ["SPEAKER_00", "SPEAKER_01", "New speaker…"]
    assert not actions["SPEAKER_00"].isEnabled()  # already this segment's speaker
    actions["SPEAKER_01"].trigger()
    assert shown_speakers(harness)[0] == "SPEAKER_01"
    assert harness.library.segments(mid)[0].speaker == "SPEAKER_01"


def test_long_transcript_rows_are_sized_without_blocking_the_window(
    harness: Harness, qtbot: Any
) -> None:
    from nojoin.models import Segment, Transcript

    words = "and then we talked about the budget for the next quarter once more " * 6
    segs = [
        Segment(i * 2.0, i * 2.0 + 1.5, words if i % 2 else "Yes.", f"SPEAKER_0{i % 2}")
        for i in range(600)
    ]
    m = harness.library.add_meeting("Long", audio_path=harness.wav, duration=1200.0)
    harness.library.save_transcript(m.id, Transcript(segs, "en", 1200.0))
    harness.window.library_panel.refresh()
    view = harness.window.meeting_view
    view.table.resize(500, 400)
    harness.window.open_meeting(m.id)
    # Loading returns before the 600 rows are measured; the event loop sizes them in slices.
    assert view.model.rowCount() == 600
    assert not view.rows_sized()
    qtbot.waitUntil(view.rows_sized, timeout=20_000)
    short, long_ = view.table.rowHeight(598), view.table.rowHeight(599)
    assert long_ > short * 2, (short, long_)
    # A narrower text column re-measures: wrapped rows get taller still.
    view.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Interactive)
    view.table.setColumnWidth(2, view.table.columnWidth(2) // 2)
    qtbot.waitUntil(view.rows_sized, timeout=20_000)
    assert view.table.rowHeight(599) > long_
    # The fixed-mode time and speaker columns were fitted to their widest entries.
    for col in (0, 1):
        widest = max(
            view.table.sizeHintForIndex(view.model.index(r, col)).width() for r in (0, 1, 599)
        )
        assert view.table.columnWidth(col) >= widest
