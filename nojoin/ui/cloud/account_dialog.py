"""The Account dialog: plan, status, billing period and today's cloud usage, with Upgrade
(Stripe Checkout) and Manage subscription (customer portal) opening in the browser.

The service (`nojoin.cloud.billing_client.AccountService`) is passed in; its blocking calls
run on the app's `TaskRunner` (lane "account", one at a time) and come back through signals,
so the window never freezes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from nojoin.cloud.billing_client import AccountService, AccountStatus
from nojoin.errors import NojoinError
from nojoin.ui.tasks import Task, TaskRunner

log = logging.getLogger(__name__)

LANE = "account"

STATUS_TEXT = {
    "active": "Active",
    "trialing": "Trial",
    "past_due": "Payment problem",
    "canceled": "Cancelled",
}


def _when(value: Any) -> str:
    return f"{value.astimezone():%d %b %Y}"


class AccountDialog(QDialog):
    """Signals: `loaded(AccountStatus)` after each refresh, `failed(str)` with the message
    shown, `url_opened(str)` when a checkout/portal page was handed to the browser."""

    loaded = Signal(object)
    failed = Signal(str)
    url_opened = Signal(str)

    def __init__(
        self,
        service: AccountService,
        *,
        open_url: Callable[[QUrl], bool] | None = None,
        poll_interval_ms: int = 5000,
        poll_limit: int = 180,
        tasks: TaskRunner | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Account")
        self.setMinimumWidth(420)
        self._service = service
        self._open_url = open_url or QDesktopServices.openUrl
        self._tasks = tasks or TaskRunner(self)  # the app's runner; its own one in tests
        self._pending: dict[Task, Callable[[Any], None]] = {}  # task -> what to do with its result
        self._status: AccountStatus | None = None
        # One key per dialog: a double click or a retry reopens the same checkout session.
        self._checkout_key = uuid.uuid4().hex
        self._polls_left = 0
        self._poll_limit = poll_limit
        self._upgrade_on_load = False
        self._poll = QTimer(self)
        self._poll.setInterval(poll_interval_ms)
        self._poll.timeout.connect(self._poll_tick)

        self.plan_label = QLabel("…")
        self.status_label = QLabel("…")
        self.period_label = QLabel("")
        self.cloud_label = QLabel("")
        self.cloud_label.setWordWrap(True)
        self.usage_label = QLabel("")
        self.message_label = QLabel("Loading your account…")
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        form = QFormLayout()
        form.addRow("Plan:", self.plan_label)
        form.addRow("Status:", self.status_label)
        form.addRow("Billing period:", self.period_label)
        form.addRow("Cloud processing:", self.cloud_label)
        form.addRow("Today:", self.usage_label)

        self.upgrade_button = QPushButton("Upgrade to Pro…")
        self.upgrade_button.setToolTip("Opens secure checkout in your web browser")
        self.manage_button = QPushButton("Manage subscription…")
        self.manage_button.setToolTip("Change card, see invoices or cancel, in your web browser")
        self.refresh_button = QPushButton("Refresh")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.upgrade_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.manage_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.refresh_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        self.upgrade_button.clicked.connect(self.start_upgrade)
        self.manage_button.clicked.connect(self.open_portal)
        self.refresh_button.clicked.connect(self.refresh)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.message_label)
        layout.addWidget(buttons)

        self.upgrade_button.hide()
        self.manage_button.hide()
        self.refresh()

    # --- actions ------------------------------------------------------------------------

    def refresh(self) -> None:
        self._run("load the account", self._service.subscription, self._show_status)

    def upgrade_when_ready(self) -> None:
        """Start checkout as if Upgrade were clicked, once the account status is in and shows
        the Upgrade button (a plan without cloud processing). Otherwise the dialog just shows
        the account: already included, or a payment problem to fix under Manage subscription.
        Used where cloud processing was refused for the plan."""
        if self._status is not None and not self._pending:
            self._upgrade_if_offered()
            return
        self._upgrade_on_load = True

    def _upgrade_if_offered(self) -> None:
        self._upgrade_on_load = False
        if not self.upgrade_button.isHidden():
            self.start_upgrade()

    def start_upgrade(self) -> None:
        self.message_label.setText("Opening checkout…")
        key = self._checkout_key
        self._run("open checkout", lambda: self._service.checkout_url(key), self._opened_checkout)

    def open_portal(self) -> None:
        self.message_label.setText("Opening your subscription page…")
        key = uuid.uuid4().hex
        self._run("open the portal", lambda: self._service.portal_url(key), self._opened_portal)

    @property
    def status(self) -> AccountStatus | None:
        return self._status

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    # --- plumbing -------------------------------------------------------------------------

    def _run(self, name: str, fn: Callable[[], Any], on_done: Callable[[Any], None]) -> None:
        task = self._tasks.run(name, lambda _progress, _cancel: fn(), lane=LANE)
        self._pending[task] = on_done
        # Bound methods only: a dialog closed meanwhile is disconnected, not called.
        task.completed.connect(self._task_done)
        task.failed.connect(self._task_failed)
        self._set_busy(True)

    def _task_done(self, result: object) -> None:
        on_done = self._pending.pop(self.sender(), None)  # type: ignore[call-overload]
        self._set_busy(bool(self._pending))
        if on_done is not None:
            on_done(result)

    def _task_failed(self, exc: object) -> None:
        self._pending.pop(self.sender(), None)  # type: ignore[call-overload]
        self._set_busy(bool(self._pending))
        self._show_error(exc)

    def _set_busy(self, busy: bool) -> None:
        for button in (self.upgrade_button, self.manage_button, self.refresh_button):
            button.setEnabled(not busy)

    def _show_error(self, exc: object) -> None:
        if isinstance(exc, NojoinError):
            message = exc.message
        else:
            log.error(
                "Account request failed", exc_info=exc if isinstance(exc, BaseException) else None
            )
            message = "Could not reach your account. Check your connection and try Refresh."
        self.message_label.setText(message)
        self.failed.emit(message)

    def _show_status(self, result: object) -> None:
        assert isinstance(result, AccountStatus)
        s = self._status = result
        pro = s.tier == "pro"
        self.plan_label.setText("Nojoin Pro" if pro else "Free")
        self.status_label.setText(STATUS_TEXT.get(s.status, s.status) if pro else "—")
        if pro and s.current_period_end is not None:
            verb = "Ends" if s.cancel_at_period_end or s.status == "canceled" else "Renews"
            self.period_label.setText(f"{verb} on {_when(s.current_period_end)}")
        else:
            self.period_label.setText("—")
        if s.entitled and s.grace_until is not None:
            self.cloud_label.setText(f"Included until {_when(s.grace_until)} unless paid")
        elif s.entitled:
            self.cloud_label.setText("Included")
        elif not s.gate_enabled:
            self.cloud_label.setText("Available (this server does not require a subscription)")
        else:
            self.cloud_label.setText(
                "Not included — upgrade to Pro to process meetings in the cloud"
            )
        if s.quotas_enforced:
            self.usage_label.setText(
                f"{s.jobs_today} of {s.jobs_per_day} cloud jobs, files up to "
                f"{s.max_file_bytes // (1024 * 1024)} MB"
            )
        else:
            self.usage_label.setText(f"{s.jobs_today} cloud jobs")

        payment_problem = pro and s.status == "past_due"
        self.upgrade_button.setVisible(not s.entitled and not (payment_problem and s.can_manage))
        self.manage_button.setVisible(s.can_manage)
        if payment_problem and s.grace_until is not None and s.entitled:
            self.message_label.setText(
                "Your last payment did not go through; it will be retried. Cloud processing "
                f"keeps working until {_when(s.grace_until)}. Choose Manage subscription to "
                "update your payment method."
            )
        elif payment_problem:
            self.message_label.setText(
                "Your last payment did not go through. Choose Manage subscription to update "
                "your payment method; cloud processing resumes as soon as it is paid."
            )
        elif s.entitled and self._poll.isActive():
            self.message_label.setText("Welcome to Nojoin Pro! Cloud processing is ready.")
        elif not self._poll.isActive():
            self.message_label.setText("")
        if s.entitled and self._poll.isActive():
            self._poll.stop()
        self.loaded.emit(s)
        if self._upgrade_on_load:
            self._upgrade_if_offered()

    def _opened_checkout(self, url: object) -> None:
        if not self._open(str(url)):
            return
        self.message_label.setText(
            "Finish the payment in your browser. This window updates by itself when it is done."
        )
        self._polls_left = self._poll_limit
        self._poll.start()

    def _opened_portal(self, url: object) -> None:
        if not self._open(str(url)):
            return
        self.message_label.setText(
            "Your subscription page is open in your browser. Choose Refresh when you are done."
        )

    def _open(self, url: str) -> bool:
        if not self._open_url(QUrl(url)):
            self.message_label.setText(f"Could not open your browser. Open this address: {url}")
            return False
        self.url_opened.emit(url)
        return True

    def _poll_tick(self) -> None:
        self._polls_left -= 1
        if self._polls_left <= 0:
            self._poll.stop()
            return
        if not self._pending:
            self.refresh()

    def done(self, result: int) -> None:
        self._poll.stop()
        super().done(result)
