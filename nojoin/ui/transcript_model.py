"""Table model of a meeting's transcript: time, speaker, text; the playing segment is marked."""

from __future__ import annotations

import bisect
from collections.abc import Mapping

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont

from nojoin.models import Segment
from nojoin.ui import formatting

_Index = QModelIndex | QPersistentModelIndex

TIME, SPEAKER, TEXT = range(3)


class TranscriptModel(QAbstractTableModel):
    """Segments of one meeting. The Text column is editable.

    Signals:
        text_edited(int, str): segment id and its new text (the view stores it).
        current_changed(int): the row now playing (-1: none).
    """

    text_edited = Signal(int, str)
    current_changed = Signal(int)

    COLUMNS = ("Time", "Speaker", "Text")
    SegmentIdRole = Qt.ItemDataRole.UserRole + 1
    StartRole = Qt.ItemDataRole.UserRole + 2

    def __init__(self) -> None:
        super().__init__()
        self._segments: list[Segment] = []
        self._starts: list[float] = []
        self._names: dict[str, str] = {}
        self._current = -1
        self._current_bg = QColor("#fff3bf")
        self._current_fg = QColor("#1f2328")

    def set_colors(self, background: str, foreground: str) -> None:
        self._current_bg, self._current_fg = QColor(background), QColor(foreground)
        if self._current >= 0:
            self._emit_row(self._current)

    def set_transcript(self, segments: list[Segment], names: Mapping[str, str]) -> None:
        self.beginResetModel()
        self._segments = list(segments)
        self._starts = [s.start for s in self._segments]
        self._names = dict(names)
        self._current = -1
        self.endResetModel()

    def set_names(self, names: Mapping[str, str]) -> None:
        self._names = dict(names)
        if self._segments:
            self.dataChanged.emit(
                self.index(0, SPEAKER), self.index(len(self._segments) - 1, SPEAKER)
            )

    def segments(self) -> list[Segment]:
        return list(self._segments)

    def segment(self, row: int) -> Segment | None:
        return self._segments[row] if 0 <= row < len(self._segments) else None

    def speaker_name(self, label: str | None) -> str:
        if label is None:
            return "—"
        return self._names.get(label, label)

    @property
    def current_row(self) -> int:
        return self._current

    def row_at_time(self, seconds: float) -> int:
        """The segment playing at `seconds`: the last one that started (-1 before the first)."""
        return bisect.bisect_right(self._starts, seconds + 1e-6) - 1

    def set_current_time(self, seconds: float) -> int:
        row = self.row_at_time(seconds)
        if row != self._current:
            old, self._current = self._current, row
            self._emit_row(old)
            self._emit_row(row)
            self.current_changed.emit(row)
        return row

    def _emit_row(self, row: int) -> None:
        if 0 <= row < len(self._segments):
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.COLUMNS) - 1))

    # ---------------------------------------------------------------- Qt API
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._segments)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(  # noqa: N802
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        base = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == TEXT:
            base |= Qt.ItemFlag.ItemIsEditable
        return base

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        seg = self.segment(index.row())
        if seg is None:
            return None
        col = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            if col == TIME:
                return formatting.clock(seg.start)
            if col == SPEAKER:
                return self.speaker_name(seg.speaker)
            return seg.text
        if role == self.SegmentIdRole:
            return seg.id
        if role == self.StartRole:
            return seg.start
        if role == Qt.ItemDataRole.ToolTipRole and col == TIME:
            return f"{formatting.clock(seg.start)} – {formatting.clock(seg.end)}. Click to play from here."
        if index.row() == self._current:
            if role == Qt.ItemDataRole.BackgroundRole:
                return QBrush(self._current_bg)
            if role == Qt.ItemDataRole.ForegroundRole:
                return QBrush(self._current_fg)
        if role == Qt.ItemDataRole.FontRole and col == SPEAKER:
            f = QFont()
            f.setBold(True)
            return f
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        return None

    def setData(self, index: _Index, value: object, role: int = Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802
        seg = self.segment(index.row())
        if seg is None or index.column() != TEXT or role != Qt.ItemDataRole.EditRole:
            return False
        text = str(value).strip()
        if not text or text == seg.text or seg.id is None:
            return False
        seg.text = text
        self.dataChanged.emit(index, index)
        self.text_edited.emit(seg.id, text)
        return True
