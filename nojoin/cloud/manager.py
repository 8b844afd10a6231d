"""`CloudManager`: the one place the app goes through for Cloud Mode (the only Qt in cloud/).

It owns the auth service, the API client, settings sync and backups, runs every network call
on the app's `TaskRunner` (`nojoin.ui.tasks`, the desktop's one background mechanism), and
reports back with signals on the UI thread. Widgets never call HTTP.

The composition root (`nojoin.app`) creates the instance once with `init(...)`; others get it
with `instance()`. Tests construct their own `CloudManager` or monkeypatch `_instance`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from nojoin.cloud.api_client import ApiClient
from nojoin.cloud.auth_service import Account, AuthEvent, AuthEventKind, AuthService
from nojoin.cloud.backup_service import BackupEntry, BackupService, RestoreReport
from nojoin.cloud.config_sync import Choice, ConfigSync, SyncOutcome, SyncResult
from nojoin.cloud.errors import CloudError, NotSignedInError
from nojoin.cloud.settings import CloudSettings, load_cloud_settings
from nojoin.config.cloud_repository import CloudConfigRepository
from nojoin.config.manager import ConfigManager
from nojoin.errors import NojoinError
from nojoin.processing.contract import CancelToken, ProgressCallback
from nojoin.ui.tasks import Op, Task, TaskRunner

log = logging.getLogger(__name__)

SYNC_INTERVAL_MS = 5 * 60 * 1000
"""Look for settings changed on other devices this often while signed in."""
RETRY_DELAYS_MS = (5_000, 15_000, 30_000, 60_000, 120_000, 300_000)
"""Back-off for pushing offline changes again."""


SERIAL_LANE = "cloud"
"""Auth and settings sync: one request at a time, in order."""
BULK_LANE = "cloud-backups"
"""Backups and restores (long), beside the serial lane."""


class CloudManager(QObject):
    """Session state and every Cloud Mode operation, off the UI thread.

    Signals:
      auth_state_changed(account): an `Account` when signed in, None when signed out.
      sync_state_changed(text): a short status ("Settings synced 14:02", "Offline ...").
      sync_conflict(result): a `SyncResult` needing the user's choice (local / cloud).
      library_restored(report): a `RestoreReport` after a restore replaced the library.
      error(message): something went wrong that the user should read.
      message(text): information for the user (e.g. "session expired, sign in again").
    """

    auth_state_changed = Signal(object)
    sync_state_changed = Signal(str)
    sync_conflict = Signal(object)
    library_restored = Signal(object)
    error = Signal(str)
    message = Signal(str)

    def __init__(
        self,
        settings: CloudSettings | None = None,
        *,
        auth: AuthService | None = None,
        config_repository: CloudConfigRepository | None = None,
        tasks: TaskRunner | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._owns_tasks = tasks is None
        self.tasks = tasks or TaskRunner(self)  # the app's runner; its own one in tests
        self.settings = settings or (auth.settings if auth else load_cloud_settings())
        self.auth = auth or AuthService(self.settings)
        self.api = ApiClient(self.settings.api_url or "http://invalid.localhost", self.auth)
        self.config_repository = config_repository or CloudConfigRepository()
        self.config_repository.on_change = self._local_settings_changed
        self.sync = ConfigSync(self.config_repository, self.api)
        self.backups = BackupService(self.api)
        self.config_manager: ConfigManager | None = None
        self.last_sync: datetime | None = self.config_repository.state().last_sync_time()
        self.sync_status = ""
        self._account: Account | None = None
        self._tasks: set[Task] = set()
        self._sync_running = False
        self._sync_again = False
        self._closed = False
        self._retry = 0
        self._retry_timer = QTimer(self)
        self._retry_timer.setSingleShot(True)
        self._retry_timer.timeout.connect(self.auto_sync)
        self._poll_timer = QTimer(self)
        self._poll_timer.setInterval(SYNC_INTERVAL_MS)
        self._poll_timer.timeout.connect(self.auto_sync)
        # Auth events come from any thread (the refresh timer): handled on the UI thread.
        self.auth.add_listener(lambda event: self.tasks.post(self._on_auth_event, event))

    # ------------------------------------------------------------------ wiring

    def attach_config(self, config_manager: ConfigManager) -> None:
        """Route the app's settings through the cloud repository (local file first)."""
        repo = config_manager.repository
        if repo is not self.config_repository:
            self.config_repository.local = repo
            config_manager.repository = self.config_repository
        self.config_manager = config_manager

    def start(self) -> Task | None:
        """Resume a stored session (if any) in the background."""
        if not self.settings.configured:
            return None
        return self.run(
            "restore the session",
            self._do_restore,
            on_done=self._after_restore,
            on_error=lambda exc: self.error.emit(str(exc)),
        )

    def shutdown(self) -> None:
        """Stop timers, cancel running work, wait briefly for workers. Idempotent; safe at
        interpreter exit when Qt may already have deleted the C++ side."""
        if self._closed:
            return
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        self.auth.close()
        try:
            self._retry_timer.stop()
            self._poll_timer.stop()
            if self._owns_tasks:
                self.tasks.shutdown(5000)
            else:
                self.tasks.wait(5000)
        except RuntimeError:  # the QObject was already destroyed (application exit)
            log.debug("cloud manager shut down after its Qt objects were deleted")
        self.api.close()

    # ------------------------------------------------------------------ for other modules

    @property
    def account(self) -> Account | None:
        return self._account

    @property
    def signed_in(self) -> bool:
        return self._account is not None

    @property
    def configured(self) -> bool:
        return self.settings.configured

    def api_base_url(self) -> str:
        """Base URL of the backend (without /api/v1), for remote processing."""
        return self.settings.require().api_url

    def access_token(self) -> str:
        """A fresh access token (blocking: call from a worker thread). Raises
        NotSignedInError / SessionExpiredError / OfflineError."""
        return self.auth.access_token()

    # ------------------------------------------------------------------ tasks

    def run(
        self,
        name: str,
        fn: Op,
        *,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[NojoinError], None] | None = None,
        bulk: bool = False,
    ) -> Task:
        """Run `fn(progress, cancel)` on the task runner's cloud lane (`bulk`: the backups
        lane); callbacks and the task's signals arrive on the UI thread, and an unexpected
        exception arrives as a `CloudError` (every failure is a `NojoinError`)."""

        def guarded(progress: ProgressCallback, cancel: CancelToken) -> Any:
            if self._closed:
                raise CloudError("Cloud Mode was shut down.")
            try:
                return fn(progress, cancel)
            except NojoinError:
                raise
            except Exception as exc:
                log.exception("cloud task %s crashed", name)
                raise CloudError(f"Unexpected error in {name}: {exc}") from exc

        task = self.tasks.run(
            name,
            guarded,
            lane=BULK_LANE if bulk else SERIAL_LANE,
            on_done=on_done,
            on_error=on_error,  # type: ignore[arg-type]  # always a NojoinError (guarded)
        )
        self._tasks.add(task)
        task.finished.connect(lambda: self._tasks.discard(task))
        return task

    # ------------------------------------------------------------------ accounts

    def sign_in(self, email: str, password: str) -> Task:
        """Sign in, then compare settings. completed(account); a settings difference arrives
        as `sync_conflict`."""

        def work(
            _progress: ProgressCallback, _cancel: CancelToken
        ) -> tuple[Account, SyncResult | NojoinError]:
            account = self.auth.sign_in(email, password)
            return account, self._first_sync(account)

        return self.run("sign in", work, on_done=self._after_sign_in)

    def sign_up(self, email: str, password: str) -> Task:
        """Create an account. completed(account or None: confirm the email first)."""

        def work(
            _progress: ProgressCallback, _cancel: CancelToken
        ) -> tuple[Account | None, SyncResult | NojoinError | None]:
            account = self.auth.sign_up(email, password)
            return account, (self._first_sync(account) if account else None)

        return self.run("create the account", work, on_done=self._after_sign_up)

    def reset_password(self, email: str) -> Task:
        return self.run(
            "send the reset email", lambda _progress, _cancel: self.auth.reset_password(email)
        )

    def complete_password_reset(self, email: str, code: str, new_password: str) -> Task:
        """Set a new password with the emailed code; signs in. completed((account, sync))."""

        def work(
            _progress: ProgressCallback, _cancel: CancelToken
        ) -> tuple[Account, SyncResult | NojoinError]:
            account = self.auth.complete_password_reset(email, code, new_password)
            return account, self._first_sync(account)

        return self.run("reset the password", work, on_done=self._after_sign_in)

    def sign_out(self) -> Task:
        self.config_repository.active = False
        self._retry_timer.stop()
        self._poll_timer.stop()
        return self.run(
            "sign out",
            lambda _progress, _cancel: self.auth.sign_out(),
            on_done=lambda _result: self._signed_out(),
            on_error=lambda _error: self._signed_out(),  # signed out locally regardless
        )

    def _signed_out(self) -> None:
        self._set_account(None)
        self._set_status("")

    def _do_restore(
        self, _progress: ProgressCallback, _cancel: CancelToken
    ) -> tuple[Account | None, SyncResult | NojoinError | None]:
        account = self.auth.restore()
        if account is None:
            return None, None
        self.config_repository.active = True
        try:
            return account, self.sync.sync(account.user_id)
        except NojoinError as exc:
            return account, exc

    def _first_sync(self, account: Account) -> SyncResult | NojoinError:
        self.config_repository.active = True
        try:
            return self.sync.on_sign_in(account.user_id)
        except NojoinError as exc:
            return exc

    def _after_restore(
        self, result: tuple[Account | None, SyncResult | NojoinError | None]
    ) -> None:
        account, sync = result
        if account is not None:
            self._set_account(account)
        if sync is not None:
            self._handle_sync(sync)

    def _after_sign_in(self, result: tuple[Account, SyncResult | NojoinError]) -> None:
        account, sync = result
        self._set_account(account)
        self._warn_if_not_persistent()
        self._handle_sync(sync)

    def _warn_if_not_persistent(self) -> None:
        if not getattr(self.auth.storage, "persistent", True):
            self.message.emit(
                "You are signed in, but this computer has no working password store (keyring), "
                "so Nojoin cannot remember the session: you will need to sign in again after "
                "restarting. Nothing is written to disk in its place."
            )

    def _after_sign_up(
        self, result: tuple[Account | None, SyncResult | NojoinError | None]
    ) -> None:
        account, sync = result
        if account is not None:
            self._set_account(account)
        if sync is not None:
            self._handle_sync(sync)

    def _set_account(self, account: Account | None) -> None:
        changed = account != self._account
        self._account = account
        self.config_repository.active = account is not None
        if account is not None:
            self._poll_timer.start()
        else:
            self._poll_timer.stop()
            self._retry_timer.stop()
        if changed:
            self.auth_state_changed.emit(account)

    @Slot(object)
    def _on_auth_event(self, event: AuthEvent) -> None:
        if event.kind is AuthEventKind.SESSION_EXPIRED:
            self._set_account(None)
            self._set_status("")
            self.message.emit(event.message)
        elif event.kind is AuthEventKind.SIGNED_OUT:
            self._set_account(None)
            self._set_status("")
        # SIGNED_IN / TOKEN_REFRESHED: the sign-in or restore task's completion updates state.

    # ------------------------------------------------------------------ settings sync

    def _local_settings_changed(self) -> None:
        """Called (UI thread) after a settings change was saved locally in Cloud Mode."""
        if self.config_repository.state().paused:
            self._set_status("Settings sync paused (Cloud ▸ Sync Settings Now to choose)")
            return
        self._set_status("Settings: saving to the cloud…")
        self.sync_now()

    @Slot()
    def auto_sync(self) -> None:
        """Timer-driven sync: skipped while the user postponed the settings choice, so the
        question does not come back every few minutes (the menu action asks again)."""
        if self.config_repository.state().paused:
            return
        self.sync_now()

    @Slot()
    def sync_now(self) -> None:
        """Push pending changes / pull others' now (coalesces while one is running)."""
        account = self._account
        if account is None:
            return
        if self._sync_running:
            self._sync_again = True
            return
        self._sync_running = True
        self.run(
            "sync settings",
            lambda _progress, _cancel: self.sync.sync(account.user_id),
            on_done=self._sync_finished,
            on_error=self._sync_failed,
        )

    def _sync_finished(self, result: SyncResult) -> None:
        self._sync_running = False
        self._handle_sync(result)
        if self._sync_again:
            self._sync_again = False
            self.sync_now()

    def _sync_failed(self, exc: NojoinError) -> None:
        self._sync_running = False
        self._sync_again = False
        self._handle_sync(exc)

    def _handle_sync(self, result: SyncResult | NojoinError) -> None:
        if isinstance(result, NotSignedInError):
            return  # the auth event explains it
        if isinstance(result, NojoinError):
            self._set_status("Settings not synced (error)")
            self.error.emit(str(result))
            return
        if result.local_changed and self.config_manager is not None:
            self.config_manager.reload()
        if result.outcome is SyncOutcome.OFFLINE:
            delay = RETRY_DELAYS_MS[min(self._retry, len(RETRY_DELAYS_MS) - 1)]
            self._retry += 1
            self._retry_timer.start(delay)
            self._set_status("Offline: settings changes will be sent when the connection is back")
            return
        self._retry = 0
        if result.outcome is SyncOutcome.NEEDS_CHOICE:
            self._set_status("Settings differ from the cloud copy")
            self.sync_conflict.emit(result)
            return
        if result.outcome is SyncOutcome.PAUSED:
            self._set_status("Settings sync paused")
            return
        self.last_sync = self.config_repository.state().last_sync_time() or self.last_sync
        self._set_status("Settings synced")

    def resolve_conflict(self, result: SyncResult, choice: Choice | None) -> Task | None:
        """The user's answer to `sync_conflict`: "local", "cloud", or None (decide later)."""
        account = self._account
        if account is None or result.remote is None:
            return None
        remote = result.remote
        if choice is None:
            return self.run(
                "postpone settings sync",
                lambda _progress, _cancel: self.sync.postpone(account.user_id),
                on_done=self._handle_sync,
            )
        return self.run(
            "sync settings",
            lambda _progress, _cancel: self.sync.resolve(account.user_id, choice, remote),
            on_done=self._handle_sync,
            on_error=self._handle_sync,
        )

    def _set_status(self, text: str) -> None:
        self.sync_status = text
        self.sync_state_changed.emit(text)

    # ------------------------------------------------------------------ backups

    def list_backups(self) -> Task:
        return self.run(
            "list backups", lambda _progress, _cancel: self.backups.list_backups(), bulk=True
        )

    def back_up(self, *, include_audio: bool = False) -> Task:
        def work(progress: ProgressCallback, cancel: CancelToken) -> BackupEntry:
            return self.backups.back_up(
                include_audio=include_audio, progress=progress, cancel=cancel
            )

        return self.run("back up", work, bulk=True)

    def restore(self, entry: BackupEntry) -> Task:
        def work(progress: ProgressCallback, cancel: CancelToken) -> RestoreReport:
            return self.backups.restore(entry, progress=progress, cancel=cancel)

        task = self.run("restore", work, bulk=True)
        task.completed.connect(self.library_restored.emit)
        return task


_instance: CloudManager | None = None


def init(settings: CloudSettings | None = None, **kwargs: Any) -> CloudManager:
    """Create the app's CloudManager (composition root, once)."""
    global _instance
    _instance = CloudManager(settings, **kwargs)
    return _instance


def instance() -> CloudManager:
    if _instance is None:
        raise RuntimeError("CloudManager not created: call nojoin.cloud.manager.init() first")
    return _instance
