"""Error dialogs that say what happened and what to do, and the unhandled-exception hook."""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Callable
from types import TracebackType

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from nojoin import paths
from nojoin.errors import (
    AudioError,
    CancelledError,
    LibraryError,
    ModelNotFoundError,
    NojoinError,
    ProcessingError,
)

log = logging.getLogger(__name__)


def describe(exc: BaseException) -> tuple[str, str]:
    """(headline, what to do) for an error a user sees."""
    if isinstance(exc, ModelNotFoundError):
        return "The speech model is not available.", str(exc)
    if isinstance(exc, AudioError):
        return "The audio could not be used.", str(exc)
    if isinstance(exc, LibraryError):
        return "The meeting library had a problem.", str(exc)
    if isinstance(exc, CancelledError):
        return "Cancelled.", str(exc)
    if type(exc) in (NojoinError, ProcessingError):
        # Generic errors (often an unexpected failure wrapped by the pipeline): point to the log.
        return (
            "Something went wrong.",
            f"{exc}\n\nDetails are in the log file (Help → Open Logs Folder).",
        )
    if isinstance(exc, NojoinError):
        return "Something went wrong.", str(exc)
    return (
        "Something unexpected went wrong.",
        f"{type(exc).__name__}: {exc}\n\nYour meetings are safe. If this happens again, please "
        f"report it with the log file from Help → Open Logs Folder ({_logs_hint()}).",
    )


def _logs_hint() -> str:
    try:
        return str(paths.logs_dir())
    except NojoinError:
        return "the logs folder"


def show_error(
    parent: QWidget | None,
    exc: BaseException | str,
    *,
    title: str = "Nojoin",
    headline: str | None = None,
) -> QMessageBox:
    """Show a non-blocking (window-modal) error box and return it."""
    if isinstance(exc, BaseException):
        head, body = describe(exc)
        details = (
            "".join(traceback.format_exception(exc)) if not isinstance(exc, NojoinError) else ""
        )
    else:
        head, body, details = "Something went wrong.", exc, ""
    box = QMessageBox(parent)
    box.setObjectName("errorBox")
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    box.setText(headline or head)
    box.setInformativeText(body)
    if details:
        box.setDetailedText(details)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    box.open()
    return box


class _Relay(QObject):
    """Carries exceptions from any thread to the UI thread."""

    raised = Signal(object)


class ExceptionHook:
    """sys.excepthook / threading.excepthook: log every unhandled exception and show it.

    Widgets are only touched on the UI thread: exceptions from other threads travel there
    through a queued signal.
    """

    def __init__(self, parent_getter: Callable[[], QWidget | None]) -> None:
        self._parent_getter = parent_getter
        self._relay = _Relay()
        self._relay.raised.connect(self._show, Qt.ConnectionType.QueuedConnection)
        self._previous = sys.excepthook
        self._previous_thread = threading.excepthook
        self.shown = 0
        self._installed = False

    def install(self) -> None:
        self._previous = sys.excepthook
        self._previous_thread = threading.excepthook
        sys.excepthook = self._hook
        threading.excepthook = self._thread_hook
        self._installed = True

    def uninstall(self) -> None:
        if self._installed:
            sys.excepthook = self._previous
            threading.excepthook = self._previous_thread
            self._installed = False

    def _hook(
        self,
        exc_type: type[BaseException],
        exc: BaseException,
        tb: TracebackType | None,
    ) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            QApplication.quit()
            return
        log.error("unhandled exception", exc_info=(exc_type, exc, tb))
        if exc.__traceback__ is None and tb is not None:
            exc = exc.with_traceback(tb)
        self._relay.raised.emit(exc)

    def _thread_hook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None:
            return
        self._hook(args.exc_type, args.exc_value, args.exc_traceback)

    def _show(self, exc: BaseException) -> None:
        self.shown += 1
        show_error(self._parent_getter(), exc)
