"""Settings sync against the real backend: choice on sign-in (both ways), offline changes queued
and pushed later (also across a restart), 409s merged or handed to the user, nothing local-only
or secret sent."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cloud_support import PASSWORD, Device, Relay, new_email

from nojoin.cloud.config_sync import SyncOutcome
from nojoin.config.cloud_repository import (
    CloudConfigRepository,
    SyncStateStore,
    is_secret_name,
    shared_settings,
)
from nojoin.config.manager import ConfigManager
from nojoin.config.settings import Settings, Theme

MakeDevice = Callable[..., Device]


def _signed_in(dev: Device, email: str, *, new: bool = False) -> str:
    account = dev.auth.sign_up(email, PASSWORD) if new else dev.auth.sign_in(email, PASSWORD)
    assert account is not None
    dev.repo.active = True
    return account.user_id


def _first_device(device: MakeDevice) -> tuple[Device, str, str]:
    """A computer that signed up and put its settings (dark theme, 'de') in the cloud."""
    email = new_email()
    a = device("a")
    a.repo.local.save(Settings(theme=Theme.DARK, language="de", mic_device="USB mic A"))
    uid = _signed_in(a, email, new=True)
    assert a.sync.on_sign_in(uid).outcome is SyncOutcome.PUSHED
    return a, email, uid


def test_sign_in_with_different_settings_keep_this_computer(device: MakeDevice) -> None:
    a, email, uid = _first_device(device)
    b = device("b")
    b.repo.local.save(Settings(theme=Theme.LIGHT, language="de", mic_device="Headset B"))
    assert _signed_in(b, email) == uid
    result = b.sync.on_sign_in(uid)
    assert result.outcome is SyncOutcome.NEEDS_CHOICE
    assert [(d.name, d.local, d.cloud) for d in result.differences] == [("theme", "light", "dark")]
    assert result.remote is not None
    done = b.sync.resolve(uid, "local", result.remote)
    assert done.outcome is SyncOutcome.PUSHED
    cloud = b.api.get_config()
    assert cloud.config["theme"] == "light"
    # The other computer picks it up on its next sync; its own mic stays.
    pulled = a.sync.sync(uid)
    assert pulled.outcome is SyncOutcome.PULLED and pulled.local_changed
    local_a = a.repo.local.load().settings
    assert local_a.theme is Theme.LIGHT and local_a.mic_device == "USB mic A"


def test_sign_in_with_different_settings_keep_cloud(device: MakeDevice) -> None:
    _a, email, uid = _first_device(device)
    b = device("b")
    b.repo.local.save(Settings(theme=Theme.LIGHT, language="fr", mic_device="Headset B"))
    _signed_in(b, email)
    result = b.sync.on_sign_in(uid)
    assert {d.name for d in result.differences} == {"theme", "language"}
    assert result.remote is not None
    done = b.sync.resolve(uid, "cloud", result.remote)
    assert done.outcome is SyncOutcome.PULLED and done.local_changed
    local = b.repo.local.load().settings
    assert (local.theme, local.language, local.mic_device) == (Theme.DARK, "de", "Headset B")
    assert b.api.get_config().version == result.remote.version  # the cloud was not touched


def test_cancelled_choice_changes_nothing_and_asks_again(device: MakeDevice) -> None:
    _a, email, uid = _first_device(device)
    b = device("b")
    b.repo.local.save(Settings(theme=Theme.LIGHT))
    _signed_in(b, email)
    first = b.sync.on_sign_in(uid)
    assert b.sync.postpone(uid).outcome is SyncOutcome.PAUSED
    b.repo.save(Settings(theme=Theme.LIGHT, model="base"))  # a change meanwhile
    again = b.sync.sync(uid)  # still asks; nothing was overwritten anywhere
    assert again.outcome is SyncOutcome.NEEDS_CHOICE
    assert first.remote is not None
    assert b.api.get_config().version == first.remote.version
    assert b.repo.local.load().settings.model == "base"


def test_offline_change_is_queued_then_pushed_after_restart(
    device: MakeDevice, relay: Relay
) -> None:
    _a, email, uid = _first_device(device)
    b = device("b", url=relay.url, retries=1)
    _signed_in(b, email)
    result = b.sync.on_sign_in(uid)
    assert result.remote is not None
    b.sync.resolve(uid, "cloud", result.remote)

    notified: list[bool] = []
    b.repo.on_change = lambda: notified.append(True)
    manager = ConfigManager(b.repo)
    relay.stop()  # the network goes away
    manager.update(model="base")  # saved locally at once, queued for the cloud
    assert notified == [True]
    assert b.repo.local.load().settings.model == "base"
    assert b.repo.state().pending
    assert b.sync.sync(uid).outcome is SyncOutcome.OFFLINE
    assert b.repo.state().pending

    # "Restart" while still offline: the queue is in the sync state file.
    repo2 = CloudConfigRepository(b.repo.local, SyncStateStore(b.config_dir / "cloud_sync.json"))
    assert repo2.state().pending

    relay.start()  # the network is back
    b.repo = repo2
    b.sync.repo = repo2
    assert b.sync.sync(uid).outcome is SyncOutcome.PUSHED
    assert not repo2.state().pending
    assert b.api.get_config().config["model"] == "base"


def test_conflicting_versions_merge_when_different_settings_changed(device: MakeDevice) -> None:
    a, email, uid = _first_device(device)
    b = device("b")
    _signed_in(b, email)
    first = b.sync.on_sign_in(uid)
    assert first.remote is not None
    b.sync.resolve(uid, "cloud", first.remote)

    a.repo.save(a.repo.local.load().settings.replace(theme="light"))
    assert a.sync.sync(uid).outcome is SyncOutcome.PUSHED
    b.repo.save(b.repo.local.load().settings.replace(language="en"))
    merged = b.sync.sync(uid)  # 409 (A pushed meanwhile) -> three-way merge
    assert merged.outcome is SyncOutcome.MERGED and merged.local_changed
    cloud = b.api.get_config().config
    assert (cloud["theme"], cloud["language"]) == ("light", "en")
    local_b = b.repo.local.load().settings
    assert (local_b.theme, local_b.language) == (Theme.LIGHT, "en")


def test_same_setting_changed_on_two_devices_is_never_silently_overwritten(
    device: MakeDevice,
) -> None:
    a, email, uid = _first_device(device)
    b = device("b")
    _signed_in(b, email)
    first = b.sync.on_sign_in(uid)
    assert first.remote is not None
    b.sync.resolve(uid, "cloud", first.remote)

    a.repo.save(a.repo.local.load().settings.replace(model="small"))
    a.sync.sync(uid)
    b.repo.save(b.repo.local.load().settings.replace(model="base"))
    result = b.sync.sync(uid)
    assert result.outcome is SyncOutcome.NEEDS_CHOICE
    assert result.conflicts == ("model",)
    assert b.api.get_config().config["model"] == "small"  # A's change survived
    assert b.repo.local.load().settings.model == "base"  # and so did B's, locally
    assert result.remote is not None
    assert b.sync.resolve(uid, "local", result.remote).outcome is SyncOutcome.PUSHED
    assert b.api.get_config().config["model"] == "base"


def test_local_only_and_secret_settings_are_never_sent(device: MakeDevice) -> None:
    _a, _email, _uid = a_ = _first_device(device)
    cloud = a_[0].api.get_config().config
    assert "mic_device" not in cloud and "data_folder" not in cloud and "device" not in cloud
    shared = shared_settings({"theme": "dark", "hf_token": "hf_x", "openai_api_key": "k"})
    assert shared == {"theme": "dark"}
    assert all(not is_secret_name(k) for k in cloud)


@pytest.mark.parametrize("name", ["hf_token", "api_key", "apiKey", "client_secret", "password"])
def test_secret_looking_names(name: str) -> None:
    assert is_secret_name(name)
