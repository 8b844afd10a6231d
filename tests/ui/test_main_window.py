"""The main window itself: what it takes by drag and drop, and its File and Help menus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QFileDialog, QMenu, QMessageBox
from ui_support import Boxes, Harness, error_boxes, write_wav

from nojoin import __version__, paths
from nojoin.export import FORMATS
from nojoin.ui.settings_dialog import SettingsDialog


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


def top_menu(harness: Harness, title: str) -> QMenu:
    for action in harness.window.menuBar().actions():
        if action.text() == title:
            menu = action.menu()
            assert isinstance(menu, QMenu)
            return menu
    raise AssertionError(f"no {title} menu")


def entry(menu: QMenu, text: str) -> QAction:
    (action,) = [a for a in menu.actions() if a.text() == text]
    return action


def entries(menu: QMenu) -> list[str]:
    return [a.text() for a in menu.actions() if not a.isSeparator()]


def test_file_menu_entries_and_shortcuts(harness: Harness) -> None:
    file_menu = top_menu(harness, "&File")
    assert entries(file_menu) == [
        "&Import Audio…",
        "&Record",
        "&Export Transcript",
        "&Settings…",
        "&Quit",
    ]
    shortcuts = {a.text(): a.shortcut().toString() for a in file_menu.actions()}
    assert shortcuts["&Import Audio…"] == "Ctrl+O"
    assert shortcuts["&Record"] == "Ctrl+R"
    assert shortcuts["&Settings…"] == "Ctrl+,"
    assert shortcuts["&Quit"] == "Ctrl+Q"
    export_menu = entry(file_menu, "&Export Transcript").menu()
    assert isinstance(export_menu, QMenu)
    assert entries(export_menu) == [f"{fmt.upper()}…" for fmt in FORMATS]


def test_file_import_opens_the_file_dialog_and_imports(
    harness: Harness, qtbot: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    harness.app.config.update(auto_process=False)
    audio = write_wav(tmp_path / "weekly sync.wav", seconds=2.0)
    asked: list[str] = []

    def choose(parent: Any, caption: str, folder: str, filters: str) -> tuple[list[str], str]:
        asked.append(filters)
        return [str(audio)], ""

    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(choose))
    entry(top_menu(harness, "&File"), "&Import Audio…").trigger()
    assert asked and "*.mp4" in asked[0] and "All files (*)" in asked[0]
    qtbot.waitUntil(lambda: len(harness.library.list_meetings()) == 1, timeout=10_000)
    assert harness.library.list_meetings()[0].title == "weekly sync"


def test_export_is_offered_only_with_a_transcript_and_writes_it(
    harness: Harness, qtbot: Any, boxes: Boxes, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    export_action = entry(top_menu(harness, "&File"), "&Export Transcript")
    export_menu = export_action.menu()
    assert isinstance(export_menu, QMenu)

    def offered() -> bool:
        return export_action.isEnabled() and all(a.isEnabled() for a in export_menu.actions())

    assert not export_action.isEnabled()  # no meeting selected
    assert not any(a.isEnabled() for a in export_menu.actions())
    bare = harness.add_meeting("Not transcribed yet")
    harness.window.open_meeting(bare)
    assert harness.window.meeting_view.meeting_id == bare and not export_action.isEnabled()

    mid = harness.add_meeting("Planning", processed=True)
    harness.window.open_meeting(mid)
    assert offered()
    target = tmp_path / "planning.json"
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(target), "JSON (*.json)"))
    )
    entry(export_menu, "JSON…").trigger()
    data = json.loads(target.read_text(encoding="utf-8"))
    assert data["title"] == "Planning" and len(data["segments"]) == 4

    # Deleted: nothing shown any more, nothing to export.
    with qtbot.wait_signal(harness.window.meeting_view.deleted):
        harness.window.meeting_view.confirm_delete()
    assert harness.window.meeting_view.meeting_id != mid
    assert not export_action.isEnabled() and not harness.window.meeting_view.can_export()


def test_file_record_settings_and_quit(harness: Harness, qtbot: Any, boxes: Boxes) -> None:
    harness.app.config.update(auto_process=False)
    window = harness.window
    window.show()
    file_menu = top_menu(harness, "&File")

    entry(file_menu, "&Settings…").trigger()
    (dialog,) = [
        w
        for w in QApplication.topLevelWidgets()
        if isinstance(w, SettingsDialog) and w.parent() is window and w.isVisible()
    ]
    assert dialog.isModal()
    dialog.reject()

    record = entry(file_menu, "&Record")
    record.trigger()
    qtbot.waitUntil(lambda: harness.app.recorder.state == "recording", timeout=5000)
    assert not record.isEnabled()  # one recording at a time
    harness.app.recorder.stop()
    qtbot.waitUntil(lambda: harness.app.recorder.state == "idle", timeout=5000)
    assert record.isEnabled() and len(harness.library.list_meetings()) == 1

    entry(file_menu, "&Quit").trigger()
    assert not window.isVisible()
    assert boxes.questions == []  # nothing running: no question


def test_help_about_shows_the_version(harness: Harness, qtbot: Any) -> None:
    help_menu = top_menu(harness, "&Help")
    assert entries(help_menu) == ["&About Nojoin", "Open &Logs Folder"]

    def about_boxes() -> list[QMessageBox]:
        return [
            w
            for w in QApplication.topLevelWidgets()
            if isinstance(w, QMessageBox) and w.windowTitle() == "About Nojoin" and w.isVisible()
        ]

    # Were the box to block (exec), this closes it: the test then fails instead of hanging.
    guard = QTimer()
    guard.setSingleShot(True)
    guard.timeout.connect(lambda: [b.close() for b in about_boxes()])
    guard.start(3000)
    try:
        entry(help_menu, "&About Nojoin").trigger()
        (box,) = about_boxes()
    finally:
        guard.stop()
    assert f"Nojoin {__version__}" in box.text()
    assert str(paths.data_dir()) in box.text()
    box.close()


def test_help_opens_the_logs_folder(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, nojoin_dirs: Path
) -> None:
    opened: list[QUrl] = []
    works = True

    def open_url(url: QUrl) -> bool:
        opened.append(url)
        return works

    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(open_url))
    logs = entry(top_menu(harness, "&Help"), "Open &Logs Folder")
    logs.trigger()
    (url,) = opened
    assert url.isLocalFile() and Path(url.toLocalFile()) == nojoin_dirs / "data" / "logs"
    assert Path(url.toLocalFile()).is_dir()  # made if needed, so the file manager can open it
    assert error_boxes() == []

    works = False  # no file manager: say where the logs are instead
    logs.trigger()
    (box,) = error_boxes()
    assert str(nojoin_dirs / "data" / "logs") in box.informativeText()
    box.close()
