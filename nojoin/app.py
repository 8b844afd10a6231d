"""The composition root: builds the library, config, task runner, pipeline (with the remote
connection its cloud strategy uses), recorder and importer, then the window, and after the
first frame the Cloud Mode `CloudManager`; then runs the Qt event loop. `nojoin` with no
arguments calls `run()`. Nothing else creates services or sets globals.

Nothing heavy is imported here: torch/faster-whisper load in the engine's child process when
processing starts, soundcard when recording starts, the HTTP client when Cloud Mode starts.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from nojoin import __version__
from nojoin.cloud.connection import CloudConnection  # Qt-free; no HTTP client imported
from nojoin.config import ConfigManager, LocalConfigRepository
from nojoin.library import Library
from nojoin.models import Meeting
from nojoin.processing.contract import CancelToken, ProcessingOptions, ProgressCallback
from nojoin.ui.errors import ExceptionHook
from nojoin.ui.main_window import MainWindow
from nojoin.ui.processing import ProcessingQueue
from nojoin.ui.recording import RecorderAdapter, RecorderFactory, RecorderLike
from nojoin.ui.tasks import TaskRunner

if TYPE_CHECKING:
    from nojoin.cloud.manager import CloudManager
    from nojoin.processing.pipeline import Pipeline
    from nojoin.ui.cloud import CloudController

log = logging.getLogger(__name__)


class LazyPipeline:
    """Builds the real Pipeline on first use (on the worker thread), so start-up does not import
    the audio decoder and numpy before the window is visible."""

    def __init__(
        self,
        library: Library,
        pipeline: Pipeline | None = None,
        *,
        remote_connection: CloudConnection | None = None,
    ) -> None:
        self._library = library
        self._pipeline = pipeline
        self._remote_connection = remote_connection
        self._lock = threading.Lock()

    def get(self) -> Pipeline:
        with self._lock:
            if self._pipeline is None:
                from nojoin.processing.pipeline import Pipeline

                # The mode is only the default: every queued run passes its own (run_meeting).
                self._pipeline = Pipeline(self._library, remote_connection=self._remote_connection)
            return self._pipeline

    def close(self) -> None:
        with self._lock:
            if self._pipeline is not None:
                self._pipeline.close()


@dataclass
class App:
    """Everything the composition root built, so tests and benchmarks can reach it."""

    qt: QApplication
    config: ConfigManager
    library: Library
    tasks: TaskRunner
    pipeline: LazyPipeline
    queue: ProcessingQueue
    recorder: RecorderAdapter
    window: MainWindow
    hook: ExceptionHook
    cloud: CloudManager | None = None
    """Cloud Mode's manager once `install_cloud()` built it (the remote connection reads it)."""

    def install_cloud(self, manager: CloudManager | None = None) -> CloudController:
        """Cloud Mode: build the app's `CloudManager` (the documented module singleton, over
        this app's task runner), route settings through it, add the Cloud menu and account
        status, and resume a stored session in the background. Remote processing reaches the
        signed-in session through the pipeline's connection, which reads `self.cloud`.

        `run()` calls this right after the window is first shown: it imports the HTTP client
        and resumes a stored session, which would otherwise delay the first frame. Tests may
        pass their own manager.
        """
        from nojoin.cloud import manager as cloud_manager
        from nojoin.ui.cloud import CloudController

        manager = manager or cloud_manager.init(tasks=self.tasks)
        manager.attach_config(self.config)
        manager.backups.library_path = self.library.path
        controller = CloudController(self.window, manager)
        self.window.attach_cloud(controller)
        manager.library_restored.connect(lambda _report: self.window.library_panel.refresh())
        self.qt.aboutToQuit.connect(manager.shutdown)
        self.window.destroyed.connect(lambda *_: manager.shutdown())
        self.cloud = manager
        manager.start()
        return controller

    def warm_up(self) -> threading.Thread:
        """Import the engine client (PyAV, numpy, the pipeline) on a background thread.

        `run()` calls this once the window is up: otherwise the first file processed pays for
        these imports on the processing thread, and their C initialisers hold the GIL long
        enough (30-60 ms on 2 cores) to stall the UI just as processing starts.
        """

        def work() -> None:
            try:
                import av  # noqa: F401  (imported lazily by the decoder: ~90 ms holding the GIL)

                import nojoin.processing.pipeline  # noqa: F401
                import nojoin.processing.strategies.local_strategy  # noqa: F401
            except Exception:  # the first real use reports the same error properly
                log.warning("could not preload the processing engine client", exc_info=True)

        thread = threading.Thread(target=work, name="nojoin-warm-up", daemon=True)
        thread.start()
        self._warm_up = thread
        return thread

    def close(self) -> None:
        warm = getattr(self, "_warm_up", None)
        if warm is not None:
            warm.join(timeout=10)  # no import left running while the interpreter shuts down
        self.window.shutdown()
        if self.cloud is not None:
            self.cloud.shutdown()
        self.tasks.shutdown(15_000)
        self.hook.uninstall()
        self.pipeline.close()
        self.library.close()


