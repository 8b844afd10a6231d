"""The Cloud menu, the account status in the status bar, and the prompts of the cloud manager
(settings conflict, session expired) shown to the user. Drawing only: the composition root
(`nojoin.app.App.install_cloud`) builds the `CloudManager` and wires it to the app.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel, QMenu, QMessageBox, QWidget

from nojoin.cloud.auth_service import Account
from nojoin.cloud.config_sync import SyncResult
from nojoin.cloud.manager import CloudManager
from nojoin.ui.cloud.auth_dialogs import LoginDialog, PasswordResetDialog, RegisterDialog
from nojoin.ui.cloud.backups_dialog import BackupsDialog
from nojoin.ui.cloud.sync_dialog import SyncConflictDialog

if TYPE_CHECKING:
    from nojoin.ui.cloud.account_dialog import AccountDialog

log = logging.getLogger(__name__)


class HostWindow(Protocol):
    """What the Cloud UI needs from the main window (MainWindow provides it)."""

    def add_menu(self, title: str) -> QMenu: ...

    def add_status_widget(self, widget: QWidget) -> None: ...

    def statusBar(self) -> Any: ...  # noqa: N802 - Qt API


class AccountStatusLabel(QLabel):
    """'Local Mode' or 'alice@example.com · Settings synced 14:02' in the status bar."""

    def __init__(self, manager: CloudManager, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.manager = manager
        self.setObjectName("muted")
        self.setContentsMargins(8, 0, 8, 0)
        manager.auth_state_changed.connect(lambda _a: self.update_text())
        manager.sync_state_changed.connect(lambda _t: self.update_text())
        self.update_text()

    def update_text(self) -> None:
        account = self.manager.account
        if account is None:
            self.setText("Local Mode")
            self.setToolTip(
                "Not signed in. Use the Cloud menu to sign in and sync settings or make backups."
            )
            return
        status = self.manager.sync_status
        last = self.manager.last_sync
        if status == "Settings synced" and last is not None:
            status = f"Settings synced {last.astimezone().strftime('%H:%M')}"
        self.setText(f"☁ {account.email}" + (f" · {status}" if status else ""))
        tip = f"Signed in to Nojoin Cloud as {account.email}."
        if last is not None:
            tip += f"\nLast settings sync: {last.astimezone().strftime('%d %b %Y, %H:%M')}."
        self.setToolTip(tip)


class CloudController(QObject):
    """Owns the Cloud menu and shows the cloud manager's prompts on the window."""

    def __init__(self, window: HostWindow, manager: CloudManager) -> None:
        super().__init__(manager)
        self.window = window
        self.manager = manager
        self.dialogs: dict[str, Any] = {}
        self.menu = window.add_menu("&Cloud")
        self.account_action = QAction("", self.menu)
        self.account_action.setEnabled(False)
        self.sign_in_action = self._action("&Sign In…", self.open_login)
        self.register_action = self._action("&Create Account…", self.open_register)
        self.reset_action = self._action("&Reset Password…", self.open_reset)
        self.backups_action = self._action("&Backups…", self.open_backups)
        self.account_dialog_action = self._action("&Account && Subscription…", self.open_account)
        self.sync_action = self._action("S&ync Settings Now", manager.sync_now)
        self.sign_out_action = self._action("Sign &Out", self.sign_out)
        for action in (
            self.account_action,
            self.sign_in_action,
            self.register_action,
            self.reset_action,
        ):
            self.menu.addAction(action)
        self.menu.addSeparator()
        for action in (self.account_dialog_action, self.backups_action, self.sync_action):
            self.menu.addAction(action)
        self.menu.addSeparator()
        self.menu.addAction(self.sign_out_action)
        self.status = AccountStatusLabel(manager)
        window.add_status_widget(self.status)
        manager.auth_state_changed.connect(self._auth_changed)
        manager.sync_conflict.connect(self.ask_sync_choice)
        manager.message.connect(self._inform)
        manager.error.connect(self._show_error)
        self._auth_changed(manager.account)

    def _action(self, text: str, slot: Any) -> QAction:
        action = QAction(text, self.menu)
        action.triggered.connect(lambda _checked=False: slot())
        return action

    # --- what the main window asks (`CloudLink`) ------------------------------------------

    @property
    def configured(self) -> bool:
        return self.manager.configured

    @property
    def signed_in(self) -> bool:
        return self.manager.signed_in

    def start_upgrade(self) -> AccountDialog:
        """The Account dialog, starting checkout as its Upgrade button does (cloud processing
        was refused for the plan)."""
        dialog = self.open_account()
        dialog.upgrade_when_ready()
        return dialog

    @property
    def parent_widget(self) -> QWidget | None:
        return self.window if isinstance(self.window, QWidget) else None

    def _auth_changed(self, account: Account | None) -> None:
        signed_in = account is not None
        configured = self.manager.configured
        self.account_action.setVisible(signed_in)
        self.account_action.setText(f"Signed in as {account.email}" if account else "")
        for action in (self.sign_in_action, self.register_action, self.reset_action):
            action.setVisible(not signed_in)
            action.setEnabled(configured)
        for action in (
            self.account_dialog_action,
            self.backups_action,
            self.sync_action,
            self.sign_out_action,
        ):
            action.setEnabled(signed_in)
        if not configured:
            self.sign_in_action.setToolTip(
                "This copy of Nojoin was built without a Nojoin Cloud address."
            )

    # ------------------------------------------------------------------ dialogs

    def _open(self, key: str, dialog: QWidget) -> Any:
        old = self.dialogs.get(key)
        if old is not None and old.isVisible():
            old.raise_()
            old.activateWindow()
            return old
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.destroyed.connect(lambda *_: self.dialogs.pop(key, None))
        self.dialogs[key] = dialog
        dialog.show()  # non-modal: the main window keeps working
        return dialog

    def open_login(self) -> LoginDialog:
        dialog = LoginDialog(self.manager, self.parent_widget)
        dialog.register_requested.connect(self.open_register)
        dialog.reset_requested.connect(self.open_reset)
        dialog.accepted.connect(
            lambda: (
                self._status_message(f"Signed in as {self.manager.account.email}.")
                if self.manager.account
                else None
            )
        )
        result: LoginDialog = self._open("login", dialog)
        return result

    def open_register(self) -> RegisterDialog:
        result: RegisterDialog = self._open(
            "register", RegisterDialog(self.manager, self.parent_widget)
        )
        return result

    def open_reset(self, email: str = "") -> PasswordResetDialog:
        result: PasswordResetDialog = self._open(
            "reset", PasswordResetDialog(self.manager, email or "", self.parent_widget)
        )
        return result

    def open_backups(self) -> BackupsDialog:
        result: BackupsDialog = self._open(
            "backups", BackupsDialog(self.manager, self.parent_widget)
        )
        return result

    def open_account(self) -> AccountDialog:
        """The billing engineer's Account dialog, over the signed-in API client (one window:
        an open one is raised)."""
        from nojoin.cloud.billing_client import BillingClient
        from nojoin.ui.cloud.account_dialog import AccountDialog

        old = self.dialogs.get("account")
        if isinstance(old, AccountDialog) and old.isVisible():
            old.raise_()
            old.activateWindow()
            return old
        dialog = AccountDialog(
            BillingClient(self.manager.api), tasks=self.manager.tasks, parent=self.parent_widget
        )
        opened: AccountDialog = self._open("account", dialog)
        return opened

    def ask_sync_choice(self, result: SyncResult) -> SyncConflictDialog:
        dialog = SyncConflictDialog(result, self.parent_widget)
        dialog.finished.connect(lambda _code: self.manager.resolve_conflict(result, dialog.choice))
        opened: SyncConflictDialog = self._open("sync", dialog)
        return opened

    def sign_out(self) -> None:
        self.manager.sign_out()
        self._status_message("Signed out. Nojoin keeps working in Local Mode.")

    # ------------------------------------------------------------------ messages

    def _status_message(self, text: str) -> None:
        try:
            self.window.statusBar().showMessage(text, 10_000)
        except (AttributeError, RuntimeError):  # pragma: no cover - window gone
            log.info("%s", text)

    def _inform(self, text: str) -> None:
        box = QMessageBox(
            QMessageBox.Icon.Information, "Nojoin Cloud", text, parent=self.parent_widget
        )
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.dialogs["message"] = box
        box.open()  # window-modal sheet, never blocks the event loop

    def _show_error(self, text: str) -> None:
        # Sync errors recur (retries); the status bar is the right place, not a dialog each time.
        self._status_message(text)
