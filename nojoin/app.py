"""The composition root: builds the library, config, pipeline, recorder and importer, then the
window, and runs the Qt event loop. `nojoin` with no arguments calls `run()`.

Nothing heavy is imported here: torch/faster-whisper load in the engine's child process when
processing starts, soundcard when recording starts.
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
from nojoin.config import ConfigManager, LocalConfigRepository
from nojoin.library import Library
from nojoin.models import Meeting
from nojoin.processing.contract import (
    CancelToken,
    ProcessingOptions,
    Progress,
    ProgressCallback,
)
from nojoin.ui.errors import ExceptionHook
from nojoin.ui.main_window import MainWindow
from nojoin.ui.processing import ProcessingQueue
from nojoin.ui.recording import RecorderAdapter, RecorderFactory, RecorderLike

if TYPE_CHECKING:
    from nojoin.processing.pipeline import Pipeline

log = logging.getLogger(__name__)


class LazyPipeline:
    """Builds the real Pipeline on first use (on the worker thread), so start-up does not import
    the audio decoder and numpy before the window is visible."""

    def __init__(self, library: Library, pipeline: Pipeline | None = None) -> None:
        self._library = library
        self._pipeline = pipeline
        self._lock = threading.Lock()

    def get(self) -> Pipeline:
        with self._lock:
            if self._pipeline is None:
                from nojoin.processing.pipeline import Pipeline

                # Only the default: every queued run passes its own mode (see run_meeting).
                self._pipeline = Pipeline(self._library, mode="local")
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
    pipeline: LazyPipeline
    queue: ProcessingQueue
    recorder: RecorderAdapter
    window: MainWindow
    hook: ExceptionHook

    def install_cloud(self) -> None:
        """Cloud menu, account status and settings sync (Cloud Mode).

        `run()` calls this right after the window is first shown: it imports the HTTP client
        and resumes a stored session, which would otherwise delay the first frame.
        """
        from nojoin.ui.cloud import install_cloud

        install_cloud(self.window, self.config, self.library.path)

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
        self.hook.uninstall()
        self.pipeline.close()
        self.library.close()


class _TokenEvent(threading.Event):
    """A threading.Event view of a CancelToken (the importer polls `is_set()`)."""

    def __init__(self, token: CancelToken) -> None:
        super().__init__()
        self._token = token

    def is_set(self) -> bool:
        return self._token.cancelled


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
    lazy = LazyPipeline(library, pipeline)

    def run_meeting(
        meeting_id: int,
        options: ProcessingOptions,
        progress: ProgressCallback,
        cancel: CancelToken,
        mode: str,
    ) -> object:
        # Each run names its mode (the Settings choice, or "local" when the user chose to
        # process a meeting on this computer after the cloud refused it); the Pipeline builds
        # and keeps one strategy per mode, the remote one over the signed-in session that
        # Cloud Mode installs with `remote_strategy.set_default_connection`.
        return lazy.get().process_meeting(meeting_id, options, progress, cancel, mode=mode)

    queue = ProcessingQueue(run_meeting)

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

    recorder = RecorderAdapter(recorder_factory or make_recorder)

    def import_one(path: Path, progress: ProgressCallback, cancel: CancelToken) -> Meeting:
        from nojoin.audio.importer import import_file

        result = import_file(
            path,
            store=library,
            progress=lambda f: progress(Progress("importing", f)),
            cancel=_TokenEvent(cancel),
        )
        assert result.meeting is not None
        return result.meeting

    window = MainWindow(library, config, queue, recorder, import_one)
    hook = ExceptionHook(lambda: window)
    if install_excepthook:
        hook.install()
    return App(qt, config, library, lazy, queue, recorder, window, hook)


def recover_recordings(library: Library) -> list[Meeting]:
    """Turn recordings a crash interrupted into library meetings (titled and stored as
    `nojoin record` stores the ones it recovers: `save_recovered`)."""
    from nojoin.audio.recovery import find_interrupted, recover, save_recovered

    meetings: list[Meeting] = []
    for entry in find_interrupted():
        try:
            rec = recover(entry)
        except Exception:
            log.exception("could not recover the recording %s", entry.partial_path)
            continue
        if rec.path is None:
            continue
        meetings.append(save_recovered(library, rec))
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
