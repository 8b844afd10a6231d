"""The meeting list: a table model over the library, with search (FTS) and a tag filter."""

from __future__ import annotations

import logging

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from nojoin.errors import NojoinError
from nojoin.library import Library
from nojoin.models import Meeting, MeetingStatus
from nojoin.ui import formatting

log = logging.getLogger(__name__)

ALL_TAGS = "All meetings"
_Index = QModelIndex | QPersistentModelIndex


class MeetingListModel(QAbstractTableModel):
    """Rows are meetings (newest first, or best match first while searching)."""

    COLUMNS = ("Title", "Date", "Length", "Status", "Speakers")
    MeetingIdRole = Qt.ItemDataRole.UserRole + 1

    def __init__(self) -> None:
        super().__init__()
        self._meetings: list[Meeting] = []
        self._progress: dict[int, str] = {}

    def set_meetings(self, meetings: list[Meeting]) -> None:
        self.beginResetModel()
        self._meetings = list(meetings)
        self.endResetModel()

    def meetings(self) -> list[Meeting]:
        return list(self._meetings)

    def meeting_at(self, row: int) -> Meeting | None:
        return self._meetings[row] if 0 <= row < len(self._meetings) else None

    def row_of(self, meeting_id: int) -> int:
        for i, m in enumerate(self._meetings):
            if m.id == meeting_id:
                return i
        return -1

    def set_progress_text(self, meeting_id: int, text: str | None) -> None:
        """Show e.g. 'Transcribing 42%' in the status column while a meeting is processed."""
        if text is None:
            self._progress.pop(meeting_id, None)
        else:
            self._progress[meeting_id] = text
        row = self.row_of(meeting_id)
        if row >= 0:
            idx = self.index(row, 3)
            self.dataChanged.emit(idx, idx)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._meetings)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(  # noqa: N802
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        m = self.meeting_at(index.row())
        if m is None:
            return None
        col = index.column()
        if role == self.MeetingIdRole:
            return m.id
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return m.title
            if col == 1:
                return formatting.short_date(m.created_at)
            if col == 2:
                return formatting.duration(m.duration)
            if col == 3:
                return self._progress.get(m.id) or formatting.STATUS_LABELS[m.status]
            if col == 4:
                return formatting.names([s.display_name for s in m.speakers])
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == 1:
                return formatting.date(m.created_at)
            if col == 4 and m.speakers:
                return ", ".join(s.display_name for s in m.speakers)
            if col == 3 and m.status is MeetingStatus.ERROR and m.error:
                return m.error
            if col == 0 and m.tags:
                return "Tags: " + ", ".join(m.tags)
        if role == Qt.ItemDataRole.FontRole and col == 0:
            f = QFont()
            f.setWeight(QFont.Weight.DemiBold)
            return f
        if role == Qt.ItemDataRole.ForegroundRole and col == 3:
            if m.status is MeetingStatus.ERROR:
                return QBrush(QColor("#dc2626"))
        return None


class LibraryPanel(QWidget):
    """Search box, tag filter and the meeting table.

    Signals:
        meeting_selected(int): the user selected a meeting (its id); -1 when none.
        error(BaseException): the library failed (shown by the main window).
    """

    meeting_selected = Signal(int)
    error = Signal(object)

    SEARCH_DELAY_MS = 200

    def __init__(self, library: Library, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._library = library
        self.search_box = QLineEdit()
        self.search_box.setPlaceholderText("Search titles, transcripts and speakers…")
        self.search_box.setClearButtonEnabled(True)
        self.tag_filter = QComboBox()
        self.tag_filter.setMinimumWidth(140)
        self.tag_filter.setToolTip("Show only meetings with this tag")
        self.model = MeetingListModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setObjectName("meetingList")
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(32)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        header.setMinimumSectionSize(60)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2, 3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(4, 110)
        self.count_label = QLabel()
        self.count_label.setObjectName("muted")

        top = QHBoxLayout()
        top.setSpacing(8)
        top.addWidget(self.search_box, 1)
        top.addWidget(self.tag_filter)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(8)
        lay.addLayout(top)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.count_label)

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(self.SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self.refresh)
        self.search_box.textChanged.connect(lambda _t: self._search_timer.start())
        self.search_box.returnPressed.connect(self.refresh)
        self.tag_filter.currentIndexChanged.connect(lambda _i: self.refresh())
        self.table.selectionModel().currentRowChanged.connect(self._on_current_changed)
        self.refresh_tags()
        self.refresh()

    # ---------------------------------------------------------------- queries
    def current_tag(self) -> str | None:
        return None if self.tag_filter.currentIndex() <= 0 else self.tag_filter.currentText()

    def selected_meeting_id(self) -> int | None:
        idx = self.table.currentIndex()
        m = self.model.meeting_at(idx.row()) if idx.isValid() else None
        return m.id if m else None

    # ---------------------------------------------------------------- actions
    @Slot()
    def refresh(self) -> None:
        """Re-read the list for the current search text and tag, keeping the selection."""
        self._search_timer.stop()
        selected = self.selected_meeting_id()
        query = self.search_box.text().strip()
        try:
            if query:
                ids = self._library.search_meetings(query)
                meetings = self._library.list_meetings(ids=ids, tag=self.current_tag())
            else:
                meetings = self._library.list_meetings(tag=self.current_tag())
        except NojoinError as exc:
            self.error.emit(exc)
            return
        self.table.selectionModel().blockSignals(True)
        self.model.set_meetings(meetings)
        self.table.selectionModel().blockSignals(False)
        n = len(meetings)
        if query:
            self.count_label.setText(f"{n} meeting{'s' if n != 1 else ''} match “{query}”")
        else:
            self.count_label.setText(f"{n} meeting{'s' if n != 1 else ''}")
        if selected is not None and self.select_meeting(selected, emit=False):
            return
        if selected is not None:
            self.meeting_selected.emit(-1)

    def refresh_tags(self) -> None:
        current = self.current_tag()
        try:
            tags = self._library.all_tags()
        except NojoinError as exc:
            self.error.emit(exc)
            return
        self.tag_filter.blockSignals(True)
        self.tag_filter.clear()
        self.tag_filter.addItem(ALL_TAGS)
        self.tag_filter.addItems(tags)
        if current in tags:
            self.tag_filter.setCurrentIndex(tags.index(current) + 1)
        self.tag_filter.blockSignals(False)
        if current is not None and current not in tags:
            self.refresh()

    def select_meeting(self, meeting_id: int, *, emit: bool = True) -> bool:
        row = self.model.row_of(meeting_id)
        if row < 0:
            return False
        sel = self.table.selectionModel()
        if not emit:
            sel.blockSignals(True)
        self.table.selectRow(row)
        self.table.setCurrentIndex(self.model.index(row, 0))
        if not emit:
            sel.blockSignals(False)
        self.table.scrollTo(self.model.index(row, 0))
        return True

    @Slot(QModelIndex, QModelIndex)
    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        m = self.model.meeting_at(current.row()) if current.isValid() else None
        self.meeting_selected.emit(m.id if m else -1)
