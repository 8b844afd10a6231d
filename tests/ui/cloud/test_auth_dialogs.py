"""Sign-in, create-account and reset dialogs: validation, errors shown, and the event loop keeps
running while a (slow) request is in flight on a worker thread."""

from __future__ import annotations

import threading
from typing import Any

from cloud_ui_support import ACCOUNT, FakeAuth, Gate
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QDialog

from nojoin.cloud.errors import AuthError, OfflineError
from nojoin.cloud.manager import CloudManager
from nojoin.ui.cloud.auth_dialogs import LoginDialog, PasswordResetDialog, RegisterDialog


def _fill(dialog: LoginDialog, email: str, password: str) -> None:
    dialog.email.setText(email)
    dialog.password.setText(password)


def test_login_validates_before_any_request(
    qtbot: Any, manager: CloudManager, fake_auth: FakeAuth
) -> None:
    dialog = LoginDialog(manager)
    qtbot.addWidget(dialog)
    dialog.show()
    _fill(dialog, "alice-at-example", "pw")
    qtbot.mouseClick(dialog.submit_button, Qt.MouseButton.LeftButton)
    assert dialog.message.isVisible() and dialog.message.is_error
    assert "valid email" in dialog.message.text()
    _fill(dialog, "alice@example.com", "")
    dialog.submit()
    assert "Enter your password" in dialog.message.text()
    assert dialog.password.hasFocus() or not dialog.isActiveWindow()
    assert fake_auth.calls == []


def test_login_runs_off_the_ui_thread_and_the_window_stays_responsive(
    qtbot: Any, manager: CloudManager, fake_auth: FakeAuth
) -> None:
    gate = fake_auth.gate = Gate()
    dialog = LoginDialog(manager)
    qtbot.addWidget(dialog)
    dialog.show()
    _fill(dialog, "alice@example.com", "correct horse battery")
    ticks: list[int] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(5)

    dialog.submit()
    qtbot.waitUntil(gate.entered.is_set, timeout=5000)
    # The request is blocked on its worker; the event loop keeps running meanwhile.
    qtbot.waitUntil(lambda: len(ticks) >= 10, timeout=5000)
    assert dialog.is_busy and dialog.busy.isVisible()
    assert "Signing in" in dialog.busy.label.text()
    assert not dialog.email.isEnabled() and not dialog.submit_button.isEnabled()
    assert dialog.cancel_button.isEnabled()
    assert gate.threads[0] is not threading.main_thread()

    with qtbot.waitSignal(manager.auth_state_changed, timeout=5000) as signal:
        gate.open()
    assert signal.args == [ACCOUNT]
    qtbot.waitUntil(lambda: dialog.result() == QDialog.DialogCode.Accepted, timeout=5000)
    assert dialog.account == ACCOUNT
    assert manager.account == ACCOUNT
    assert fake_auth.calls == [("sign_in", ("alice@example.com", "correct horse battery"))]
    timer.stop()


def test_login_error_is_shown_and_the_form_can_be_retried(
    qtbot: Any, manager: CloudManager, fake_auth: FakeAuth
) -> None:
    fake_auth.error = AuthError("Wrong email or password. Check them and try again.")
    dialog = LoginDialog(manager)
    qtbot.addWidget(dialog)
    dialog.show()
    _fill(dialog, "alice@example.com", "nope")
    dialog.submit()
    qtbot.waitUntil(lambda: dialog.message.isVisible(), timeout=5000)
    assert dialog.message.is_error
    assert "Wrong email or password" in dialog.message.text()
    assert dialog.isVisible() and not dialog.is_busy
    assert dialog.email.isEnabled() and dialog.submit_button.isEnabled()
    assert manager.account is None

    fake_auth.error = OfflineError()
    dialog.submit()
    qtbot.waitUntil(lambda: "internet connection" in dialog.message.text(), timeout=5000)


def test_login_links_open_the_other_dialogs(qtbot: Any, manager: CloudManager) -> None:
    dialog = LoginDialog(manager)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.email.setText("alice@example.com ")
    with qtbot.waitSignal(dialog.reset_requested) as signal:
        dialog.forgot_link.click()
    assert signal.args == ["alice@example.com"]


def test_register_validates_password_and_confirmation(
    qtbot: Any, manager: CloudManager, fake_auth: FakeAuth
) -> None:
    dialog = RegisterDialog(manager)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.email.setText("bob@example.com")
    dialog.password.setText("short")
    dialog.confirm.setText("short")
    dialog.submit()
    assert "at least 8" in dialog.message.text()
    dialog.password.setText("long enough password")
    dialog.confirm.setText("long enough passwrod")
    dialog.submit()
    assert "not the same" in dialog.message.text()
    assert fake_auth.calls == []

    dialog.confirm.setText("long enough password")
    dialog.submit()
    qtbot.waitUntil(lambda: dialog.result() == QDialog.DialogCode.Accepted, timeout=5000)
    assert dialog.account == ACCOUNT
    assert fake_auth.calls == [("sign_up", ("bob@example.com", "long enough password"))]


def test_register_that_needs_email_confirmation_says_so(
    qtbot: Any, manager: CloudManager, fake_auth: FakeAuth
) -> None:
    fake_auth.sign_up_result = None
    dialog = RegisterDialog(manager)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.email.setText("carol@example.com")
    dialog.password.setText("long enough password")
    dialog.confirm.setText("long enough password")
    dialog.submit()
    qtbot.waitUntil(lambda: dialog.message.isVisible(), timeout=5000)
    assert not dialog.message.is_error
    assert "open the link we sent to carol@example.com" in dialog.message.text()
    assert dialog.isVisible() and dialog.submit_button.isHidden()
    assert manager.account is None


def test_password_reset_sends_a_code_then_sets_the_new_password(
    qtbot: Any, manager: CloudManager, fake_auth: FakeAuth
) -> None:
    dialog = PasswordResetDialog(manager, "dave@example.com")
    qtbot.addWidget(dialog)
    dialog.show()
    assert not dialog.step2_visible
    dialog.submit()
    qtbot.waitUntil(lambda: dialog.sent, timeout=5000)
    assert "If an account exists for dave@example.com" in dialog.message.text()
    assert dialog.step2_visible and dialog.submit_button.text() == "Set new password"
    assert fake_auth.calls == [("reset_password", ("dave@example.com",))]

    dialog.submit()  # no code yet
    assert "Enter the code" in dialog.message.text()
    dialog.code.setText(" 123456 ")
    dialog.new_password.setText("a new password")
    dialog.confirm.setText("a new password!")
    dialog.submit()
    assert "not the same" in dialog.message.text()
    dialog.confirm.setText("a new password")
    with qtbot.waitSignal(manager.auth_state_changed, timeout=5000):
        dialog.submit()
    qtbot.waitUntil(lambda: dialog.result() == QDialog.DialogCode.Accepted, timeout=5000)
    assert fake_auth.calls[-1] == (
        "complete_password_reset",
        ("dave@example.com", " 123456 ", "a new password"),
    )
    assert dialog.account == ACCOUNT
