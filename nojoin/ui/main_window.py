"""The main window: record bar, meeting list with search and tags, the meeting view, the queue.

Services come in through `__init__` (the composition root builds them); the window adds
no globals. Cloud Mode extends it through `add_menu()`, `add_status_widget()` and
`attach_cloud()` (sign-in state for the Settings dialog, Upgrade after a refused cloud run).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import Qt, QUrl, Slot
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from nojoin import __version__, paths
from nojoin.config import ConfigManager, Settings
from nojoin.errors import CancelledError, NojoinError
from nojoin.library import Library
from nojoin.models import Meeting, MeetingStatus, ProcessingMode
from nojoin.processing.contract import ProcessingOptions, Progress
from nojoin.processing.strategies.remote_errors import RemoteError
from nojoin.ui import formatting, theme
from nojoin.ui.errors import RemoteFailureBox, show_error
from nojoin.ui.import_queue import AUDIO_FILTER, Importer, ImportQueue, dropped_files
from nojoin.ui.library_view import LibraryPanel
from nojoin.ui.meeting_view import MeetingView
from nojoin.ui.options import options_from_settings
from nojoin.ui.processing import ProcessingQueue, ProcessingQueueWidget, format_eta, stage_label
from nojoin.ui.recording import RecordControls, RecorderAdapter
from nojoin.ui.settings_dialog import CloudState, ReprocessDialog, SettingsDialog
from nojoin.ui.tasks import TaskRunner

if TYPE_CHECKING:
    from nojoin.ui.cloud.account_dialog import AccountDialog

log = logging.getLogger(__name__)


class CloudLink(CloudState, Protocol):
    """What the window needs from Cloud Mode (`nojoin.ui.cloud.menu.CloudController`)."""

    def start_upgrade(self) -> AccountDialog:
        """Open the Account dialog and start checkout there (as its Upgrade button does)."""
        ...


class MainWindow(QMainWindow):
    """Nojoin's window. Everything long runs on workers; this class only wires signals."""

    def __init__(
        self,
        library: Library,
        config: ConfigManager,
        queue: ProcessingQueue,
        recorder: RecorderAdapter,
        importer: Importer,
        tasks: TaskRunner,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.library = library
        self.config = config
        self.queue = queue
        self.recorder = recorder
        self.tasks = tasks
        self.imports = ImportQueue(importer, tasks, self)
        self.cloud: CloudLink | None = None
        self.setWindowTitle("Nojoin")
        self.setAcceptDrops(True)
        self.resize(1180, 740)
        self.setMinimumSize(820, 520)

        # Record bar across the top.
        self.record_controls = RecordControls(recorder)
        self.import_button = QPushButton("Import…")
        self.import_button.setToolTip("Add audio or video files (or drop them on the window)")
        self.import_button.clicked.connect(self.import_dialog)
        bar = QFrame()
        bar.setObjectName("recordBar")
        bar_lay = QHBoxLayout(bar)
        bar_lay.setContentsMargins(12, 10, 12, 10)
        bar_lay.setSpacing(12)
        bar_lay.addWidget(self.record_controls, 1)
        bar_lay.addWidget(self.import_button)

        # Library list (left) and meeting view (right).
        self.library_panel = LibraryPanel(library)
        self.meeting_view = MeetingView(library, queue)
        placeholder = QLabel("Select a meeting, record one, or drop an audio file here.")
        placeholder.setObjectName("placeholder")
        placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        placeholder.setWordWrap(True)
        self.detail = QStackedWidget()
        self.detail.addWidget(placeholder)
        self.detail.addWidget(self.meeting_view)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.library_panel)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setSizes([620, 640])
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setHandleWidth(14)

        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(bar)
        body = QWidget()
        body_lay = QVBoxLayout(body)
        body_lay.setContentsMargins(12, 12, 12, 8)
        body_lay.addWidget(self.splitter)
        lay.addWidget(body, 1)
        self.setCentralWidget(central)

        # Processing queue as a bottom dock, shown while there is work.
        self.queue_widget = ProcessingQueueWidget(queue)
        self.queue_dock = QDockWidget("Processing", self)
        self.queue_dock.setObjectName("processingDock")
        self.queue_dock.setWidget(self.queue_widget)
        self.queue_dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetClosable
            | QDockWidget.DockWidgetFeature.DockWidgetMovable
        )
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.queue_dock)
        self.queue_dock.hide()

        # Status bar: what is running (left), account status etc. (right, via add_status_widget).
        self.work_label = QLabel()
        self.statusBar().addWidget(self.work_label, 1)
        self.statusBar().setSizeGripEnabled(False)

        self._build_menus()
        self._wire()
        self.apply_settings(config.settings)
        config.add_listener(self._on_settings_changed)
        self._update_work_label()

    # ------------------------------------------------------------ extension
    def add_menu(self, title: str) -> QMenu:
        """A new top-level menu placed before Help (Cloud Mode adds its menu this way)."""
        menu = QMenu(title, self)
        self.menuBar().insertMenu(self.help_menu.menuAction(), menu)
        return menu

    def add_status_widget(self, widget: QWidget) -> None:
        """A permanent widget on the right of the status bar (e.g. account status)."""
        self.statusBar().addPermanentWidget(widget)

    def attach_cloud(self, cloud: CloudLink) -> None:
        """Cloud Mode is installed: the Settings dialog offers Nojoin Cloud when signed in, and
        a run the cloud refused for the plan offers Upgrade."""
        self.cloud = cloud

    # ---------------------------------------------------------------- set-up
    def _build_menus(self) -> None:
        mb = self.menuBar()
        file_menu = mb.addMenu("&File")
        self.import_action = QAction("&Import Audio…", self)
        self.import_action.setShortcut(QKeySequence.StandardKey.Open)
        self.import_action.triggered.connect(self.import_dialog)
        file_menu.addAction(self.import_action)
        self.record_action = QAction("&Record", self)
        self.record_action.setShortcut(QKeySequence("Ctrl+R"))
        self.record_action.triggered.connect(self.recorder.start)
        file_menu.addAction(self.record_action)
        export_menu = file_menu.addMenu("&Export Transcript")
        self.export_menu = export_menu
        from nojoin.export import FORMATS

        for fmt in FORMATS:
            export_menu.addAction(f"{fmt.upper()}…", self.meeting_view.exporter(fmt))
        # Like the meeting's Export button: only with a transcript to export.
        self._set_export_enabled(False)
        self.meeting_view.exportable_changed.connect(self._set_export_enabled)
        file_menu.addSeparator()
        self.settings_action = QAction("&Settings…", self)
        self.settings_action.setShortcut(QKeySequence("Ctrl+,"))
        self.settings_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        self.settings_action.triggered.connect(self.open_settings)
        file_menu.addAction(self.settings_action)
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self)
        # The standard Quit key is empty on Windows and some Linux desktops.
        quit_keys = QKeySequence.keyBindings(QKeySequence.StandardKey.Quit)
        quit_action.setShortcuts(quit_keys or [QKeySequence("Ctrl+Q")])
        quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)

        view_menu = mb.addMenu("&View")
        view_menu.addAction(self.queue_dock.toggleViewAction())
        find = QAction("&Find", self)
        find.setShortcut(QKeySequence.StandardKey.Find)
        find.triggered.connect(lambda: self.library_panel.search_box.setFocus())
        view_menu.addAction(find)

        self.help_menu = mb.addMenu("&Help")
        about = QAction("&About Nojoin", self)
        about.setMenuRole(QAction.MenuRole.AboutRole)
        about.triggered.connect(self.about)
        self.help_menu.addAction(about)
        logs = QAction("Open &Logs Folder", self)
        logs.triggered.connect(self.open_logs_folder)
        self.help_menu.addAction(logs)

    @Slot(bool)
    def _set_export_enabled(self, enabled: bool) -> None:
        self.export_menu.menuAction().setEnabled(enabled)
        for action in self.export_menu.actions():
            action.setEnabled(enabled)

    def _wire(self) -> None:
        lp, mv, q = self.library_panel, self.meeting_view, self.queue
        lp.meeting_selected.connect(self._on_meeting_selected)
        lp.error.connect(self.show_error)
        mv.error.connect(self.show_error)
        mv.changed.connect(self._on_meeting_changed)
        mv.deleted.connect(self._on_meeting_deleted)
        mv.process_requested.connect(self.process_meeting)
        mv.reprocess_requested.connect(self.reprocess_dialog)
        q.changed.connect(self._on_queue_changed)
        q.item_progress.connect(self._on_item_progress)
        q.item_completed.connect(self._on_item_completed)
        q.item_failed.connect(self._on_item_failed)
        q.item_cancelled.connect(self._on_item_cancelled)
        self.imports.progress.connect(self._on_import_progress)
        self.imports.imported.connect(self._on_imported)
        self.imports.failed.connect(self._on_import_failed)
        self.imports.idle.connect(self._update_work_label)
        self.recorder.finished.connect(self._on_recording_finished)
        self.recorder.start_failed.connect(self.show_error)
        self.recorder.error.connect(lambda msg: self.show_error(NojoinError(msg)))
        self.recorder.device_lost.connect(lambda msg: self.statusBar().showMessage(msg, 10_000))
        self.recorder.state_changed.connect(lambda _s: self._update_work_label())
        self.recorder.state_changed.connect(
            lambda s: self.record_action.setEnabled(s in ("idle", "stopped"))
        )

    # --------------------------------------------------------------- settings
    def apply_settings(self, settings: Settings) -> None:
        app = QApplication.instance()
        if isinstance(app, QApplication):
            theme.apply(app, settings.theme)
        c = theme.colors(settings.theme)
        self.meeting_view.model.set_colors(c["current"], c["current_text"])

    def _on_settings_changed(self, _old: Settings, new: Settings) -> None:
        self.apply_settings(new)

    @Slot()
    def open_settings(self) -> SettingsDialog:
        dialog = SettingsDialog(self.config, self, cloud=self.cloud, tasks=self.tasks)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    # ------------------------------------------------------------- meetings
    @Slot(int)
    def _on_meeting_selected(self, meeting_id: int) -> None:
        if meeting_id < 0:
            self.detail.setCurrentIndex(0)
            self.meeting_view.show_meeting(None)
            return
        self.meeting_view.show_meeting(meeting_id)
        self.detail.setCurrentIndex(1)

    def open_meeting(self, meeting_id: int) -> None:
        if not self.library_panel.select_meeting(meeting_id):
            # Filtered out by a search or tag: clear filters so it can be shown.
            self.library_panel.search_box.clear()
            self.library_panel.tag_filter.setCurrentIndex(0)
            self.library_panel.refresh()
            self.library_panel.select_meeting(meeting_id)

    @Slot(int)
    def _on_meeting_changed(self, _meeting_id: int) -> None:
        self.library_panel.refresh_tags()
        self.library_panel.refresh()

    @Slot(int)
    def _on_meeting_deleted(self, _meeting_id: int) -> None:
        self.detail.setCurrentIndex(0)
        self.library_panel.refresh_tags()
        self.library_panel.refresh()

    # ------------------------------------------------------------ processing
    @Slot(int)
    def process_meeting(
        self,
        meeting_id: int,
        settings: Settings | None = None,
        *,
        mode: str | None = None,
        options: ProcessingOptions | None = None,
    ) -> None:
        """Queue a meeting with the current settings (or the given ones), on this computer or
        Nojoin Cloud as the settings say unless `mode` says otherwise."""
        try:
            meeting = self.library.get_meeting(meeting_id)
        except NojoinError as exc:
            self.show_error(exc)
            return
        if not meeting.audio_path or not Path(meeting.audio_path).is_file():
            self.show_error(
                NojoinError(
                    f"The audio of “{meeting.title}” is missing ({meeting.audio_path or 'no file'}). "
                    "Move the file back, or delete this meeting and import the audio again."
                )
            )
            return
        settings = settings or self.config.settings
        options = options or options_from_settings(settings)
        self.queue.enqueue(
            meeting.id, meeting.title, options, mode=mode or settings.processing_mode
        )
        self.queue_dock.show()

    @Slot(int)
    def reprocess_dialog(self, meeting_id: int) -> ReprocessDialog | None:
        try:
            meeting = self.library.get_meeting(meeting_id)
        except NojoinError as exc:
            self.show_error(exc)
            return None
        dialog = ReprocessDialog(self.config.settings, meeting.title, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.process_meeting(meeting_id, dialog.result_settings))
        dialog.open()
        return dialog

    @Slot()
    def _on_queue_changed(self) -> None:
        # Completed/failed/cancelled handlers reload what changed; this only updates labels.
        self._update_work_label()

    @Slot(int, object)
    def _on_item_progress(self, meeting_id: int, progress: Progress) -> None:
        self.library_panel.model.set_progress_text(
            meeting_id, f"{stage_label(progress.stage)} {int(progress.fraction * 100)}%"
        )
        self._update_work_label()

    @Slot(int)
    def _on_item_completed(self, meeting_id: int) -> None:
        self.library_panel.model.set_progress_text(meeting_id, None)
        self.library_panel.refresh()
        if self.meeting_view.meeting_id == meeting_id:
            self.meeting_view.reload()
        self.statusBar().showMessage("Transcript ready.", 5000)

    @Slot(int, object)
    def _on_item_failed(self, meeting_id: int, exc: BaseException) -> None:
        self.library_panel.model.set_progress_text(meeting_id, None)
        self.library_panel.refresh()
        if self.meeting_view.meeting_id == meeting_id:
            self.meeting_view.reload()
        item = next((it for it in self.queue.items if it.meeting_id == meeting_id), None)
        if isinstance(exc, RemoteError) and item is not None:
            self.show_remote_failure(meeting_id, item.title, item.options, exc)
            return
        title = item.title if item is not None else ""
        self.show_error(exc, headline=f"“{title}” could not be processed." if title else None)

    def show_remote_failure(
        self, meeting_id: int, title: str, options: ProcessingOptions, exc: RemoteError
    ) -> RemoteFailureBox:
        """The cloud refused or failed a meeting: say why, offer to process it here instead
        (same options) and, when the plan is the reason, to upgrade."""
        box = RemoteFailureBox(
            self,
            exc,
            headline=f"“{title}” could not be processed on Nojoin Cloud.",
            can_upgrade=self.cloud is not None,
        )
        box.local_requested.connect(
            lambda: self.process_meeting(meeting_id, mode=ProcessingMode.LOCAL, options=options)
        )
        box.upgrade_requested.connect(lambda: self.upgrade_for(meeting_id, title, options))
        box.open()
        return box

    def upgrade_for(
        self, meeting_id: int, title: str, options: ProcessingOptions
    ) -> AccountDialog | None:
        """Start checkout in the Account dialog; once the plan includes cloud processing, send
        the meeting the cloud refused there again."""
        cloud = self.cloud
        if cloud is None:
            return None
        dialog = cloud.start_upgrade()
        sent = False

        def on_loaded(status: object) -> None:
            from nojoin.cloud.billing_client import AccountStatus  # loaded with the dialog

            nonlocal sent
            if sent or not (isinstance(status, AccountStatus) and status.entitled):
                return
            sent = True
            if self._still_failed(meeting_id) and self.queue.item(meeting_id) is None:
                self.statusBar().showMessage(
                    f"Cloud processing is ready: sending “{title}” to Nojoin Cloud.", 10_000
                )
                self.process_meeting(meeting_id, mode=ProcessingMode.REMOTE, options=options)

        dialog.loaded.connect(on_loaded)
        return dialog

    def _still_failed(self, meeting_id: int) -> bool:
        """Not processed since (e.g. here, with Try again) and not deleted."""
        try:
            return self.library.get_meeting(meeting_id).status is MeetingStatus.ERROR
        except NojoinError:
            return False

    @Slot(int)
    def _on_item_cancelled(self, meeting_id: int) -> None:
        # The pipeline put the meeting back as it was (a cancel is not a failure).
        self.library_panel.model.set_progress_text(meeting_id, None)
        self.library_panel.refresh()
        if self.meeting_view.meeting_id == meeting_id:
            self.meeting_view.reload()
        self.statusBar().showMessage("Processing cancelled.", 5000)

    def _update_work_label(self) -> None:
        parts: list[str] = []
        state = self.recorder.state
        if self.recorder.is_active():
            parts.append(
                {
                    "starting": "Starting recording…",
                    "recording": "● Recording",
                    "paused": "Recording paused",
                    "failed": "Saving recording…",
                    "stopping": "Saving recording…",
                }[state]
            )
        cur = self.queue.current
        if cur is not None:
            p = cur.progress
            parts.append(
                f"{stage_label(p.stage)} “{cur.title}” {int(p.fraction * 100)}% · {format_eta(cur.eta)}"
            )
        waiting = sum(1 for it in self.queue.items if it.state == "queued")
        if waiting:
            parts.append(f"{waiting} waiting")
        if self._import_text:
            parts.append(self._import_text)
        self.work_label.setText("   |   ".join(parts) if parts else "Ready")

    _import_text = ""

    # ---------------------------------------------------------------- import
    @Slot()
    def import_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Import audio or video", str(Path.home()), AUDIO_FILTER
        )
        if files:
            self.import_files([Path(f) for f in files])

    def import_files(self, files: Sequence[Path]) -> None:
        self.imports.add(list(files))
        self._import_text = f"Importing {files[0].name}…" if files else ""
        self._update_work_label()

    @Slot(str, float)
    def _on_import_progress(self, name: str, fraction: float) -> None:
        self._import_text = f"Importing {name} {int(fraction * 100)}%"
        self._update_work_label()

    @Slot(object)
    def _on_imported(self, meeting: Meeting) -> None:
        self._import_text = ""
        self.library_panel.refresh()
        self.open_meeting(meeting.id)
        if self.config.settings.auto_process:
            self.process_meeting(meeting.id)
        self._update_work_label()

    @Slot(str, object)
    def _on_import_failed(self, name: str, exc: BaseException) -> None:
        self._import_text = ""
        self._update_work_label()
        if not isinstance(exc, CancelledError):
            self.show_error(exc, headline=f"{name} could not be imported.")

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        # Refused drags show the "no drop" cursor, rather than an error after the drop.
        files, _others = dropped_files(event.mimeData())
        if files:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        files, others = dropped_files(event.mimeData())
        if not files:
            event.ignore()
            return
        event.acceptProposedAction()
        self.import_files(files)
        if others:
            names = ", ".join(p.name for p in others[:3]) + ("…" if len(others) > 3 else "")
            self.statusBar().showMessage(
                f"Not imported (not audio or video files): {names}.", 10_000
            )

    # ------------------------------------------------------------- recording
    @Slot(object)
    def _on_recording_finished(self, result: object) -> None:
        meeting = getattr(result, "meeting", None)
        if meeting is None:
            if getattr(result, "discarded", False):
                secs = self.config.settings.min_meeting_seconds
                self.statusBar().showMessage(
                    f"Recording discarded: shorter than {secs} s (see Settings).", 8000
                )
            return
        self.library_panel.refresh()
        self.open_meeting(meeting.id)
        if self.recorder.stopped_by_failure:
            why = (
                "its devices were lost"
                if getattr(result, "lost_sources", ())
                else "its audio could not be written"
            )
            length = formatting.clock(float(getattr(result, "duration", 0.0)))
            self.statusBar().showMessage(
                f"The recording stopped because {why}; what was recorded ({length}) is saved "
                f"as “{meeting.title}”.",
                30_000,
            )
        else:
            self.statusBar().showMessage(f"Saved “{meeting.title}”.", 5000)
        if self.config.settings.auto_process:
            self.process_meeting(meeting.id)

    # ------------------------------------------------------------ start-up
    def offer_retry_interrupted(self) -> None:
        """Meetings a crash left in `processing`: offer to process them again."""
        try:
            stuck = self.library.interrupted()
        except NojoinError as exc:
            self.show_error(exc)
            return
        stuck = [m for m in stuck if self.queue.item(m.id) is None]
        if not stuck:
            return
        # Whatever the answer, they are no longer being processed.
        self.library.mark_interrupted([m.id for m in stuck])
        names = "\n".join(f"• {m.title}" for m in stuck[:8])
        more = f"\n…and {len(stuck) - 8} more" if len(stuck) > 8 else ""
        answer = QMessageBox.question(
            self,
            "Processing was interrupted",
            f"Nojoin was closed while processing:\n\n{names}{more}\n\nProcess them again now?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.Yes,
        )
        self.library_panel.refresh()
        if answer == QMessageBox.StandardButton.Yes:
            for m in stuck:
                self.process_meeting(m.id)

    # ------------------------------------------------------------------ misc
    def show_error(self, exc: BaseException | str, headline: str | None = None) -> QMessageBox:
        if isinstance(exc, BaseException):
            log.warning("showing error: %s", exc)
        return show_error(self, exc, headline=headline)

    @Slot()
    def about(self) -> QMessageBox:
        """The About box (non-blocking, like the error boxes; deleted when closed)."""
        box = QMessageBox(self)
        box.setObjectName("aboutBox")
        box.setWindowTitle("About Nojoin")
        box.setIconPixmap(self.windowIcon().pixmap(64, 64))
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(
            f"<h3>Nojoin {__version__}</h3>"
            "<p>Records meetings (microphone and system audio), transcribes them and tells "
            "who spoke when — on your own computer.</p>"
            f"<p>Your meetings are stored in:<br><code>{paths.data_dir()}</code></p>"
        )
        box.setStandardButtons(QMessageBox.StandardButton.Ok)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        return box

    @Slot()
    def open_logs_folder(self) -> bool:
        folder = paths.logs_dir()
        ok = QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
        if not ok:
            self.show_error(
                NojoinError(f"Could not open a file manager. The logs are in {folder}.")
            )
        return bool(ok)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if self.recorder.state in ("failed", "stopping"):
            # Nothing left to decide: a failed recording cannot go on, and its audio is saved
            # as a meeting (as after Stop); shutdown() waits for the save to finish.
            self.recorder.stop()
        elif self.recorder.is_active():
            answer = QMessageBox.question(
                self,
                "Recording in progress",
                "A recording is running. Stop and save it, then quit?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
            self.recorder.stop()
        if self.queue.is_busy():
            answer = QMessageBox.question(
                self,
                "Processing in progress",
                "Meetings are still being processed. Quit anyway? They can be processed again later.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Cancel work and wait for worker threads so nothing runs after the window is gone."""
        self.config.remove_listener(self._on_settings_changed)
        self.imports.cancel_all()
        self.queue.cancel_all()
        self.queue.wait_idle(15_000)
        self.meeting_view.player_bar.stop()
        self.tasks.wait(5_000)
