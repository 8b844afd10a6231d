"""The Backups dialog: list cloud backups (date, device, size), back up now (optionally with
audio), restore one. All transfers run on a worker thread with progress and Cancel."""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nojoin.cloud.backup_service import BackupEntry, RestoreReport, human_size
from nojoin.cloud.manager import CloudManager
from nojoin.errors import CancelledError, NojoinError
from nojoin.processing.contract import Progress
from nojoin.ui.cloud.common import TABLE_STYLE, BusyStrip, MessageLabel, heading
from nojoin.ui.tasks import Task

STAGES = {
    "snapshot": "Copying the library…",
    "pack": "Compressing…",
    "upload": "Uploading",
    "download": "Downloading",
    "verify": "Checking the backup…",
    "restore": "Restoring…",
}


def when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone().strftime("%d %b %Y, %H:%M")


class BackupsDialog(QDialog):
    def __init__(self, manager: CloudManager, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.manager = manager
        self.entries: list[BackupEntry] = []
        self.task: Task | None = None
        self.list_task: Task | None = None
        self.last_report: RestoreReport | None = None
        self.setWindowTitle("Backups")
        self.resize(680, 460)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(22, 20, 22, 18)
        layout.setSpacing(12)
        layout.addWidget(
            heading(
                "Cloud backups of your meeting library",
                "Restoring replaces the library on this computer with the backup; the current "
                "library is kept as a copy first, and a damaged backup is never restored.",
            )
        )

        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Date", "Computer", "Size", "Contents"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setStyleSheet(TABLE_STYLE)
        self.table.verticalHeader().setDefaultSectionSize(30)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2, 3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.doubleClicked.connect(lambda _index: self.restore_selected())

        self.empty = QLabel("No backups yet.\nClick “Back up now” to make the first one.")
        self.empty.setObjectName("placeholder")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.table)
        self.stack.addWidget(self.empty)
        layout.addWidget(self.stack, 1)

        self.message = MessageLabel()
        layout.addWidget(self.message)
        progress_row = QHBoxLayout()
        self.busy = BusyStrip()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.cancel)
        progress_row.addWidget(self.busy, 1)
        progress_row.addWidget(self.cancel_button)
        layout.addLayout(progress_row)

        row = QHBoxLayout()
        self.backup_button = QPushButton("Back up now")
        self.backup_button.setObjectName("primaryButton")
        self.backup_button.clicked.connect(self.back_up)
        self.include_audio = QCheckBox("Include audio files")
        self.include_audio.setToolTip(
            "Also back up the recordings. Much larger and slower; the transcripts are "
            "always included."
        )
        self.restore_button = QPushButton("Restore…")
        self.restore_button.clicked.connect(self.restore_selected)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.close)
        row.addWidget(self.backup_button)
        row.addWidget(self.include_audio)
        row.addStretch(1)
        row.addWidget(self.refresh_button)
        row.addWidget(self.restore_button)
        row.addWidget(self.close_button)
        layout.addLayout(row)
        self._update_buttons()

    # ------------------------------------------------------------------ state

    @property
    def is_busy(self) -> bool:
        return self.task is not None

    def _update_buttons(self) -> None:
        busy = self.is_busy
        self.backup_button.setEnabled(not busy)
        self.include_audio.setEnabled(not busy)
        self.refresh_button.setEnabled(not busy and self.list_task is None)
        self.restore_button.setEnabled(not busy and self.selected() is not None)
        self.cancel_button.setVisible(busy)

    def selected(self) -> BackupEntry | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        row = rows[0].row()
        return self.entries[row] if 0 <= row < len(self.entries) else None

    # ------------------------------------------------------------------ list

    def refresh(self) -> None:
        if self.list_task is not None:
            return
        self.list_task = self.manager.list_backups()
        if not self.is_busy:
            self.busy.start("Loading backups…")
        self.list_task.completed.connect(self._listed)
        self.list_task.failed.connect(self._list_failed)
        self._update_buttons()

    def _listed(self, entries: list[BackupEntry]) -> None:
        self.list_task = None
        if not self.is_busy:
            self.busy.stop()
        self.set_entries(entries)

    def _list_failed(self, error: NojoinError) -> None:
        self.list_task = None
        if not self.is_busy:
            self.busy.stop()
        self.message.show_error(str(error))
        self._update_buttons()

    def set_entries(self, entries: list[BackupEntry]) -> None:
        self.entries = list(entries)
        self.table.setRowCount(len(self.entries))
        for row, e in enumerate(self.entries):
            cells = (
                when(e.created_at),
                e.device or "—",
                human_size(e.size),
                "Library + audio" if e.includes_audio else "Library",
            )
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col == 2:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                item.setToolTip(f"{e.name}\nSHA-256 {e.sha256}")
                self.table.setItem(row, col, item)
        self.stack.setCurrentWidget(self.table if self.entries else self.empty)
        if self.entries and not self.table.selectionModel().hasSelection():
            self.table.selectRow(0)
        self._update_buttons()

    # ------------------------------------------------------------------ back up / restore

    def back_up(self) -> None:
        if self.is_busy:
            return
        self.message.clear_message()
        task = self.manager.back_up(include_audio=self.include_audio.isChecked())
        self._run(task, "Backing up…")
        task.completed.connect(self._backed_up)

    def _backed_up(self, entry: BackupEntry) -> None:
        self.message.show_info(
            f"Backup made ({human_size(entry.size)}) and stored in your Nojoin Cloud account."
        )
        self.refresh()

    def confirm_restore(self, entry: BackupEntry) -> bool:
        answer = QMessageBox.question(
            self,
            "Restore this backup?",
            f"Replace the meeting library on this computer with the backup from "
            f"{when(entry.created_at)} ({entry.device or 'unknown computer'})?\n\n"
            "Meetings added since then will disappear from the library; a copy of the current "
            "library is kept in the data folder so nothing is lost.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Yes

    def restore_selected(self) -> None:
        entry = self.selected()
        if entry is None or self.is_busy or not self.confirm_restore(entry):
            return
        self.message.clear_message()
        task = self.manager.restore(entry)
        self._run(task, "Restoring…")
        task.completed.connect(self._restored)

    def _restored(self, report: RestoreReport) -> None:
        self.last_report = report
        meetings = f"{report.meetings} meeting{'s' if report.meetings != 1 else ''}"
        self.message.show_info(
            f"Restored {meetings}. The previous library was kept in {report.rollback_path}."
        )

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.busy.start("Cancelling…")

    def _run(self, task: Task, text: str) -> None:
        self.task = task
        self.busy.start(text)
        task.progress.connect(self._progress)
        task.failed.connect(self._failed)
        task.finished.connect(self._finished)
        self._update_buttons()

    def _progress(self, progress: Progress) -> None:
        text = STAGES.get(progress.stage, progress.stage)
        if progress.message:  # "12 MB of 40 MB" while transferring
            text = f"{text} {progress.message}"
        self.busy.set_progress(text, progress.fraction)

    def _failed(self, error: NojoinError) -> None:
        if isinstance(error, CancelledError):
            self.message.show_info(str(error))
        else:
            self.message.show_error(str(error))

    def _finished(self) -> None:
        self.task = None
        if self.list_task is None:
            self.busy.stop()
        self._update_buttons()

    def showEvent(self, event: object) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)  # type: ignore[arg-type]
        if not self.entries and self.list_task is None:
            self.refresh()

    def closeEvent(self, event: object) -> None:  # noqa: N802 - Qt API
        # Closing the window does not stop a running backup; say so instead of hiding it.
        if self.is_busy:
            self.message.show_error(
                "A backup operation is still running. Cancel it first, or wait until it is done."
            )
            event.ignore()  # type: ignore[attr-defined]
            return
        super().closeEvent(event)  # type: ignore[arg-type]
