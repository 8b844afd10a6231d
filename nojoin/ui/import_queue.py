"""Files the user imports (from the Import dialog or dropped on the window), checked and copied
into the library one at a time off the UI thread (on the app's `TaskRunner`, lane "import")."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QMimeData, QMimeDatabase, QObject, Signal, Slot

from nojoin.models import Meeting
from nojoin.processing.contract import CancelToken, Progress, ProgressCallback
from nojoin.ui.tasks import Task, TaskRunner

Importer = Callable[[Path, ProgressCallback, CancelToken], Meeting]
"""Checks and copies one file into the library and returns its new meeting (runs off the UI
thread)."""

LANE = "import"

# The usual suspects, offered by the Import dialog; any other file FFmpeg reads can still be
# chosen there ("All files"), or dropped when its type is audio or video (`looks_importable`).
AUDIO_EXTENSIONS = tuple("wav mp3 m4a aac flac ogg opus wma webm mp4 mkv mov avi".split())
AUDIO_FILTER = (
    "Audio and video (" + " ".join(f"*.{e}" for e in AUDIO_EXTENSIONS) + ");;All files (*)"
)


def looks_importable(path: Path) -> bool:
    """Whether a dropped file looks like audio or video: by its name, since the importer decodes
    the whole file anyway (and says clearly when it is not audio after all)."""
    if not path.is_file():
        return False
    if path.suffix.lower().lstrip(".") in AUDIO_EXTENSIONS:
        return True
    mime = QMimeDatabase().mimeTypeForFile(str(path), QMimeDatabase.MatchMode.MatchExtension)
    return mime.name().startswith(("audio/", "video/"))


def dropped_files(mime: QMimeData) -> tuple[list[Path], list[Path]]:
    """The local files of a drag that look importable, and the other local paths (folders,
    documents...). Non-file URLs (web links) are in neither."""
    local = (
        [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []
    )
    files = [p for p in local if looks_importable(p)]
    return files, [p for p in local if p not in files]


class ImportQueue(QObject):
    """Imports files one at a time on a worker thread.

    Signals:
        progress(str, float): file name and fraction.
        imported(object): the new Meeting.
        failed(str, BaseException): file name and the error.
        idle(): nothing left to import.
    """

    progress = Signal(str, float)
    imported = Signal(object)
    failed = Signal(str, object)
    idle = Signal()

    def __init__(
        self, importer: Importer, tasks: TaskRunner, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._importer = importer
        self._tasks = tasks
        self._pending: list[Path] = []
        self._current: Path | None = None
        self._task: Task | None = None

    def add(self, files: Sequence[Path]) -> None:
        self._pending.extend(files)
        self._next()

    def is_busy(self) -> bool:
        return self._current is not None or bool(self._pending)

    def cancel_all(self) -> None:
        self._pending.clear()
        if self._task is not None:
            self._task.cancel()

    def _next(self) -> None:
        if self._current is not None:
            return
        if not self._pending:
            self.idle.emit()
            return
        path = self._pending.pop(0)
        self._current = path
        importer = self._importer

        def job(progress: ProgressCallback, cancel: CancelToken) -> object:
            return importer(path, progress, cancel)

        task = self._tasks.run(f"import {path.name}", job, lane=LANE)
        task.progress.connect(lambda p: self._on_progress(path, p))
        task.completed.connect(self.imported.emit)
        task.failed.connect(self._on_failed)
        task.finished.connect(self._on_finished)
        self._task = task

    def _on_progress(self, path: Path, progress: Progress) -> None:
        self.progress.emit(path.name, float(progress.fraction))

    @Slot(object)
    def _on_failed(self, exc: BaseException) -> None:
        name = self._current.name if self._current else "file"
        self.failed.emit(name, exc)

    @Slot()
    def _on_finished(self) -> None:
        self._current = None
        self._task = None
        self._next()
