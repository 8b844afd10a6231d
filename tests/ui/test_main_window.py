"""The main window itself: what it takes by drag and drop, and its File and Help menus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication
from ui_support import Harness, error_boxes, write_wav


def file_urls(*paths: Path) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


def drag_enter(harness: Harness, mime: QMimeData) -> QDragEnterEvent:
    """Send a real drag-enter event, as Qt does when a drag comes over the window."""
    event = QDragEnterEvent(
        QPoint(60, 60),
        Qt.DropAction.CopyAction | Qt.DropAction.MoveAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(harness.window, event)
    return event


def drop(harness: Harness, mime: QMimeData) -> QDropEvent:
    """A drag that enters the window, then is dropped on it (Qt delivers a drop to the widget
    that took the drag-enter, so a drop alone would go to another test's window)."""
    drag_enter(harness, mime)
    event = QDropEvent(
        QPointF(60, 60),
        Qt.DropAction.CopyAction | Qt.DropAction.MoveAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(harness.window, event)
    return event


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A few things a user might drag onto the window."""
    folder = tmp_path / "drops"
    (folder / "a folder").mkdir(parents=True)
    made = {
        "audio": write_wav(folder / "client_call.wav", seconds=2.0),
        # Only the name matters to a drag: the import decodes the file itself.
        "video": folder / "screen recording.mp4",
        "other audio": folder / "voice memo.amr",  # not in the Import dialog's list
        "document": folder / "notes.txt",
        "folder": folder / "a folder",
        "missing": folder / "gone.wav",
    }
    made["video"].write_bytes(b"\x00" * 64)
    made["other audio"].write_bytes(b"#!AMR\n")
    made["document"].write_text("minutes", encoding="utf-8")
    return made


@pytest.mark.parametrize(
    "names",
    [["audio"], ["video"], ["other audio"], ["document", "audio"], ["folder", "video"]],
)
def test_drag_of_audio_or_video_files_is_accepted(
    harness: Harness, files: dict[str, Path], names: list[str]
) -> None:
    mime = file_urls(*(files[n] for n in names))
    event = drag_enter(harness, mime)
    assert event.isAccepted()
    assert event.dropAction() == Qt.DropAction.CopyAction


@pytest.mark.parametrize("names", [["document"], ["folder"], ["missing"], ["document", "folder"]])
def test_drag_of_other_files_is_refused(
    harness: Harness, files: dict[str, Path], names: list[str]
) -> None:
    mime = file_urls(*(files[n] for n in names))
    assert not drag_enter(harness, mime).isAccepted()


def test_drag_of_text_or_web_links_is_refused(harness: Harness) -> None:
    text = QMimeData()
    text.setText("/home/me/meeting.wav")  # a path as text is not a file
    assert not drag_enter(harness, text).isAccepted()
    link = QMimeData()
    link.setUrls([QUrl("https://example.com/meeting.mp3")])
    assert not drag_enter(harness, link).isAccepted()


def test_drop_imports_the_audio_and_names_what_it_skipped(
    harness: Harness, qtbot: Any, files: dict[str, Path]
) -> None:
    harness.app.config.update(auto_process=False)
    mime = file_urls(
        files["document"], files["audio"], files["folder"]
    )  # lives as long as the event
    assert drop(harness, mime).isAccepted()
    qtbot.waitUntil(lambda: len(harness.library.list_meetings()) == 1, timeout=10_000)
    (meeting,) = harness.library.list_meetings()
    assert meeting.title == "client call"
    assert meeting.duration == pytest.approx(2.0, abs=0.05)
    qtbot.waitUntil(lambda: harness.window.meeting_view.meeting_id == meeting.id, timeout=3000)
    message = harness.window.statusBar().currentMessage()
    assert "Not imported" in message and "notes.txt, a folder" in message
    assert error_boxes() == []

    # Nothing importable: the drop is refused and nothing happens.
    mime = file_urls(files["document"])
    assert not drop(harness, mime).isAccepted()
    assert not harness.window.imports.is_busy()
    assert len(harness.library.list_meetings()) == 1
