"""Asks which settings to keep when this computer's differ from the cloud copy."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nojoin.cloud.config_sync import Choice, SyncResult
from nojoin.ui.cloud.common import TABLE_STYLE, heading

LABELS = {
    "model": "Speech model",
    "language": "Language",
    "diarization_engine": "Speaker detection",
    "min_speakers": "Fewest speakers",
    "max_speakers": "Most speakers",
    "auto_process": "Process after recording",
    "min_meeting_seconds": "Shortest meeting kept (s)",
    "theme": "Theme",
}


def _show(name: str, value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "On" if value else "Off"
    if name in ("min_speakers", "max_speakers") and value == 0:
        return "No hint"
    if name == "language" and value == "auto":
        return "Detect"
    return str(value).capitalize() if name == "theme" else str(value)


class SyncConflictDialog(QDialog):
    """`choice` is "local", "cloud", or None (decide later) after the dialog closes."""

    def __init__(self, result: SyncResult, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result_ = result
        self.choice: Choice | None = None
        self.setWindowTitle("Settings differ")
        self.setMinimumWidth(520)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(22, 20, 22, 18)
        layout.setSpacing(12)
        layout.addWidget(
            heading(
                "Which settings do you want to keep?",
                result.message
                or "The settings on this computer differ from the ones saved in your Nojoin "
                "Cloud account. Settings that belong to this computer (microphone, speakers, "
                "data folder) are never synced and stay as they are.",
            )
        )
        self.table = QTableWidget(len(result.differences), 3)
        self.table.setHorizontalHeaderLabels(["Setting", "This computer", "Cloud"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.setStyleSheet(TABLE_STYLE)
        self.table.verticalHeader().setDefaultSectionSize(30)
        header = self.table.horizontalHeader()
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Fixed)
            header.resizeSection(col, 150)
        for row, diff in enumerate(result.differences):
            label = LABELS.get(diff.name, diff.name.replace("_", " ").capitalize())
            for col, text in enumerate(
                (label, _show(diff.name, diff.local), _show(diff.name, diff.cloud))
            ):
                item = QTableWidgetItem(text)
                if diff.name in result.conflicts:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                    item.setToolTip("Changed on this computer and on another one.")
                self.table.setItem(row, col, item)
        rows = max(1, len(result.differences))
        self.table.setFixedHeight(min(330, header.sizeHint().height() + 30 * rows + 4))
        layout.addWidget(self.table)
        text = "You can change any setting later in Settings; changes then sync."
        if result.conflicts:
            text = "Settings in bold were changed both here and on another computer. " + text
        note = QLabel(text)
        note.setWordWrap(True)
        note.setObjectName("muted")
        layout.addWidget(note)
        buttons = QDialogButtonBox()
        self.later_button = buttons.addButton(
            "Decide later", QDialogButtonBox.ButtonRole.RejectRole
        )
        self.cloud_button = buttons.addButton(
            "Use the cloud settings", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.local_button = buttons.addButton(
            "Keep this computer's", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.local_button.setObjectName("primaryButton")
        self.later_button.clicked.connect(self.reject)
        self.cloud_button.clicked.connect(lambda: self._choose("cloud"))
        self.local_button.clicked.connect(lambda: self._choose("local"))
        layout.addWidget(buttons)

    def _choose(self, choice: Choice) -> None:
        self.choice = choice
        self.accept()
