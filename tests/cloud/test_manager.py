"""CloudManager end to end with the real backend: signals arrive on the UI thread, a settings
choice on sign-in reloads the app's settings, a settings change is pushed by itself, a restart
resumes the session, a restore refreshes the library, sign-out returns to Local Mode."""

from __future__ import annotations

import threading
from typing import Any

import httpx
from cloud_support import PASSWORD, Backend, new_email

from nojoin.cloud.auth_service import Account
from nojoin.cloud.manager import CloudManager
from nojoin.config.manager import ConfigManager
from nojoin.config.repository import LocalConfigRepository
from nojoin.config.settings import Settings, Theme
from nojoin.library import Library


def _put_cloud_config(backend: Backend, email: str, config: dict[str, Any]) -> None:
    """Another computer stored these settings (plain HTTP, as any client would)."""
    headers = {"apikey": backend.anon_key}
    token = httpx.post(
        f"{backend.url}/auth/v1/token",
        params={"grant_type": "password"},
        json={"email": email, "password": PASSWORD},
        headers=headers,
    ).json()["access_token"]
    r = httpx.put(
        f"{backend.url}/api/v1/config",
        json={"config": config, "version": 0},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text


def test_manager_end_to_end(qtbot: Any, cloud_env: Backend) -> None:
    email = new_email()
    httpx.post(
        f"{cloud_env.url}/auth/v1/signup",
        json={"email": email, "password": PASSWORD},
        headers={"apikey": cloud_env.anon_key},
    ).raise_for_status()
    _put_cloud_config(cloud_env, email, {"theme": "dark", "model": "small.en"})

    local = LocalConfigRepository()
    local.save(Settings(theme=Theme.LIGHT, model="small.en", mic_device="Desk mic"))
    config = ConfigManager(local)
    changes: list[tuple[Settings, Settings]] = []
    config.add_listener(lambda old, new: changes.append((old, new)))
    manager = CloudManager()
    manager.attach_config(config)
    main = threading.current_thread()
    seen_threads: list[threading.Thread] = []
    manager.auth_state_changed.connect(lambda _a: seen_threads.append(threading.current_thread()))

    with qtbot.waitSignal(manager.sync_conflict, timeout=20_000) as asked:
        manager.sign_in(email, PASSWORD)
    result = asked.args[0]
    assert [(d.name, d.local, d.cloud) for d in result.differences] == [("theme", "light", "dark")]
    assert isinstance(manager.account, Account) and manager.account.email == email
    assert seen_threads == [main]

    with qtbot.waitSignal(manager.sync_state_changed, timeout=20_000):
        manager.resolve_conflict(result, "cloud")
    qtbot.waitUntil(lambda: config.settings.theme is Theme.DARK, timeout=10_000)
    assert changes and changes[-1][1].theme is Theme.DARK  # applied live
    assert config.settings.mic_device == "Desk mic"

    # A change in Settings goes to the file at once and to the cloud by itself.
    config.update(language="en")
    assert local.load().settings.language == "en"
    qtbot.waitUntil(lambda: manager.sync_status == "Settings synced", timeout=20_000)
    qtbot.waitUntil(lambda: manager.api.get_config().config.get("language") == "en", timeout=20_000)

    # Back up, change the library, restore: the library_restored signal fires.
    lib = Library()
    lib.add_meeting("Kept in the backup")
    done: list[Any] = []
    task = manager.back_up()
    task.completed.connect(done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=20_000)
    lib.add_meeting("Added later")
    with qtbot.waitSignal(manager.library_restored, timeout=20_000) as restored:
        manager.restore(done[0])
    assert restored.args[0].meetings == 1
    assert [m.title for m in lib.list_meetings()] == ["Kept in the backup"]
    lib.close()
    manager.shutdown()

    # "Restart": a new manager resumes the session from the keyring.
    again = CloudManager()
    again.attach_config(ConfigManager(LocalConfigRepository()))
    with qtbot.waitSignal(again.auth_state_changed, timeout=20_000) as resumed:
        again.start()
    assert resumed.args[0] == manager.account
    with qtbot.waitSignal(again.auth_state_changed, timeout=20_000) as out:
        again.sign_out()
    assert out.args == [None]
    assert again.auth.stored_session() is None
    again.shutdown()
