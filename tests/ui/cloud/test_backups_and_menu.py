"""Backups dialog (list, progress while the loop keeps running, cancel, restore, errors), the
settings-conflict prompt, and the Cloud menu + account status wired to a CloudManager."""

from __future__ import annotations

from typing import Any

import pytest
from cloud_ui_support import ACCOUNT, FakeAuth, FakeBackups, FakeSync, Gate, conflict
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QMainWindow, QMenu, QMessageBox, QWidget

from nojoin.cloud.auth_service import AuthEvent, AuthEventKind
from nojoin.cloud.connection import CloudConnection
from nojoin.cloud.errors import BackupError
from nojoin.cloud.manager import CloudManager
from nojoin.processing.strategies import remote_strategy
from nojoin.ui.cloud.backups_dialog import BackupsDialog
from nojoin.ui.cloud.menu import CloudController
from nojoin.ui.cloud.sync_dialog import SyncConflictDialog


def _backups(manager: CloudManager) -> FakeBackups:
    fake = manager.backups
    assert isinstance(fake, FakeBackups)
    return fake


def _open(qtbot: Any, manager: CloudManager) -> BackupsDialog:
    dialog = BackupsDialog(manager)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: len(dialog.entries) == 2, timeout=5000)
    return dialog


def test_backups_are_listed_with_date_computer_size_and_contents(
    qtbot: Any, manager: CloudManager
) -> None:
    dialog = _open(qtbot, manager)
    rows = [
        [dialog.table.item(r, c).text() for c in range(4)] for r in range(dialog.table.rowCount())
    ]
    assert rows[0][1:] == ["laptop", "3.0 MB", "Library"]
    assert rows[1][1:] == ["laptop", "1.5 MB", "Library + audio"]
    assert "2026" in rows[0][0]
    assert dialog.restore_button.isEnabled()  # the newest is selected


def test_empty_list_and_list_errors_are_shown(qtbot: Any, manager: CloudManager) -> None:
    _backups(manager).entries = []
    dialog = BackupsDialog(manager)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.list_task is None, timeout=5000)
    assert dialog.stack.currentWidget() is dialog.empty
    assert not dialog.restore_button.isEnabled()
    _backups(manager).error = BackupError("Cannot reach Nojoin Cloud.")
    dialog.refresh()
    qtbot.waitUntil(lambda: dialog.message.isVisible(), timeout=5000)
    assert dialog.message.is_error and "Cannot reach" in dialog.message.text()


def test_back_up_shows_progress_without_blocking_then_lists_the_new_backup(
    qtbot: Any, manager: CloudManager
) -> None:
    dialog = _open(qtbot, manager)
    gate = _backups(manager).gate = Gate()
    ticks: list[int] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(5)
    dialog.include_audio.setChecked(True)
    dialog.backup_button.click()
    qtbot.waitUntil(gate.entered.is_set, timeout=5000)
    qtbot.waitUntil(lambda: dialog.busy.bar.value() == 500, timeout=5000)  # 50 of 100 KB
    qtbot.waitUntil(lambda: len(ticks) >= 10, timeout=5000)  # the loop runs meanwhile
    assert "Uploading 50 KB of 100 KB" in dialog.busy.label.text()
    assert not dialog.backup_button.isEnabled() and dialog.cancel_button.isVisible()
    gate.open()
    qtbot.waitUntil(lambda: len(dialog.entries) == 3, timeout=5000)
    assert dialog.table.item(0, 3).text() == "Library + audio"
    assert "Backup made" in dialog.message.text() and not dialog.message.is_error
    assert dialog.backup_button.isEnabled() and not dialog.cancel_button.isVisible()
    timer.stop()


def test_cancel_stops_the_backup_and_says_so(qtbot: Any, manager: CloudManager) -> None:
    dialog = _open(qtbot, manager)
    gate = _backups(manager).gate = Gate()
    dialog.back_up()
    qtbot.waitUntil(gate.entered.is_set, timeout=5000)
    dialog.cancel_button.click()
    gate.open()
    qtbot.waitUntil(lambda: not dialog.is_busy, timeout=5000)
    assert "cancelled" in dialog.message.text()
    assert len(dialog.entries) == 2


