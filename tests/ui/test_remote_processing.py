"""Processing on Nojoin Cloud from the desktop app: the Settings choice, the queue running the
pipeline's remote strategy, and what the user can do when the cloud refuses a meeting (403:
Upgrade or process here; 429: when to retry, or process here; signed out: sign in or here).

The pipeline's "remote" strategy is a scripted stand-in (the real one against the real backend
is in tests/backend/jobs/test_remote_pipeline.py); its errors are the real error types with
the backend's own messages.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QApplication, QDialogButtonBox
from ui_support import FREE, PRO, FakeAccount, FakeCloud, Harness, error_boxes

from backend.billing.service import NEEDS_SUBSCRIPTION
from nojoin.config import LocalConfigRepository
from nojoin.models import MeetingStatus
from nojoin.processing.contract import CancelToken, ProcessingOptions
from nojoin.processing.strategies.remote_strategy import (
    QuotaExceededError,
    RemoteAuthError,
    RemoteProcessingStrategy,
    SubscriptionRequiredError,
)
from nojoin.ui.errors import RemoteFailureBox
from nojoin.ui.settings_dialog import SettingsDialog

pytestmark = [pytest.mark.gui]

QUOTA_MESSAGE = (
    "You have used all 25 cloud processing jobs for today; the limit resets at midnight UTC. "
    "Upgrade to Pro for more. You can process this meeting on this computer now."
)


def remote_failure_boxes() -> list[RemoteFailureBox]:
    return [
        w
        for w in QApplication.topLevelWidgets()
        if isinstance(w, RemoteFailureBox) and w.isVisible()
    ]


def _one_box(qtbot: Any) -> RemoteFailureBox:
    qtbot.waitUntil(lambda: len(remote_failure_boxes()) == 1, timeout=5000)
    return remote_failure_boxes()[0]


@pytest.fixture
def cloud(harness: Harness) -> Any:
    fake = FakeCloud(FakeAccount(FREE, FREE, PRO))
    harness.window.attach_cloud(fake)
    yield fake
    fake.close()


def test_cloud_setting_sends_meetings_to_the_remote_strategy(
    harness: Harness, cloud: FakeCloud, qtbot: Any
) -> None:
    harness.app.config.update(processing_mode="remote")
    mid = harness.add_meeting("Sales call")
    w = harness.window
    w.process_meeting(mid)
    qtbot.waitUntil(
        lambda: harness.library.get_meeting(mid).status is MeetingStatus.PROCESSED, timeout=5000
    )
    assert len(harness.remote.calls) == 1 and harness.strategy.calls == []
    assert harness.remote.calls[0][0] == harness.wav
    assert harness.app.queue.items[0].mode == "remote"
    row = w.queue_widget.row(mid)
    assert row is not None and row.title.text() == "☁ Sales call"
    assert [s.text for s in harness.library.get_transcript(mid).segments][0].startswith(
        "Good morning"
    )

    # Back to "This computer": the next run is local.
    harness.app.config.update(processing_mode="local")
    other = harness.add_meeting("Standup")
    w.process_meeting(other)
    qtbot.waitUntil(lambda: len(harness.strategy.calls) == 1, timeout=5000)
    assert len(harness.remote.calls) == 1


def test_no_plan_offers_upgrade_or_processing_here(
    harness: Harness, cloud: FakeCloud, qtbot: Any
) -> None:
    harness.app.config.update(processing_mode="remote")
    harness.remote.error = SubscriptionRequiredError(NEEDS_SUBSCRIPTION, status_code=403)
    mid = harness.add_meeting("Board meeting")
    harness.window.open_meeting(mid)
    harness.window.process_meeting(mid)

    box = _one_box(qtbot)
    assert "Board meeting" in box.text() and "Nojoin Cloud" in box.text()
    assert NEEDS_SUBSCRIPTION in box.informativeText()  # the server's own words
    assert box.upgrade_button is not None and box.upgrade_button.text() == "Upgrade…"
    assert box.local_button.text() == "Process on this computer"
    assert box.cancel_button is not None
    m = harness.library.get_meeting(mid)
    assert m.status is MeetingStatus.ERROR and "Nojoin Pro" in (m.error or "")

    with qtbot.wait_signal(harness.app.queue.item_completed, timeout=5000) as done:
        qtbot.mouseClick(box.local_button, Qt.MouseButton.LeftButton)
    assert done.args == [mid]
    assert len(harness.strategy.calls) == 1  # processed here, with the same options
    assert harness.strategy.calls[0][1] == harness.remote.calls[0][1]
    assert harness.library.get_meeting(mid).status is MeetingStatus.PROCESSED
    qtbot.waitUntil(lambda: harness.window.meeting_view.model.rowCount() == 4, timeout=5000)
    assert harness.app.config.settings.processing_mode == "remote"  # a one-off
    assert error_boxes() == []


def test_upgrade_starts_checkout_then_sends_the_meeting_to_the_cloud(
    harness: Harness, cloud: FakeCloud, qtbot: Any
) -> None:
    harness.app.config.update(processing_mode="remote")
    harness.remote.error = SubscriptionRequiredError(NEEDS_SUBSCRIPTION, status_code=403)
    mid = harness.add_meeting("Roadmap")
    harness.window.process_meeting(mid)
    box = _one_box(qtbot)
    assert box.upgrade_button is not None
    qtbot.mouseClick(box.upgrade_button, Qt.MouseButton.LeftButton)

    # The Account dialog opens checkout in the browser, as its own Upgrade button does...
    qtbot.waitUntil(lambda: len(cloud.browser.opened) == 1, timeout=5000)
    assert cloud.browser.opened == ["https://checkout.stripe.com/c/pay/cs_test_1"]
    assert "checkout" in cloud.account.calls
    # ...and once the payment made the plan Pro, the meeting goes to the cloud again.
    harness.remote.error = None
    qtbot.waitUntil(
        lambda: harness.library.get_meeting(mid).status is MeetingStatus.PROCESSED, timeout=5000
    )
    assert len(harness.remote.calls) == 2 and harness.strategy.calls == []
    assert cloud.dialogs[0].plan_label.text() == "Nojoin Pro"


def test_quota_says_when_to_retry_and_offers_processing_here(
    harness: Harness, cloud: FakeCloud, qtbot: Any
) -> None:
    harness.app.config.update(processing_mode="remote")
    harness.remote.error = QuotaExceededError(QUOTA_MESSAGE, retry_after=2 * 3600 + 5 * 60)
    mid = harness.add_meeting("Retro")
    harness.window.process_meeting(mid)

    box = _one_box(qtbot)
    text = box.informativeText().replace("\u00a0", " ")
    assert QUOTA_MESSAGE in text
    assert "again in 2 h 5 min" in text
    assert re.search(r"\(at \d\d:\d\d\)", text)
    assert box.upgrade_button is None  # only a missing plan offers Upgrade
    assert box.local_button.text() == "Process on this computer"

    qtbot.mouseClick(box.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: remote_failure_boxes() == [], timeout=3000)
    assert harness.library.get_meeting(mid).status is MeetingStatus.ERROR
    assert harness.strategy.calls == [] and not harness.app.queue.is_busy()


def test_signed_out_says_sign_in_or_process_here(
    harness: Harness, qtbot: Any, tmp_path: Path
) -> None:
    # The real strategy with nobody signed in (no connection installed): its message.
    strategy = RemoteProcessingStrategy()
    with pytest.raises(RemoteAuthError) as info:
        strategy.process(harness.wav, ProcessingOptions(), lambda p: None, CancelToken())
    strategy.close()
    harness.app.config.update(processing_mode="remote")
    harness.remote.error = info.value
    mid = harness.add_meeting("Interview")
    harness.window.process_meeting(mid)

    box = _one_box(qtbot)
    assert "Sign in to Nojoin Cloud" in box.informativeText()
    assert box.detailedText() == ""  # a message, not a traceback
    assert box.upgrade_button is None  # no account to upgrade
    with qtbot.wait_signal(harness.app.queue.item_completed, timeout=5000):
        qtbot.mouseClick(box.local_button, Qt.MouseButton.LeftButton)
    assert harness.library.get_meeting(mid).status is MeetingStatus.PROCESSED


def _remote_item(dialog: SettingsDialog) -> Any:
    model = dialog.processing.model()
    assert isinstance(model, QStandardItemModel)
    return model.item(dialog.processing.findData("remote"))


def test_settings_offer_nojoin_cloud_once_signed_in(harness: Harness, qtbot: Any) -> None:
    config = harness.app.config
    # No cloud at all (no address in this build): this computer only.
    dialog = SettingsDialog(config, harness.window)
    qtbot.addWidget(dialog)
    assert dialog.processing.currentText() == "This computer"
    assert not _remote_item(dialog).isEnabled()
    assert "no Nojoin Cloud address" in dialog.processing_note.text()

    # Signed out: marked, disabled, and the note says to sign in.
    signed_out = FakeCloud(signed_in=False)
    dialog = SettingsDialog(config, harness.window, cloud=signed_out)
    qtbot.addWidget(dialog)
    assert not _remote_item(dialog).isEnabled()
    assert _remote_item(dialog).text() == "Nojoin Cloud (sign in first)"
    assert "sign in from the Cloud menu" in dialog.processing_note.text()

    # Signed in: choose Nojoin Cloud, OK -> stored, and shown again by a new dialog.
    signed_in = FakeCloud()
    dialog = SettingsDialog(config, harness.window, cloud=signed_in)
    qtbot.addWidget(dialog)
    assert _remote_item(dialog).isEnabled()
    assert "uploaded and transcribed" in dialog.processing_note.text()
    dialog.processing.setCurrentIndex(dialog.processing.findData("remote"))
    with qtbot.wait_signal(dialog.applied):
        qtbot.mouseClick(
            dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton
        )
    stored = LocalConfigRepository().load().settings
    assert stored.processing_mode == "remote"
    again = SettingsDialog(config, harness.window, cloud=signed_in)
    qtbot.addWidget(again)
    assert again.processing.currentText() == "Nojoin Cloud"

    # Signed out later: the stored choice is kept (never changed silently), with a warning.
    later = SettingsDialog(config, harness.window, cloud=signed_out)
    qtbot.addWidget(later)
    assert later.processing.currentData() == "remote" and _remote_item(later).isEnabled()
    assert "cannot be processed" in later.processing_note.text()
    assert later.values()["processing_mode"] == "remote"
