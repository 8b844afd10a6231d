"""Sign in, Create account and Reset password dialogs.

Each request runs on the cloud manager's worker thread; the dialog stays responsive, shows
what it is doing, and shows the server's answer (or what is wrong with the input) inline.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from nojoin.cloud.auth_service import (
    MIN_PASSWORD_LENGTH,
    Account,
    validate_email,
    validate_password,
)
from nojoin.cloud.manager import CloudManager
from nojoin.errors import NojoinError
from nojoin.ui.cloud.common import BusyStrip, MessageLabel, heading
from nojoin.ui.tasks import Task

log = logging.getLogger(__name__)


def _link_button(text: str) -> QPushButton:
    button = QPushButton(text)
    button.setFlat(True)
    button.setCursor(Qt.CursorShape.PointingHandCursor)
    button.setObjectName("linkButton")
    button.setStyleSheet(
        "QPushButton#linkButton { border: none; padding: 2px 0; color: palette(link); "
        "background: transparent; text-align: left; }"
        "QPushButton#linkButton:hover { text-decoration: underline; }"
    )
    return button


class _CloudDialog(QDialog):
    """A form that runs one request at a time and never blocks the event loop."""

    def __init__(self, manager: CloudManager, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.manager = manager
        self.task: Task | None = None
        self.setWindowTitle(title)
        self.setMinimumWidth(420)
        # Visible field outlines in both themes (the dark palette's base is close to the
        # window colour, so borderless fields looked like plain text).
        self.setStyleSheet(
            "QLineEdit { border: 1px solid palette(mid); border-radius: 6px; padding: 5px 7px;"
            " background: palette(base); }"
            "QLineEdit:focus { border-color: palette(highlight); }"
        )
        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(22, 20, 22, 18)
        self.layout_.setSpacing(12)
        self.form = QFormLayout()
        self.form.setHorizontalSpacing(12)
        self.form.setVerticalSpacing(10)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        self.message = MessageLabel()
        self.busy = BusyStrip()
        self.buttons = QDialogButtonBox()
        # A text button: the style's Cancel icon looked out of place next to the primary one.
        self.cancel_button = self.buttons.addButton(
            "Cancel", QDialogButtonBox.ButtonRole.RejectRole
        )
        self.cancel_button.clicked.connect(self.reject)

    def _primary(self, text: str) -> QPushButton:
        button = self.buttons.addButton(text, QDialogButtonBox.ButtonRole.AcceptRole)
        button.setObjectName("primaryButton")
        button.setDefault(True)
        button.clicked.connect(self.submit)
        return button

    @property
    def inputs(self) -> list[QWidget]:
        return []

    @property
    def is_busy(self) -> bool:
        return self.task is not None

    def submit(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _start(self, task: Task, text: str) -> None:
        self.task = task
        self.message.clear_message()
        self.busy.start(text)
        for widget in (*self.inputs, *self.buttons.buttons()):
            if widget is not self.cancel_button:
                widget.setEnabled(False)
        task.completed.connect(self._completed)
        task.failed.connect(self._failed)

    def _stop(self) -> None:
        self.task = None
        self.busy.stop()
        for widget in (*self.inputs, *self.buttons.buttons()):
            widget.setEnabled(True)

    def _completed(self, result: Any) -> None:
        self._stop()
        self.succeeded(result)

    def _failed(self, error: NojoinError) -> None:
        self._stop()
        self.message.show_error(str(error))

    def succeeded(self, result: Any) -> None:  # noqa: ARG002 (subclasses read it)
        self.accept()

    def invalid(self, text: str, field: QLineEdit | None = None) -> None:
        self.message.show_error(text)
        if field is not None:
            field.setFocus()
            field.selectAll()


class LoginDialog(_CloudDialog):
    """Email + password. Signals `register_requested` / `reset_requested(email)` for the
    links (the Cloud menu opens those dialogs)."""

    register_requested = Signal()
    reset_requested = Signal(str)

    def __init__(self, manager: CloudManager, parent: QWidget | None = None) -> None:
        super().__init__(manager, "Sign in to Nojoin Cloud", parent)
        self.layout_.addWidget(
            heading(
                "Sign in to Nojoin Cloud",
                "Keep your settings in sync and back up your meeting library. "
                "Everything keeps working on this computer without an account.",
            )
        )
        self.email = QLineEdit()
        self.email.setPlaceholderText("name@example.com")
        self.email.setObjectName("email")
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setObjectName("password")
        self.form.addRow("Email", self.email)
        self.form.addRow("Password", self.password)
        self.layout_.addLayout(self.form)
        links = QHBoxLayout()
        self.forgot_link = _link_button("Forgot your password?")
        self.forgot_link.clicked.connect(self._forgot)
        self.register_link = _link_button("Create an account")
        self.register_link.clicked.connect(self._register)
        links.addWidget(self.forgot_link)
        links.addStretch(1)
        links.addWidget(self.register_link)
        self.layout_.addLayout(links)
        self.layout_.addWidget(self.message)
        self.layout_.addWidget(self.busy)
        self.layout_.addStretch(1)
        self.submit_button = self._primary("Sign in")
        self.layout_.addWidget(self.buttons)
        self.account: Account | None = None

    @property
    def inputs(self) -> list[QWidget]:
        return [self.email, self.password, self.forgot_link, self.register_link]

    def submit(self) -> None:
        if self.is_busy:
            return
        try:
            email = validate_email(self.email.text())
        except NojoinError as exc:
            self.invalid(str(exc), self.email)
            return
        if not self.password.text():
            self.invalid("Enter your password.", self.password)
            return
        self._start(self.manager.sign_in(email, self.password.text()), "Signing in…")

    def succeeded(self, result: Any) -> None:
        self.account, _sync = result
        self.password.clear()
        self.accept()

    def _forgot(self) -> None:
        self.reset_requested.emit(self.email.text().strip())
        self.reject()

    def _register(self) -> None:
        self.register_requested.emit()
        self.reject()


class RegisterDialog(_CloudDialog):
    def __init__(self, manager: CloudManager, parent: QWidget | None = None) -> None:
        super().__init__(manager, "Create a Nojoin Cloud account", parent)
        self.layout_.addWidget(
            heading(
                "Create your Nojoin Cloud account",
                "Your recordings stay on this computer; the account syncs settings and "
                "stores the backups you make.",
            )
        )
        self.email = QLineEdit()
        self.email.setPlaceholderText("name@example.com")
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText(f"At least {MIN_PASSWORD_LENGTH} characters")
        self.confirm = QLineEdit()
        self.confirm.setEchoMode(QLineEdit.EchoMode.Password)
        self.form.addRow("Email", self.email)
        self.form.addRow("Password", self.password)
        self.form.addRow("Repeat password", self.confirm)
        self.layout_.addLayout(self.form)
        self.layout_.addWidget(self.message)
        self.layout_.addWidget(self.busy)
        self.layout_.addStretch(1)
        self.submit_button = self._primary("Create account")
        self.layout_.addWidget(self.buttons)
        self.account: Account | None = None
        self.needs_confirmation = False

    @property
    def inputs(self) -> list[QWidget]:
        return [self.email, self.password, self.confirm]

    def submit(self) -> None:
        if self.is_busy:
            return
        try:
            email = validate_email(self.email.text())
        except NojoinError as exc:
            self.invalid(str(exc), self.email)
            return
        try:
            validate_password(self.password.text())
        except NojoinError as exc:
            self.invalid(str(exc), self.password)
            return
        if self.confirm.text() != self.password.text():
            self.invalid("The two passwords are not the same. Type them again.", self.confirm)
            return
        self._start(self.manager.sign_up(email, self.password.text()), "Creating your account…")

    def succeeded(self, result: Any) -> None:
        account, _sync = result
        self.password.clear()
        self.confirm.clear()
        if account is None:
            # The server wants the address confirmed before the first sign-in.
            self.needs_confirmation = True
            self.message.show_info(
                f"Almost done: open the link we sent to {self.email.text().strip()}, then sign in."
            )
            self.submit_button.hide()
            self.cancel_button.setText("Close")
            return
        self.account = account
        self.accept()


class PasswordResetDialog(_CloudDialog):
    """Step 1: email -> the server mails a code. Step 2: code + new password -> signed in."""

    def __init__(
        self, manager: CloudManager, email: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(manager, "Reset your password", parent)
        self.layout_.addWidget(
            heading(
                "Reset your password",
                "Enter the email address of your account. We will email you a code to choose "
                "a new password.",
            )
        )
        self.email = QLineEdit(email)
        self.email.setPlaceholderText("name@example.com")
        self.form.addRow("Email", self.email)
        self.layout_.addLayout(self.form)
        # One form for both steps, so the fields line up; step 2's rows appear after sending.
        self.code = QLineEdit()
        self.code.setPlaceholderText("6-digit code from the email")
        self.new_password = QLineEdit()
        self.new_password.setEchoMode(QLineEdit.EchoMode.Password)
        self.new_password.setPlaceholderText(f"At least {MIN_PASSWORD_LENGTH} characters")
        self.confirm = QLineEdit()
        self.confirm.setEchoMode(QLineEdit.EchoMode.Password)
        self.form.addRow("Code", self.code)
        self.form.addRow("New password", self.new_password)
        self.form.addRow("Repeat password", self.confirm)
        self._set_step2_visible(False)
        self.layout_.addWidget(self.message)
        self.layout_.addWidget(self.busy)
        self.layout_.addStretch(1)
        self.submit_button = self._primary("Send code")
        self.layout_.addWidget(self.buttons)
        self.sent = False
        self.account: Account | None = None

    @property
    def inputs(self) -> list[QWidget]:
        return [self.email, self.code, self.new_password, self.confirm]

    @property
    def step2_visible(self) -> bool:
        return self.code.isVisibleTo(self)

    def _set_step2_visible(self, visible: bool) -> None:
        for field in (self.code, self.new_password, self.confirm):
            self.form.setRowVisible(field, visible)

    def submit(self) -> None:
        if self.is_busy:
            return
        try:
            email = validate_email(self.email.text())
        except NojoinError as exc:
            self.invalid(str(exc), self.email)
            return
        if not self.sent:
            self._start(self.manager.reset_password(email), "Sending…")
            return
        if not self.code.text().strip():
            self.invalid("Enter the code from the email.", self.code)
            return
        try:
            validate_password(self.new_password.text())
        except NojoinError as exc:
            self.invalid(str(exc), self.new_password)
            return
        if self.confirm.text() != self.new_password.text():
            self.invalid("The two passwords are not the same. Type them again.", self.confirm)
            return
        self._start(
            self.manager.complete_password_reset(email, self.code.text(), self.new_password.text()),
            "Setting the new password…",
        )

    def succeeded(self, result: Any) -> None:
        if not self.sent:
            self.sent = True
            self.email.setReadOnly(True)
            self._set_step2_visible(True)
            self.submit_button.setText("Set new password")
            self.message.show_info(
                f"If an account exists for {self.email.text().strip()}, a code is on its way. "
                "Enter it below with your new password (check the spam folder too)."
            )
            self.code.setFocus()
            return
        self.account, _sync = result
        self.new_password.clear()
        self.confirm.clear()
        self.accept()
