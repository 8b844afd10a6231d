"""Account dialog with a fake AccountService: what the user sees for each plan, Upgrade and
Manage opening the browser, the dialog updating itself after checkout, errors shown."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from ui_support import FREE, PRO, Browser, FakeAccount

from nojoin.cloud.billing_client import AccountStatus
from nojoin.cloud.errors import OfflineError, RateLimitedError
from nojoin.ui.cloud.account_dialog import AccountDialog

pytestmark = [pytest.mark.gui]


def _dialog(qtbot, service: FakeAccount, browser: Browser | None = None, **kw) -> AccountDialog:
    dialog = AccountDialog(service, open_url=browser or Browser(), **kw)
    qtbot.addWidget(dialog)
    return dialog


def test_free_user_sees_upgrade_and_checkout_opens_in_the_browser(qtbot) -> None:
    service = FakeAccount(FREE, FREE, PRO)
    browser = Browser()
    dialog = _dialog(qtbot, service, browser, poll_interval_ms=20)
    qtbot.waitUntil(lambda: dialog.status is not None, timeout=5000)
    assert dialog.plan_label.text() == "Free"
    assert dialog.cloud_label.text().startswith("Not included")
    assert dialog.usage_label.text().startswith("0 of 2 cloud jobs")
    assert not dialog.upgrade_button.isHidden() and dialog.manage_button.isHidden()
    assert threading.get_ident() not in service.threads  # never blocks the UI thread

    with qtbot.wait_signal(dialog.url_opened, timeout=5000) as opened:
        dialog.upgrade_button.click()
    assert opened.args == ["https://checkout.stripe.com/c/pay/cs_test_1"]
    assert browser.opened == ["https://checkout.stripe.com/c/pay/cs_test_1"]
    assert "Finish the payment in your browser" in dialog.message_label.text()

    # The dialog polls until the webhook has made the user Pro, then says so.
    qtbot.waitUntil(lambda: dialog.plan_label.text() == "Nojoin Pro", timeout=5000)
    assert "Welcome to Nojoin Pro" in dialog.message_label.text()
    assert dialog.upgrade_button.isHidden() and not dialog.manage_button.isHidden()
    assert dialog.period_label.text().startswith("Renews on ")


def test_same_checkout_session_on_a_second_click(qtbot) -> None:
    service = FakeAccount(FREE)
    dialog = _dialog(qtbot, service)
    qtbot.waitUntil(lambda: dialog.status is not None, timeout=5000)
    for _ in range(2):
        with qtbot.wait_signal(dialog.url_opened, timeout=5000):
            dialog.upgrade_button.click()
    assert len(service.checkout_keys) == 2 and len(set(service.checkout_keys)) == 1


def test_pro_user_manages_the_subscription(qtbot) -> None:
    service = FakeAccount(replace(PRO, cancel_at_period_end=True))
    browser = Browser()
    dialog = _dialog(qtbot, service, browser)
    qtbot.waitUntil(lambda: dialog.status is not None, timeout=5000)
    assert (dialog.plan_label.text(), dialog.status_label.text()) == ("Nojoin Pro", "Active")
    assert dialog.period_label.text().startswith("Ends on ")
    assert dialog.cloud_label.text() == "Included"
    with qtbot.wait_signal(dialog.url_opened, timeout=5000):
        dialog.manage_button.click()
    assert browser.opened == ["https://billing.stripe.com/p/session/test_1"]


def test_payment_problem_points_to_manage_not_upgrade(qtbot) -> None:
    service = FakeAccount(replace(PRO, status="past_due", entitled=False))
    dialog = _dialog(qtbot, service)
    qtbot.waitUntil(lambda: dialog.status is not None, timeout=5000)
    assert dialog.status_label.text() == "Payment problem"
    assert dialog.upgrade_button.isHidden() and not dialog.manage_button.isHidden()
    assert "payment did not go through" in dialog.message_label.text()


def test_server_without_subscriptions(qtbot) -> None:
    service = FakeAccount(replace(FREE, gate_enabled=False, quotas_enforced=False, jobs_today=4))
    dialog = _dialog(qtbot, service)
    qtbot.waitUntil(lambda: dialog.status is not None, timeout=5000)
    assert "does not require a subscription" in dialog.cloud_label.text()
    assert dialog.usage_label.text() == "4 cloud jobs"


def test_errors_are_shown_and_refresh_recovers(qtbot) -> None:
    service = FakeAccount(FREE)
    service.fail = OfflineError()
    dialog = _dialog(qtbot, service)
    qtbot.waitUntil(
        lambda: "Cannot reach Nojoin Cloud" in dialog.message_label.text(), timeout=5000
    )
    assert dialog.refresh_button.isEnabled()

    service.fail = None
    with qtbot.wait_signal(dialog.loaded, timeout=5000):
        dialog.refresh_button.click()
    assert dialog.plan_label.text() == "Free"

    service.fail = RateLimitedError("Too many requests to Nojoin Cloud. Wait 5 s, then try again.")
    with qtbot.wait_signal(dialog.failed, timeout=5000) as failed:
        dialog.upgrade_button.click()
    assert failed.args == ["Too many requests to Nojoin Cloud. Wait 5 s, then try again."]


def test_browser_that_cannot_open_shows_the_address(qtbot) -> None:
    service = FakeAccount(FREE)
    dialog = _dialog(qtbot, service, Browser(works=False))
    qtbot.waitUntil(lambda: dialog.status is not None, timeout=5000)
    dialog.upgrade_button.click()
    qtbot.waitUntil(lambda: "Open this address" in dialog.message_label.text(), timeout=5000)
    assert "cs_test_1" in dialog.message_label.text()


def test_payment_retried_within_grace_says_until_when(qtbot) -> None:
    grace = datetime(2026, 12, 29, 12, tzinfo=UTC)
    service = FakeAccount(replace(PRO, status="past_due", entitled=True, grace_until=grace))
    dialog = _dialog(qtbot, service)
    qtbot.waitUntil(lambda: dialog.status is not None, timeout=5000)
    when = f"{grace.astimezone():%d %b %Y}"
    assert dialog.status_label.text() == "Payment problem"
    assert dialog.cloud_label.text() == f"Included until {when} unless paid"
    assert f"keeps working until {when}" in dialog.message_label.text()
    assert dialog.upgrade_button.isHidden() and not dialog.manage_button.isHidden()


def test_grace_until_is_read_from_the_server_answer() -> None:
    answer = {
        "tier": "pro",
        "status": "past_due",
        "entitled": True,
        "current_period_end": "2026-12-22T12:00:00Z",
        "grace_until": "2026-12-29T12:00:00Z",
    }
    status = AccountStatus.from_json(answer)
    assert status.grace_until == datetime(2026, 12, 29, 12, tzinfo=UTC)
    assert AccountStatus.from_json({**answer, "grace_until": None}).grace_until is None
    assert (
        AccountStatus.from_json({k: v for k, v in answer.items() if k != "grace_until"}).grace_until
        is None
    )


def test_upgrade_when_ready_starts_checkout_for_a_free_plan(qtbot) -> None:
    # What Upgrade in the "cloud processing refused" prompt does: no second click needed.
    service = FakeAccount(FREE)
    browser = Browser()
    dialog = _dialog(qtbot, service, browser)
    with qtbot.wait_signal(dialog.url_opened, timeout=5000):
        dialog.upgrade_when_ready()
    assert service.calls[:2] == ["subscription", "checkout"]
    assert browser.opened == ["https://checkout.stripe.com/c/pay/cs_test_1"]
    assert "Finish the payment in your browser" in dialog.message_label.text()


@pytest.mark.parametrize(
    "status",
    [PRO, replace(PRO, status="past_due", entitled=False)],
    ids=["already-pro", "payment-problem"],
)
def test_upgrade_when_ready_only_shows_the_account_when_there_is_nothing_to_buy(
    qtbot, status: AccountStatus
) -> None:
    service = FakeAccount(status)
    dialog = _dialog(qtbot, service)
    qtbot.waitUntil(lambda: dialog.status is not None and not dialog.busy, timeout=5000)
    dialog.upgrade_when_ready()  # status already loaded: decided at once
    with qtbot.wait_signal(dialog.loaded, timeout=5000):
        dialog.refresh()
    assert "checkout" not in service.calls
    assert dialog.upgrade_button.isHidden() and not dialog.manage_button.isHidden()
