"""Accounts against the real backend's built-in auth through the real supabase client:
register, sign in, session kept in the keyring only, restart, refresh, sign out, expiry."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from cloud_support import PASSWORD, Backend, free_port, new_email
from supabase_auth.constants import STORAGE_KEY

from nojoin.cloud.api_client import ApiClient
from nojoin.cloud.auth_service import AuthEvent, AuthEventKind, AuthService
from nojoin.cloud.errors import AuthError, NotSignedInError, SessionExpiredError
from nojoin.cloud.session_storage import KeyringSessionStorage
from nojoin.cloud.settings import CloudSettings, load_cloud_settings


def _files_containing(root: Path, needle: str) -> list[Path]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and needle.encode() in path.read_bytes():
            hits.append(path)
    return hits


def test_register_login_restart_refresh_logout(
    cloud_env: Backend, memory_keyring: Any, nojoin_dirs: Path
) -> None:
    email = new_email()
    first = AuthService()
    events: list[AuthEvent] = []
    first.add_listener(events.append)
    account = first.sign_up(email, PASSWORD)
    assert account is not None and account.email == email
    first.sign_out()
    assert first.account is None
    assert [e.kind for e in events] == [AuthEventKind.SIGNED_IN, AuthEventKind.SIGNED_OUT]

    account = first.sign_in(email, PASSWORD)
    token = first.access_token()
    # The session is in the keyring, and nowhere on disk.
    assert any(STORAGE_KEY in user for (_svc, user) in memory_keyring.store)
    assert _files_containing(nojoin_dirs, token[-40:]) == []
    first.close()

    # "Restart": brand-new objects find the session in the keyring.
    second = AuthService()
    restored = second.restore()
    assert restored == account
    with _api(second) as api:
        assert api.get_config().version == 0  # the token works against /api/v1

    old_refresh = second.stored_session().refresh_token  # type: ignore[union-attr]
    second.refresh()
    new_session = second.stored_session()
    assert new_session is not None and new_session.refresh_token != old_refresh
    with _api(second) as api:
        api.get_config()

    second.sign_out()
    assert not [k for k in memory_keyring.store if "auth.token" in k[1]]
    second.close()
    third = AuthService()
    assert third.restore() is None
    with pytest.raises(NotSignedInError):
        third.access_token()
    third.close()


class _api:
    def __init__(self, auth: AuthService) -> None:
        self.client = ApiClient(auth.settings.api_url, auth)

    def __enter__(self) -> ApiClient:
        return self.client

    def __exit__(self, *exc: object) -> None:
        self.client.close()


def test_wrong_password_and_bad_input_have_clear_messages(cloud_env: Backend) -> None:
    auth = AuthService()
    email = new_email()
    auth.sign_up(email, PASSWORD)
    auth.sign_out()
    with pytest.raises(AuthError, match="Wrong email or password"):
        auth.sign_in(email, "not the password")
    with pytest.raises(AuthError, match="already exists"):
        auth.sign_up(email, PASSWORD)
    with pytest.raises(AuthError, match="valid email"):
        auth.sign_in("not-an-email", PASSWORD)
    with pytest.raises(AuthError, match="at least 8"):
        auth.sign_up(new_email(), "short")
    assert auth.account is None
    auth.close()


def _mailed_code(backend: Backend, email: str) -> str:
    mails = [json.loads(p.read_text()) for p in sorted((backend.data_dir / "mail").glob("*.json"))]
    [body] = [m["body"] for m in mails if m["to"] == email][-1:]
    match = re.search(r"Your code: (\d{6})", body)
    assert match, body
    return match.group(1)


def test_password_reset_with_the_emailed_code(cloud_env: Backend) -> None:
    auth = AuthService(auto_refresh=False)
    email = new_email()
    auth.sign_up(email, PASSWORD)
    auth.sign_out()
    auth.reset_password(email)
    auth.reset_password(new_email())  # unknown address: same answer, reveals nothing
    with pytest.raises(AuthError, match="wrong or has expired"):
        auth.complete_password_reset(email, "not-a-code", "a brand new password")
    code = _mailed_code(cloud_env, email)
    account = auth.complete_password_reset(email, code, "a brand new password")
    assert account.email == email and auth.account == account
    auth.sign_out()
    with pytest.raises(AuthError, match="Wrong email or password"):
        auth.sign_in(email, PASSWORD)
    assert auth.sign_in(email, "a brand new password") == account
    auth.close()


def test_session_is_refreshed_before_it_expires(cloud_env: Backend) -> None:
    # Every session "expires" 1.5 s after it was issued, so the refreshes follow each other.
    auth = AuthService(refresh_margin=3600 - 1.5)
    refreshed_to: list[str] = []
    changed = threading.Condition()

    def on_event(e: AuthEvent) -> None:
        session = auth.stored_session()
        if e.kind is AuthEventKind.TOKEN_REFRESHED and session is not None:
            with changed:
                refreshed_to.append(session.refresh_token)
                changed.notify_all()

    auth.add_listener(on_event)
    auth.sign_up(new_email(), PASSWORD)
    before = auth.stored_session()
    assert before is not None
    # A slow machine may reach this line after the first refresh already happened: wait for
    # a refresh to a token other than the one just read (the next follows 1.5 s later).
    with changed:
        assert changed.wait_for(
            lambda: any(t != before.refresh_token for t in refreshed_to), timeout=15
        ), "the background refresh did not happen"
    after = auth.stored_session()
    assert after is not None and after.refresh_token != before.refresh_token
    auth.close()


def test_revoked_session_signs_out_cleanly(cloud_env: Backend, memory_keyring: Any) -> None:
    auth = AuthService(auto_refresh=False)
    events: list[AuthEvent] = []
    auth.add_listener(events.append)
    auth.sign_up(new_email(), PASSWORD)
    token = auth.access_token()
    # Signed out everywhere from another device.
    r = httpx.post(
        f"{cloud_env.url}/auth/v1/logout",
        params={"scope": "global"},
        headers={"Authorization": f"Bearer {token}", "apikey": cloud_env.anon_key},
    )
    assert r.status_code == 204
    with pytest.raises(SessionExpiredError, match="Sign in again"):
        auth.refresh()
    assert auth.account is None
    assert events[-1].kind is AuthEventKind.SESSION_EXPIRED
    assert "Sign in again" in events[-1].message
    assert not [k for k in memory_keyring.store if "auth.token" in k[1]]
    auth.close()


def test_expired_session_at_start_up_logs_out_cleanly(
    cloud_env: Backend, memory_keyring: Any
) -> None:
    auth = AuthService(auto_refresh=False)
    auth.sign_up(new_email(), PASSWORD)
    auth.close()
    # The stored session expired long ago and its refresh token is no longer valid.
    storage = KeyringSessionStorage(load_cloud_settings().server_id)
    raw = json.loads(storage.get_item(STORAGE_KEY) or "{}")
    raw["expires_at"] = 1_000_000_000
    raw["refresh_token"] = "revoked-or-unknown"
    storage.set_item(STORAGE_KEY, json.dumps(raw))

    again = AuthService(auto_refresh=False)
    events: list[AuthEvent] = []
    again.add_listener(events.append)
    assert again.restore() is None
    assert again.account is None
    assert storage.get_item(STORAGE_KEY) is None
    assert [e.kind for e in events] == [AuthEventKind.SESSION_EXPIRED]
    with pytest.raises(NotSignedInError):
        again.access_token()
    again.close()


def test_offline_at_start_up_keeps_the_session(cloud_env: Backend) -> None:
    auth = AuthService(auto_refresh=False)
    account = auth.sign_up(new_email(), PASSWORD)
    auth.close()
    # The same keyring entry, but nothing answers at the address: offline.
    settings = load_cloud_settings()
    closed = f"http://127.0.0.1:{free_port()}"
    offline = AuthService(
        CloudSettings(closed, closed, settings.anon_key),
        KeyringSessionStorage(settings.server_id),
        auto_refresh=False,
    )
    assert offline.restore() == account
    assert offline.account == account
    assert offline.access_token()  # the stored token is still valid for a while
    offline.close()


def test_lazy_storage_key_matches_supabase() -> None:
    from supabase_auth.constants import STORAGE_KEY as real

    from nojoin.cloud import supabase_lazy

    assert supabase_lazy.STORAGE_KEY == real
