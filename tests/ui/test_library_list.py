"""The meeting list: search (FTS), tag filter, selection opens the meeting."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from ui_support import Harness


def titles(h: Harness) -> list[str]:
    return [m.title for m in h.window.library_panel.model.meetings()]


def test_list_shows_title_date_duration_status_speakers(harness: Harness) -> None:
    mid = harness.add_meeting("Weekly planning", processed=True)
    harness.library.rename_speaker(mid, "SPEAKER_00", "Alice")
    harness.window.library_panel.refresh()
    model = harness.window.library_panel.model
    row = [model.index(0, c).data() for c in range(model.columnCount())]
    assert row[0] == "Weekly planning"
    assert row[1].startswith("Today")
    assert row[2] == "12 s"
    assert row[3] == "Ready"
    assert row[4] == "Alice, SPEAKER_01"


def test_search_filters_the_list(harness: Harness, qtbot: Any) -> None:
    harness.add_meeting("Budget review")
    harness.add_meeting("Website launch", processed=True)  # transcript mentions "website"
    harness.add_meeting("Hiring sync")
    panel = harness.window.library_panel
    assert len(titles(harness)) == 3

    qtbot.keyClicks(panel.search_box, "websi")  # prefix match on the transcript
    qtbot.waitUntil(lambda: titles(harness) == ["Website launch"], timeout=3000)
    assert "1 meeting" in panel.count_label.text()

    panel.search_box.clear()
    qtbot.keyClicks(panel.search_box, "budget")
    qtbot.waitUntil(lambda: titles(harness) == ["Budget review"], timeout=3000)

    panel.search_box.clear()
    qtbot.keyClicks(panel.search_box, "nothing like this")
    qtbot.waitUntil(lambda: titles(harness) == [], timeout=3000)

    panel.search_box.clear()
    qtbot.waitUntil(lambda: len(titles(harness)) == 3, timeout=3000)


def test_search_with_odd_characters_does_not_fail(harness: Harness, qtbot: Any) -> None:
    harness.add_meeting('Q&A: "what\'s next"')
    panel = harness.window.library_panel
    qtbot.keyClicks(panel.search_box, "\"what's (next")
    qtbot.keyClick(panel.search_box, Qt.Key.Key_Return)
    assert titles(harness) == ['Q&A: "what\'s next"']


def test_tag_filter(harness: Harness, qtbot: Any) -> None:
    harness.add_meeting("Standup Monday", tags=("team",))
    harness.add_meeting("Customer call", tags=("customers",))
    harness.add_meeting("Standup Tuesday", tags=("team",))
    panel = harness.window.library_panel
    items = [panel.tag_filter.itemText(i) for i in range(panel.tag_filter.count())]
    assert items == ["All meetings", "customers", "team"]
    panel.tag_filter.setCurrentText("team")
    assert sorted(titles(harness)) == ["Standup Monday", "Standup Tuesday"]
    # Search within the tag.
    qtbot.keyClicks(panel.search_box, "tuesday")
    qtbot.waitUntil(lambda: titles(harness) == ["Standup Tuesday"], timeout=3000)
    panel.tag_filter.setCurrentIndex(0)
    assert titles(harness) == ["Standup Tuesday"]


def test_selecting_a_meeting_opens_it(harness: Harness) -> None:
    mid = harness.add_meeting("Weekly planning", processed=True)
    w = harness.window
    assert w.detail.currentIndex() == 0  # placeholder
    w.library_panel.table.selectRow(0)
    assert w.detail.currentIndex() == 1
    assert w.meeting_view.meeting_id == mid
    assert w.meeting_view.title_edit.text() == "Weekly planning"
    assert w.meeting_view.model.rowCount() == 4