def test_restore_asks_first_then_reports(
    qtbot: Any, manager: CloudManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    dialog = _open(qtbot, manager)
    answers = [False, True]
    monkeypatch.setattr(dialog, "confirm_restore", lambda entry: answers.pop(0))
    dialog.restore_button.click()  # the user says no
    assert _backups(manager).restored == []
    with qtbot.waitSignal(manager.library_restored, timeout=5000) as signal:
        dialog.restore_button.click()
    assert signal.args[0].meetings == 7
    assert _backups(manager).restored == ["id-2"]
    qtbot.waitUntil(lambda: "Restored 7 meetings" in dialog.message.text(), timeout=5000)


def test_failed_restore_shows_the_reason(
    qtbot: Any, manager: CloudManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    dialog = _open(qtbot, manager)
    monkeypatch.setattr(dialog, "confirm_restore", lambda entry: True)
    _backups(manager).error = BackupError(
        "The downloaded backup is damaged (its checksum does not match), so it was not restored."
    )
    dialog.restore_selected()
    qtbot.waitUntil(lambda: dialog.message.isVisible(), timeout=5000)
    assert dialog.message.is_error and "checksum does not match" in dialog.message.text()


def test_closing_while_busy_is_refused_with_a_reason(qtbot: Any, manager: CloudManager) -> None:
    dialog = _open(qtbot, manager)
    gate = _backups(manager).gate = Gate()
    dialog.back_up()
    qtbot.waitUntil(gate.entered.is_set, timeout=5000)
    dialog.close()
    assert dialog.isVisible() and "still running" in dialog.message.text()
    gate.open()
    qtbot.waitUntil(lambda: not dialog.is_busy, timeout=5000)
    dialog.close()
    assert not dialog.isVisible()


def test_sync_conflict_dialog_lists_differences_and_records_the_choice(qtbot: Any) -> None:
    dialog = SyncConflictDialog(conflict())
    qtbot.addWidget(dialog)
    dialog.show()
    cells = [[dialog.table.item(r, c).text() for c in range(3)] for r in range(2)]
    assert cells == [["Theme", "Dark", "Light"], ["Speech model", "base", "small.en"]]
    assert dialog.table.item(1, 0).font().bold()  # changed on both sides
    dialog.cloud_button.click()
    assert dialog.choice == "cloud"
    later = SyncConflictDialog(conflict())
    qtbot.addWidget(later)
    later.later_button.click()
    assert later.choice is None


class Window(QMainWindow):
    """The two hooks MainWindow offers the Cloud UI."""

    def __init__(self) -> None:
        super().__init__()
        self.help_menu = self.menuBar().addMenu("&Help")

    def add_menu(self, title: str) -> QMenu:
        menu = QMenu(title, self)
        self.menuBar().insertMenu(self.help_menu.menuAction(), menu)
        return menu

    def add_status_widget(self, widget: QWidget) -> None:
        self.statusBar().addPermanentWidget(widget)


def test_cloud_menu_and_status_follow_the_account(
    qtbot: Any, manager: CloudManager, fake_auth: FakeAuth
) -> None:
    window = Window()
    qtbot.addWidget(window)
    controller = CloudController(window, manager)
    window.show()
    titles = [a.text() for a in window.menuBar().actions()]
    assert titles == ["&Cloud", "&Help"]
    status = window.statusBar().findChild(QLabel, "muted")
    assert status is controller.status and status.text() == "Local Mode"
    assert controller.sign_in_action.isVisible() and not controller.backups_action.isEnabled()

    login = controller.open_login()
    login.email.setText(ACCOUNT.email)
    login.password.setText("pw")
    with qtbot.waitSignal(manager.auth_state_changed, timeout=5000):
        login.submit()
    qtbot.waitUntil(lambda: "Settings synced" in status.text(), timeout=5000)
    assert status.text().startswith(f"☁ {ACCOUNT.email}")
    assert not controller.sign_in_action.isVisible()
    assert controller.account_action.text() == f"Signed in as {ACCOUNT.email}"
    assert controller.backups_action.isEnabled() and controller.sign_out_action.isEnabled()
    assert controller.account_dialog_action.isEnabled()
    assert controller.open_backups() is controller.open_backups()  # one window, raised
    # Remote processing now reaches the backend with the signed-in session.
    connection = CloudConnection(lambda: manager)
    assert connection.base_url() == "http://127.0.0.1:9"

    with qtbot.waitSignal(manager.auth_state_changed, timeout=5000) as signal:
        controller.sign_out_action.trigger()
    assert signal.args == [None]
    assert status.text() == "Local Mode"
    assert ("sign_out", ()) in fake_auth.calls
    with pytest.raises(remote_strategy.RemoteAuthError, match="Sign in to Nojoin Cloud"):
        connection.access_token()


def test_settings_conflict_after_sign_in_is_asked_and_answered(
    qtbot: Any, manager: CloudManager
) -> None:
    sync = manager.sync
    assert isinstance(sync, FakeSync)
    sync.first = conflict()
    window = Window()
    qtbot.addWidget(window)
    controller = CloudController(window, manager)
    with qtbot.waitSignal(manager.sync_conflict, timeout=5000):
        manager.sign_in(ACCOUNT.email, "pw")
    dialog = controller.dialogs["sync"]
    assert isinstance(dialog, SyncConflictDialog) and dialog.isVisible()
    assert "differ" in controller.status.text()
    dialog.local_button.click()
    qtbot.waitUntil(lambda: sync.resolved == ["local"], timeout=5000)
    qtbot.waitUntil(lambda: "Settings synced" in controller.status.text(), timeout=5000)


def test_expired_session_signs_out_with_a_message(
    qtbot: Any, manager: CloudManager, fake_auth: FakeAuth
) -> None:
    window = Window()
    qtbot.addWidget(window)
    controller = CloudController(window, manager)
    with qtbot.waitSignal(manager.auth_state_changed, timeout=5000):
        manager.sign_in(ACCOUNT.email, "pw")
    # The refresh timer (a worker thread) finds the session revoked.
    with qtbot.waitSignal(manager.message, timeout=5000):
        for listener in list(fake_auth._listeners):
            listener(
                AuthEvent(
                    AuthEventKind.SESSION_EXPIRED, None, "Your session expired. Sign in again."
                )
            )
    box = controller.dialogs["message"]
    assert isinstance(box, QMessageBox) and box.isVisible()
    assert "Sign in again" in box.text()
    assert manager.account is None and controller.status.text() == "Local Mode"
    assert controller.sign_in_action.isVisible()


def test_decide_later_is_not_asked_again_by_timers_or_changes(
    qtbot: Any, manager: CloudManager
) -> None:
    with qtbot.waitSignal(manager.auth_state_changed, timeout=5000):
        manager.sign_in(ACCOUNT.email, "pw")
    manager.config_repository.reset_state(ACCOUNT.user_id, paused=True)
    started: list[str] = []
    real_run = manager.run
    manager.run = lambda name, fn, **kw: started.append(name) or real_run(name, fn, **kw)  # type: ignore[method-assign]
    manager.auto_sync()  # the 5-minute poll / offline retry
    manager._local_settings_changed()  # a change in Settings
    assert started == []
    assert "paused" in manager.sync_status
    manager.sync_now()  # Cloud ▸ Sync Settings Now asks again
    assert started == ["sync settings"]


def test_remote_connection_reports_a_missing_session_as_remote_auth_error(
    manager: CloudManager,
) -> None:
    with pytest.raises(remote_strategy.RemoteAuthError, match="Sign in to Nojoin Cloud"):
        CloudConnection(lambda: manager).access_token()
    with pytest.raises(remote_strategy.RemoteAuthError, match="Sign in to Nojoin Cloud"):
        CloudConnection(lambda: None).base_url()  # Cloud Mode not set up yet


def test_sign_in_without_a_keyring_warns_that_the_session_is_not_kept(
    qtbot: Any, manager: CloudManager, fake_auth: FakeAuth
) -> None:
    fake_auth.storage._keyring_ok = False  # type: ignore[union-attr]  # as after a keyring error
    with qtbot.waitSignal(manager.message, timeout=5000) as told:
        manager.sign_in(ACCOUNT.email, "pw")
    assert "sign in again after restarting" in told.args[0]


def test_install_cloud_tells_the_window_about_sign_in_and_upgrade(
    qtbot: Any, manager: CloudManager, harness: Any
) -> None:
    from nojoin.ui.cloud.account_dialog import AccountDialog

    manager.api.retries = 0  # the billing API is unreachable here: fail at once
    window = harness.window
    controller = harness.app.install_cloud(manager)  # as run() does after the first frame
    assert window.cloud is controller and not controller.signed_in
    assert harness.app.cloud is manager
    assert manager.config_manager is harness.app.config
    assert manager.backups.library_path == harness.library.path

    def remote_enabled() -> bool:
        dialog = window.open_settings()
        qtbot.addWidget(dialog)
        item = dialog.processing.model().item(dialog.processing.findData("remote"))
        dialog.close()
        return bool(item.isEnabled())

    assert not remote_enabled()  # Settings: sign in first
    with qtbot.waitSignal(manager.auth_state_changed, timeout=5000):
        manager.sign_in(ACCOUNT.email, "pw")
    assert controller.signed_in and remote_enabled()

    # Upgrade after a refused cloud run opens the one Account dialog.
    dialog = controller.start_upgrade()
    assert isinstance(dialog, AccountDialog) and dialog.isVisible()
    assert controller.start_upgrade() is dialog
    qtbot.waitUntil(lambda: not dialog.busy, timeout=5000)
    dialog.close()


def test_the_apps_remote_processing_uses_the_cloud_session_it_built(
    qtbot: Any, manager: CloudManager
) -> None:
    """The composition root hands the pipeline's remote strategy its connection: signed out
    it asks to sign in; once Cloud Mode is up and signed in it reaches that account's server."""
    from nojoin.app import build
    from nojoin.config import ConfigManager, LocalConfigRepository
    from nojoin.library import Library

    app = build(
        config=ConfigManager(LocalConfigRepository()), library=Library(), install_excepthook=False
    )
    qtbot.addWidget(app.window)
    try:
        strategy = app.pipeline.get().strategy("remote")
        assert isinstance(strategy, remote_strategy.RemoteProcessingStrategy)
        with pytest.raises(remote_strategy.RemoteAuthError, match="Sign in to Nojoin Cloud"):
            strategy._conn().access_token()
        app.install_cloud(manager)
        with pytest.raises(remote_strategy.RemoteAuthError, match="Sign in to Nojoin Cloud"):
            strategy._conn().base_url()  # Cloud Mode is up, nobody signed in yet
        with qtbot.waitSignal(manager.auth_state_changed, timeout=5000):
            manager.sign_in(ACCOUNT.email, "pw")
        assert strategy._conn().base_url() == "http://127.0.0.1:9"
    finally:
        app.close()