def qt_application(argv: Sequence[str] | None = None) -> QApplication:
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    app = QApplication(list(argv) if argv is not None else sys.argv[:1])
    app.setApplicationName("Nojoin")
    app.setOrganizationName("Nojoin")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("nojoin")
    app.setWindowIcon(QIcon.fromTheme("audio-input-microphone"))
    return app


def build(
    *,
    config: ConfigManager | None = None,
    library: Library | None = None,
    pipeline: Pipeline | None = None,
    recorder_factory: RecorderFactory | None = None,
    install_excepthook: bool = True,
) -> App:
    """Build the services and the main window (not shown). Arguments replace the defaults
    (tests pass a throw-away library, a pipeline with a test strategy, a fake recorder)."""
    qt = qt_application()
    config = config or ConfigManager(LocalConfigRepository())
    settings = config.settings
    if settings.data_folder and "NOJOIN_DATA_DIR" not in os.environ:
        os.environ["NOJOIN_DATA_DIR"] = str(Path(settings.data_folder).expanduser())
    library = library or Library()
    tasks = TaskRunner()
    app: App | None = None

    def cloud_session() -> CloudManager | None:
        return app.cloud if app is not None else None

    lazy = LazyPipeline(library, pipeline, remote_connection=CloudConnection(cloud_session))

    def run_meeting(
        meeting_id: int,
        options: ProcessingOptions,
        progress: ProgressCallback,
        cancel: CancelToken,
        mode: str,
    ) -> object:
        # Each run names its mode (the Settings choice, or "local" when the user chose to
        # process a meeting on this computer after the cloud refused it); the Pipeline builds
        # and keeps one strategy per mode, the remote one over the connection built above.
        try:
            runner = lazy.get()
        except Exception as exc:  # the engine client could not load: the meeting failed
            library.processing_failed(meeting_id, str(exc))
            raise
        return runner.process_meeting(meeting_id, options, progress, cancel, mode=mode)

    queue = ProcessingQueue(run_meeting, tasks)

    def make_recorder(listener: object) -> RecorderLike:
        from nojoin.audio.recorder import Recorder

        s = config.settings
        return Recorder(
            mic=s.mic_device or None,
            speaker=s.speaker_device or None,
            min_duration=float(s.min_meeting_seconds),
            listener=listener,  # type: ignore[arg-type]
            store=library,
        )

    recorder = RecorderAdapter(recorder_factory or make_recorder, tasks)

    def import_one(path: Path, progress: ProgressCallback, cancel: CancelToken) -> Meeting:
        from nojoin.audio.importer import import_file

        result = import_file(path, store=library, progress=progress, cancel=cancel)
        assert result.meeting is not None
        return result.meeting

    window = MainWindow(library, config, queue, recorder, import_one, tasks)
    hook = ExceptionHook(lambda: window, tasks)
    if install_excepthook:
        hook.install()
    app = App(qt, config, library, tasks, lazy, queue, recorder, window, hook)
    return app


def recover_recordings(library: Library) -> list[Meeting]:
    """Turn recordings a crash interrupted into library meetings (titled and stored as
    `nojoin record` stores the ones it recovers: `save_recording`)."""
    from nojoin.audio.recovery import find_interrupted, recover
    from nojoin.audio.saving import save_recording

    meetings: list[Meeting] = []
    for entry in find_interrupted():
        try:
            rec = recover(entry)
        except Exception:
            log.exception("could not recover the recording %s", entry.partial_path)
            continue
        if rec.path is None:
            continue
        meetings.append(save_recording(library, rec))
    return meetings


def startup_tasks(app: App) -> None:
    """After the window is visible: rescue crashed recordings, offer to retry processing."""
    try:
        recovered = recover_recordings(app.library)
    except Exception as exc:
        log.exception("recording recovery failed")
        app.window.show_error(exc)
        recovered = []
    if recovered:
        app.window.library_panel.refresh()
        n = len(recovered)
        app.window.statusBar().showMessage(
            f"Recovered {n} recording{'s' if n != 1 else ''} interrupted by a crash.", 15_000
        )
    app.window.offer_retry_interrupted()


def run(argv: Sequence[str] | None = None) -> int:
    """Start the desktop app and block until it quits; returns the exit code."""
    from nojoin.log import setup_logging

    setup_logging()
    qt_application(argv)  # Qt's own options (-platform, -style...) from the command line
    app = build()
    app.window.show()
    QTimer.singleShot(0, app.install_cloud)
    QTimer.singleShot(0, lambda: startup_tasks(app))
    QTimer.singleShot(0, app.warm_up)
    try:
        code = app.qt.exec()
    finally:
        app.close()
    return int(code)
