"""One meeting: title, tags, playback, the transcript and its speakers, and what to do with them."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import (
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QSize,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from nojoin import export
from nojoin.errors import NojoinError
from nojoin.library import Library
from nojoin.models import Meeting, MeetingStatus, Speaker
from nojoin.processing.contract import Progress
from nojoin.ui import formatting
from nojoin.ui.player import PlayerBar
from nojoin.ui.processing import ItemState, ProcessingQueue, format_eta, stage_label
from nojoin.ui.transcript_model import SPEAKER, TEXT, TIME, TranscriptModel

log = logging.getLogger(__name__)

NEW_SPEAKER = "New speaker…"

ROW_SIZING_BUDGET_S = 0.008
"""How long one turn of the event loop may spend sizing transcript rows (wrapped text is
measured per row in Python: a whole hour-long transcript at once would freeze the window)."""


class _RoomyDelegate(QStyledItemDelegate):
    """Rows sized for the style sheet's cell padding, so wrapped text is never cut off."""

    PAD_W, PAD_H = 8, 6

    def sizeHint(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:  # noqa: N802
        opt = QStyleOptionViewItem(option)
        opt.rect.setWidth(max(10, opt.rect.width() - self.PAD_W))
        s = super().sizeHint(opt, index)
        return QSize(s.width() + self.PAD_W, s.height() + self.PAD_H)


class MeetingView(QWidget):
    """Shows one meeting and edits it through the library.

    Signals:
        changed(int): the meeting's title, tags, speakers or text changed (lists refresh).
        deleted(int): the meeting was deleted.
        process_requested(int): process with the current settings.
        reprocess_requested(int): ask for other settings, then process.
        exportable_changed(bool): whether there is a transcript to export (none shown, or no
            transcript yet: False).
        error(BaseException): something failed; the main window shows it.
    """

    changed = Signal(int)
    deleted = Signal(int)
    process_requested = Signal(int)
    reprocess_requested = Signal(int)
    exportable_changed = Signal(bool)
    error = Signal(object)

    def __init__(
        self, library: Library, queue: ProcessingQueue, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._library = library
        self._queue = queue
        self._meeting: Meeting | None = None
        self._follow = True

        # Header: title, meta line, tags, actions.
        self.title_edit = QLineEdit()
        self.title_edit.setObjectName("meetingTitle")
        self.title_edit.setFrame(False)
        self.title_edit.setToolTip("Click to rename the meeting")
        self.title_edit.editingFinished.connect(self._on_title_edited)
        self.meta_label = QLabel()
        self.meta_label.setObjectName("muted")
        self.tags_edit = QLineEdit()
        self.tags_edit.setPlaceholderText("Tags, separated by commas")
        self.tags_edit.editingFinished.connect(self._on_tags_edited)

        self.export_button = QToolButton()
        self.export_button.setText("Export ▾")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        export_menu = QMenu(self.export_button)
        for fmt in export.FORMATS:
            export_menu.addAction(f"{fmt.upper()}…", self.exporter(fmt))
        self.export_button.setMenu(export_menu)
        self.reprocess_button = QPushButton("Re-process…")
        self.reprocess_button.setToolTip(
            "Process again with another model, language or speaker count"
        )
        self.reprocess_button.clicked.connect(self._on_reprocess)
        self.delete_button = QPushButton("Delete")
        self.delete_button.clicked.connect(self.confirm_delete)

        title_row = QHBoxLayout()
        title_row.addWidget(self.title_edit, 1)
        title_row.addWidget(self.export_button)
        title_row.addWidget(self.reprocess_button)
        title_row.addWidget(self.delete_button)
        meta_row = QHBoxLayout()
        meta_row.addWidget(self.meta_label, 1)
        tags_label = QLabel("Tags")
        tags_label.setObjectName("muted")
        meta_row.addWidget(tags_label)
        meta_row.addWidget(self.tags_edit, 1)

        # Banner: not processed / failed / processing.
        self.banner = QFrame()
        self.banner.setObjectName("banner")
        self.banner_label = QLabel()
        self.banner_label.setWordWrap(True)
        self.banner_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner_progress = QProgressBar()
        self.banner_progress.setRange(0, 1000)
        self.banner_progress.setTextVisible(False)
        self.banner_progress.setFixedWidth(200)
        self.banner_button = QPushButton()
        self.banner_button.setObjectName("primaryButton")
        self.banner_button.clicked.connect(self._on_banner_button)
        banner_lay = QHBoxLayout(self.banner)
        banner_lay.setContentsMargins(10, 8, 10, 8)
        banner_lay.addWidget(self.banner_label, 1)
        banner_lay.addWidget(self.banner_progress)
        banner_lay.addWidget(self.banner_button)

        # Playback.
        self.player_bar = PlayerBar()
        self.player_bar.position_changed.connect(self._on_position)
        self.player_bar.error.connect(lambda msg: self.error.emit(NojoinError(msg)))

        # Transcript.
        self.model = TranscriptModel()
        self.model.text_edited.connect(self._on_text_edited)
        self.model.current_changed.connect(self._on_current_row)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setObjectName("transcript")
        self.table.setItemDelegate(_RoomyDelegate(self.table))
        self.table.setWordWrap(True)
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        self.table.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.table.verticalHeader().hide()
        h = self.table.horizontalHeader()
        h.setHighlightSections(False)
        h.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        # Fitted by _fit_columns from a few representative rows: ResizeToContents would measure
        # every row of both columns (Python delegate calls) on each layout pass.
        h.setSectionResizeMode(TIME, QHeaderView.ResizeMode.Fixed)
        h.setSectionResizeMode(SPEAKER, QHeaderView.ResizeMode.Fixed)
        h.setSectionResizeMode(TEXT, QHeaderView.ResizeMode.Stretch)
        # Row heights follow the wrapped text; they are measured a slice at a time, visible
        # rows first, so neither a new transcript nor a column resize blocks the window.
        self._rows_to_size: list[int] = []
        self._row_sizer = QTimer(self)
        self._row_sizer.setInterval(0)
        self._row_sizer.timeout.connect(self._size_some_rows)
        h.sectionResized.connect(lambda *_: self._schedule_row_sizing())
        self._column_fitter = QTimer(self)
        self._column_fitter.setSingleShot(True)
        self._column_fitter.setInterval(0)
        self._column_fitter.timeout.connect(self._fit_columns)
        for sig in (self.model.modelReset, self.model.dataChanged, self.model.layoutChanged):
            sig.connect(lambda *_: self._column_fitter.start())
        self.table.clicked.connect(self._on_segment_clicked)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._segment_menu)
        self.empty_label = QLabel()
        self.empty_label.setObjectName("placeholder")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)

        # Speakers.
        self.speaker_list = QListWidget()
        self.speaker_list.setMinimumWidth(180)
        self.speaker_list.itemDoubleClicked.connect(lambda _i: self.rename_dialog())
        self.rename_button = QPushButton("Rename…")
        self.rename_button.clicked.connect(self.rename_dialog)
        self.merge_button = QPushButton("Merge into…")
        self.merge_button.setToolTip("Give all of this speaker's segments to another speaker")
        self.merge_button.clicked.connect(self.merge_dialog)
        self.link_button = QPushButton("Link to person…")
        self.link_button.setToolTip("Say who this is, so you can find them in other meetings")
        self.link_button.clicked.connect(self.link_dialog)
        speakers_box = QWidget()
        self.speakers_box = speakers_box
        sp_lay = QVBoxLayout(speakers_box)
        sp_lay.setContentsMargins(0, 0, 0, 0)
        sp_title = QLabel("Speakers")
        sp_title.setStyleSheet("font-weight: 600;")
        sp_lay.addWidget(sp_title)
        sp_lay.addWidget(self.speaker_list, 1)
        for b in (self.rename_button, self.merge_button, self.link_button):
            sp_lay.addWidget(b)
        self.speaker_list.currentRowChanged.connect(lambda _r: self._update_speaker_buttons())

        transcript_box = QWidget()
        tr_lay = QVBoxLayout(transcript_box)
        tr_lay.setContentsMargins(0, 0, 0, 0)
        tr_lay.addWidget(self.table, 1)
        tr_lay.addWidget(self.empty_label, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(transcript_box)
        self.splitter.addWidget(speakers_box)
        self.splitter.setStretchFactor(0, 4)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(False)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(8)
        lay.addLayout(title_row)
        lay.addLayout(meta_row)
        lay.addWidget(self.banner)
        lay.addWidget(self.player_bar)
        lay.addWidget(self.splitter, 1)

        space = QShortcut(QKeySequence(Qt.Key.Key_Space), self.table)
        space.activated.connect(self.player_bar.toggle)

        queue.item_progress.connect(self._on_queue_progress)
        queue.changed.connect(self._update_banner)
        self.setEnabled(False)

    def exporter(self, fmt: str) -> Callable[[], None]:
        return lambda: self.export_dialog(fmt)

    # ---------------------------------------------------------------- queries
    @property
    def meeting(self) -> Meeting | None:
        return self._meeting

    @property
    def meeting_id(self) -> int | None:
        return self._meeting.id if self._meeting else None

    def selected_speaker(self) -> Speaker | None:
        item = self.speaker_list.currentItem()
        if item is None or self._meeting is None:
            return None
        label = item.data(Qt.ItemDataRole.UserRole)
        return next((s for s in self._meeting.speakers if s.label == label), None)

    # ---------------------------------------------------------------- loading
    def show_meeting(self, meeting_id: int | None) -> None:
        """Load a meeting (None: clear the view)."""
        self.player_bar.stop()
        if meeting_id is None:
            self._meeting = None
            self.model.set_transcript([], {})
            self.setEnabled(False)
            self._set_exportable(False)
            return
        try:
            meeting = self._library.get_meeting(meeting_id)
        except NojoinError as exc:
            self.error.emit(exc)
            return
        same = self._meeting is not None and self._meeting.id == meeting.id
        self._meeting = meeting
        self.setEnabled(True)
        self._fill_header()
        self._load_transcript()
        if not same:
            self.player_bar.set_source(meeting.audio_path)

    def reload(self) -> None:
        """Re-read the current meeting (after processing or an edit elsewhere)."""
        if self._meeting is not None:
            self.show_meeting(self._meeting.id)

    def _schedule_row_sizing(self) -> None:
        """(Re)measure every row's height in the background, starting at the first visible row."""
        n = self.model.rowCount()
        first = max(0, self.table.rowAt(0))
        self._rows_to_size = list(range(first, n)) + list(range(first))
        self._rows_to_size.reverse()  # popped from the end: the first visible row goes first
        # Started, not run: the several column resizes of one layout pass share one measurement.
        if self._rows_to_size:
            self._row_sizer.start()
        else:
            self._row_sizer.stop()

    @Slot()
    def _size_some_rows(self) -> None:
        deadline = time.perf_counter() + ROW_SIZING_BUDGET_S
        n = self.model.rowCount()
        while self._rows_to_size and time.perf_counter() < deadline:
            row = self._rows_to_size.pop()
            if row < n:
                self.table.resizeRowToContents(row)
        if not self._rows_to_size:
            self._row_sizer.stop()

    @Slot()
    def _fit_columns(self) -> None:
        """Time and speaker columns as wide as their widest entry: the last start time, and one
        row per speaker (the only rows whose text can be the widest)."""
        h = self.table.horizontalHeader()
        segments = self.model.segments()
        first_row: dict[str | None, int] = {}
        for row, seg in enumerate(segments):
            first_row.setdefault(seg.speaker, row)
        for col, rows in (
            (TIME, [len(segments) - 1] if segments else []),
            (SPEAKER, first_row.values()),
        ):
            width = h.sectionSizeHint(col)
            for row in rows:
                width = max(width, self.table.sizeHintForIndex(self.model.index(row, col)).width())
            if h.sectionSize(col) != width:
                h.resizeSection(col, width)

    def rows_sized(self) -> bool:
        """Whether every transcript row has its final height (tests wait for this)."""
        return not self._rows_to_size

    def _fill_header(self) -> None:
        m = self._meeting
        assert m is not None
        self.title_edit.setText(m.title)
        self.title_edit.setCursorPosition(0)
        parts = [formatting.date(m.created_at), formatting.duration(m.duration)]
        if m.language:
            parts.append(m.language)
        n = len(m.speakers)
        if n:
            parts.append(f"{n} speaker{'s' if n != 1 else ''}")
        self.meta_label.setText("  ·  ".join(parts))
        self.tags_edit.setText(", ".join(m.tags))
        self._fill_speakers()
        self._update_banner()

    def _fill_speakers(self) -> None:
        m = self._meeting
        assert m is not None
        current = self.selected_speaker()
        counts: dict[str, int] = {}
        for seg in self.model.segments():
            if seg.speaker:
                counts[seg.speaker] = counts.get(seg.speaker, 0) + 1
        self.speaker_list.clear()
        for sp in m.speakers:
            label = sp.display_name if sp.name is None else f"{sp.display_name}  ({sp.label})"
            item = QListWidgetItem(label)
            item.setData(Qt.ItemDataRole.UserRole, sp.label)
            item.setToolTip(f"{sp.label}: {counts.get(sp.label, 0)} segments")
            self.speaker_list.addItem(item)
            if current is not None and current.label == sp.label:
                self.speaker_list.setCurrentItem(item)
        if self.speaker_list.currentRow() < 0 and self.speaker_list.count():
            self.speaker_list.setCurrentRow(0)
        self.speakers_box.setVisible(self.speaker_list.count() > 0)
        self._update_speaker_buttons()

    def _load_transcript(self) -> None:
        m = self._meeting
        assert m is not None
        try:
            segments = self._library.segments(m.id)
        except NojoinError as exc:
            self.error.emit(exc)
            segments = []
        self.model.set_transcript(segments, {s.label: s.display_name for s in m.speakers})
        self._schedule_row_sizing()
        has = bool(segments)
        self.table.setVisible(has)
        self.empty_label.setVisible(not has)
        if not has:
            self.empty_label.setText(
                "No transcript yet."
                if m.status is not MeetingStatus.PROCESSED
                else "No speech was found in this recording."
            )
        self._set_exportable(has)
        self._fill_speakers()

    def _set_exportable(self, exportable: bool) -> None:
        self.export_button.setEnabled(exportable)
        self.exportable_changed.emit(exportable)

    def can_export(self) -> bool:
        """A meeting with a transcript is shown."""
        return self._meeting is not None and self.export_button.isEnabled()

    def _update_speaker_buttons(self) -> None:
        has = self.selected_speaker() is not None
        self.rename_button.setEnabled(has)
        self.link_button.setEnabled(has)
        self.merge_button.setEnabled(has and self.speaker_list.count() > 1)

    # ----------------------------------------------------------------- banner
    def _update_banner(self) -> None:
        m = self._meeting
        if m is None:
            self.banner.hide()
            return
        item = self._queue.item(m.id)
        if item is not None:
            self._show_progress_banner(item.progress, item.state is ItemState.QUEUED, item.eta)
            return
        self.banner_progress.hide()
        if m.status is MeetingStatus.RECORDED:
            self.banner_label.setText("This meeting has not been transcribed yet.")
            self.banner_button.setText("Transcribe now")
            self.banner.show()
        elif m.status in (MeetingStatus.ERROR, MeetingStatus.PROCESSING):
            why = m.error or "Processing was interrupted."
            self.banner_label.setText(f"Processing failed: {why}")
            self.banner_button.setText("Try again")
            self.banner.show()
        else:
            self.banner.hide()
        self.reprocess_button.setEnabled(True)

    def _show_progress_banner(self, p: Progress, queued: bool, eta: float | None) -> None:
        if queued:
            text = "Waiting for other meetings to finish processing…"
        else:
            text = f"{stage_label(p.stage)}… {int(p.fraction * 100)}% · {format_eta(eta)}"
        self.banner_label.setText(text)
        self.banner_progress.show()
        self.banner_progress.setValue(int(max(0.0, min(1.0, p.fraction)) * 1000))
        self.banner_button.setText("Cancel")
        self.reprocess_button.setEnabled(False)
        self.banner.show()

    @Slot(int, object)
    def _on_queue_progress(self, meeting_id: int, _p: Progress) -> None:
        if self._meeting is not None and meeting_id == self._meeting.id:
            self._update_banner()

    @Slot()
    def _on_banner_button(self) -> None:
        m = self._meeting
        if m is None:
            return
        if self._queue.item(m.id) is not None:
            self._queue.cancel(m.id)
        else:
            self.process_requested.emit(m.id)

    @Slot()
    def _on_reprocess(self) -> None:
        if self._meeting is not None:
            self.reprocess_requested.emit(self._meeting.id)

    # --------------------------------------------------------------- playback
    @Slot(float)
    def _on_position(self, seconds: float) -> None:
        self.model.set_current_time(seconds)

    @Slot(int)
    def _on_current_row(self, row: int) -> None:
        if row >= 0 and self._follow:
            self.table.scrollTo(
                self.model.index(row, 0), QAbstractItemView.ScrollHint.EnsureVisible
            )

    @Slot(QModelIndex)
    def _on_segment_clicked(self, index: QModelIndex) -> None:
        seg = self.model.segment(index.row())
        if seg is not None and self.player_bar.play_button.isEnabled():
            self.player_bar.seek(seg.start)

    def _play_from(self, seconds: float) -> None:
        self.player_bar.seek(seconds)
        self.player_bar.player.play()

    def seek_to_row(self, row: int) -> None:
        seg = self.model.segment(row)
        if seg is not None:
            self.player_bar.seek(seg.start)

    # ------------------------------------------------------------ edits: meta
    @Slot()
    def _on_title_edited(self) -> None:
        m = self._meeting
        if m is None:
            return
        title = self.title_edit.text().strip()
        if not title:
            self.title_edit.setText(m.title)
            return
        if title == m.title:
            return
        self._run(lambda: self._library.update_meeting(m.id, title=title))

    @Slot()
    def _on_tags_edited(self) -> None:
        m = self._meeting
        if m is None:
            return
        wanted = list(
            dict.fromkeys(t.strip() for t in self.tags_edit.text().split(",") if t.strip())
        )
        if wanted == m.tags:
            return
        self._run(lambda: self._library.set_tags(m.id, wanted))

    # -------------------------------------------------------- edits: speakers
    def rename_speaker(self, label: str, name: str) -> None:
        m = self._meeting
        if m is not None:
            self._run(lambda: self._library.rename_speaker(m.id, label, name))

    def merge_speakers(self, source: str, target: str) -> None:
        m = self._meeting
        if m is not None:
            self._run(lambda: self._library.merge_speakers(m.id, source, target))

    def link_speaker(self, label: str, person_name: str) -> None:
        m = self._meeting
        if m is not None:
            self._run(lambda: self._library.link_speaker_to(m.id, label, person_name))

    def reassign_segment(self, segment_id: int, label: str) -> None:
        self._run(lambda: self._library.reassign_segment(segment_id, label))

    @Slot()
    def rename_dialog(self) -> None:
        sp = self.selected_speaker()
        if sp is None:
            return
        name, ok = QInputDialog.getText(
            self, "Rename speaker", f"Name for {sp.label} in this meeting:", text=sp.name or ""
        )
        if ok:
            self.rename_speaker(sp.label, name)

    @Slot()
    def merge_dialog(self) -> None:
        sp = self.selected_speaker()
        m = self._meeting
        if sp is None or m is None:
            return
        others = [s for s in m.speakers if s.label != sp.label]
        if not others:
            return
        names = [f"{s.display_name} ({s.label})" if s.name else s.label for s in others]
        choice, ok = QInputDialog.getItem(
            self,
            "Merge speakers",
            f"Give all of {sp.display_name}'s segments to:",
            names,
            0,
            False,
        )
        if ok and choice in names:
            self.merge_speakers(sp.label, others[names.index(choice)].label)

    @Slot()
    def link_dialog(self) -> None:
        sp = self.selected_speaker()
        if sp is None:
            return
        try:
            people = [p.name for p in self._library.people()]
        except NojoinError as exc:
            self.error.emit(exc)
            return
        current = 0
        if sp.name in people:
            current = people.index(sp.name)
        choice, ok = QInputDialog.getItem(
            self,
            "Link to a person",
            f"Who is {sp.display_name}? Pick someone or type a new name:",
            people,
            current,
            True,
        )
        if ok and choice.strip():
            self.link_speaker(sp.label, choice.strip())

    def _segment_menu(self, pos: QPoint) -> None:
        menu = self.segment_menu(self.table.indexAt(pos).row())
        if menu is not None:
            menu.exec(self.table.viewport().mapToGlobal(pos))
            menu.deleteLater()

    def segment_menu(self, row: int) -> QMenu | None:
        """The context menu of one segment: play, edit, assign to another speaker."""
        seg = self.model.segment(row)
        m = self._meeting
        if seg is None or seg.id is None or m is None:
            return None
        seg_id = seg.id
        menu = QMenu(self)
        play = QAction("Play from here", menu)
        play.setEnabled(self.player_bar.play_button.isEnabled())
        play.triggered.connect(lambda: self._play_from(seg.start))
        menu.addAction(play)
        menu.addAction("Edit text", lambda: self.table.edit(self.model.index(row, TEXT)))
        assign = menu.addMenu("Assign to speaker")
        for sp in m.speakers:
            act = assign.addAction(sp.display_name)
            act.setEnabled(sp.label != seg.speaker)
            act.triggered.connect(lambda _c=False, lab=sp.label: self.reassign_segment(seg_id, lab))
        assign.addSeparator()
        assign.addAction(NEW_SPEAKER, lambda: self._reassign_new(seg_id))
        return menu

    def _reassign_new(self, segment_id: int) -> None:
        if self._meeting is None:
            return
        name, ok = QInputDialog.getText(self, "New speaker", "Name of the new speaker:")
        if ok:
            self._run(lambda: self._library.reassign_to_new_speaker(segment_id, name))

    @Slot(int, str)
    def _on_text_edited(self, segment_id: int, text: str) -> None:
        self._run(lambda: self._library.update_segment_text(segment_id, text), reload=False)

    # ------------------------------------------------------- export / delete
    def export_to(self, fmt: str, path: Path | str) -> Path | None:
        m = self._meeting
        if m is None:
            return None
        try:
            transcript = self._library.get_transcript(m.id)
            names = self._library.speaker_names(m.id)
            return export.write(transcript, fmt, path, speaker_names=names, title=m.title)
        except NojoinError as exc:
            self.error.emit(exc)
            return None

    def export_dialog(self, fmt: str = "txt") -> None:
        m = self._meeting
        if m is None:
            return
        safe = (
            "".join(c if c.isalnum() or c in " -_" else "_" for c in m.title).strip() or "meeting"
        )
        suggested = str(Path.home() / f"{safe}{export.EXTENSIONS[fmt]}")
        filters = ";;".join(f"{f.upper()} (*{export.EXTENSIONS[f]})" for f in export.FORMATS)
        selected = f"{fmt.upper()} (*{export.EXTENSIONS[fmt]})"
        path, chosen = QFileDialog.getSaveFileName(
            self, "Export transcript", suggested, filters, selected
        )
        if not path:
            return
        chosen_fmt = chosen.split(" ")[0].lower() if chosen else fmt
        if chosen_fmt not in export.FORMATS:
            chosen_fmt = fmt
        suffix = Path(path).suffix.lower().lstrip(".")
        if suffix in export.FORMATS:
            chosen_fmt = suffix
        else:
            path += export.EXTENSIONS[chosen_fmt]
        self.export_to(chosen_fmt, path)

    @Slot()
    def confirm_delete(self) -> None:
        m = self._meeting
        if m is None:
            return
        answer = QMessageBox.question(
            self,
            "Delete meeting",
            f"Delete “{m.title}” with its transcript? This cannot be undone.\n\n"
            "Audio recorded by Nojoin is deleted too; imported files stay where they are.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        if self._queue.item(m.id) is not None:
            self._queue.cancel(m.id)
        self.player_bar.set_source(None)
        try:
            self._library.delete_meeting(m.id, delete_audio=True)
        except NojoinError as exc:
            self.error.emit(exc)
            return
        self._meeting = None
        self.setEnabled(False)
        self.deleted.emit(m.id)

    # ---------------------------------------------------------------- helpers
    def _run(self, action: object, *, reload: bool = True) -> bool:
        """Run a library edit; on success reload and announce, on failure report."""
        m = self._meeting
        try:
            action()  # type: ignore[operator]
        except NojoinError as exc:
            self.error.emit(exc)
            if m is not None:
                self.show_meeting(m.id)
            return False
        if m is not None:
            if reload:
                self.show_meeting(m.id)
            self.changed.emit(m.id)
        return True
