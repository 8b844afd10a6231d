"""Error dialogs that say what happened and what to do, and the unhandled-exception hook.

A failed run on Nojoin Cloud gets `RemoteFailureBox`: the server's message plus a way forward
(process the meeting on this computer instead; upgrade when the plan does not include it).
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta
from types import TracebackType

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QAbstractButton, QApplication, QMessageBox, QPushButton, QWidget

from nojoin import paths
from nojoin.errors import (
    AudioError,
    CancelledError,
    LibraryError,
    ModelNotFoundError,
    NojoinError,
    ProcessingError,
)
from nojoin.processing.strategies.remote_errors import (
    QuotaExceededError,
    RemoteAuthError,
    RemoteError,
    SubscriptionRequiredError,
)
from nojoin.ui.tasks import TaskRunner

log = logging.getLogger(__name__)


def describe(exc: BaseException) -> tuple[str, str]:
    """(headline, what to do) for an error a user sees."""
    if isinstance(exc, SubscriptionRequiredError):
        return "Cloud processing is not included in your plan.", str(exc)
    if isinstance(exc, QuotaExceededError):
        return "Your cloud processing allowance is used up.", f"{exc}\n\n{retry_hint(exc)}"
    if isinstance(exc, RemoteAuthError):
        return "Sign in to Nojoin Cloud to process meetings there.", str(exc)
    if isinstance(exc, RemoteError):
        return "Nojoin Cloud could not process this meeting.", str(exc)
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


def retry_hint(exc: QuotaExceededError, now: datetime | None = None) -> str:
    """When cloud processing can be tried again, from the server's Retry-After."""
    seconds = exc.retry_after
    if seconds is None or seconds <= 0:
        return "Try Nojoin Cloud again later."
    minutes = max(1, math.ceil(seconds / 60))
    if minutes < 60:
        wait = "about a minute" if minutes == 1 else f"{minutes} min"
    else:
        hours, rest = divmod(minutes, 60)
        wait = f"{hours} h {rest} min" if rest else f"{hours} h"
    wait = wait.replace(" ", "\u00a0")  # never broken across lines
    at = (now or datetime.now()).astimezone() + timedelta(seconds=seconds)
    when = f"{at:%H:%M}" if seconds < 20 * 3600 else f"{at:%d %b, %H:%M}"
    return f"Nojoin Cloud takes new meetings again in {wait} (at {when})."


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
    _prepare(box, title, headline or head, body, details)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.open()
    return box


def _prepare(box: QMessageBox, title: str, head: str, body: str, details: str = "") -> None:
    box.setObjectName("errorBox")
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    box.setText(head)
    box.setInformativeText(body)
    if details:
        box.setDetailedText(details)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)


class RemoteFailureBox(QMessageBox):
    """A meeting could not be processed on Nojoin Cloud: the server's message (and, for a
    quota, when to try again) with buttons "Upgrade…" (only for a plan without cloud
    processing, and only when there is an account to upgrade), "Process on this computer" and
    Cancel. Non-blocking (window-modal), deleted when closed.

    Signals:
        local_requested(): the user chose to process the meeting on this computer.
        upgrade_requested(): the user chose Upgrade.
    """

    local_requested = Signal()
    upgrade_requested = Signal()

    def __init__(
        self,
        parent: QWidget | None,
        exc: RemoteError,
        *,
        headline: str | None = None,
        can_upgrade: bool = False,
        title: str = "Nojoin",
    ) -> None:
        super().__init__(parent)
        head, body = describe(exc)
        _prepare(self, title, headline or head, body)
        self.error = exc
        self.upgrade_button: QPushButton | None = None
        if can_upgrade and isinstance(exc, SubscriptionRequiredError):
            self.upgrade_button = self.addButton("Upgrade…", QMessageBox.ButtonRole.ActionRole)
            self.upgrade_button.setToolTip("Opens secure checkout in your web browser")
        self.local_button = self.addButton(
            "Process on this computer", QMessageBox.ButtonRole.AcceptRole
        )
        self.local_button.setToolTip("Transcribe this meeting here, without uploading it")
        self.cancel_button = self.addButton(QMessageBox.StandardButton.Cancel)
        self.setDefaultButton(self.upgrade_button or self.local_button)
        self.setEscapeButton(self.cancel_button)
        self.buttonClicked.connect(self._clicked)

    def _clicked(self, button: QAbstractButton) -> None:
        if button is self.local_button:
            self.local_requested.emit()
        elif self.upgrade_button is not None and button is self.upgrade_button:
            self.upgrade_requested.emit()


class ExceptionHook:
    """sys.excepthook / threading.excepthook: log every unhandled exception and show it.

    Widgets are only touched on the UI thread: exceptions from other threads travel there
    with the app's task runner (`TaskRunner.post`).
    """

    def __init__(self, parent_getter: Callable[[], QWidget | None], tasks: TaskRunner) -> None:
        self._parent_getter = parent_getter
        self._tasks = tasks
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
        self._tasks.post(self._show, exc)

    def _thread_hook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None:
            return
        self._hook(args.exc_type, args.exc_value, args.exc_traceback)

    def _show(self, exc: BaseException) -> None:
        self.shown += 1
        show_error(self._parent_getter(), exc)
