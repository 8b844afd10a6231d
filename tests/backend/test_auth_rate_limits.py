"""Rate limits of the built-in auth server, through the real supabase client on a live
uvicorn: sign-ups per client address, password-reset mails per address and per client."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from supabase import Client, ClientOptions, create_client
from supabase_auth.errors import AuthApiError

from backend.runtime import Runtime

PASSWORD = "correct horse battery"
SIGNUPS, RESETS_PER_EMAIL, RESETS_PER_IP = 3, 2, 4
_hosts = itertools.count(10)


@pytest.fixture(scope="module")
def backend_settings_overrides() -> dict[str, Any]:
    return {
        "signup_max_per_ip": SIGNUPS,
        "recover_max_per_email": RESETS_PER_EMAIL,
        "recover_max_per_ip": RESETS_PER_IP,
    }


@pytest.fixture
def client_at(live_server: str, runtime: Runtime) -> Iterator[Callable[[], Client]]:
    """client_at() -> a supabase client on its own loopback address (127.0.0.N), so every
    client is a different network as far as the server can tell."""
    assert runtime.anon_key
    made: list[Client] = []

    def make() -> Client:
        host = f"127.0.0.{next(_hosts)}"
        http = httpx.Client(transport=httpx.HTTPTransport(local_address=host), timeout=30)
        options = ClientOptions(auto_refresh_token=False, httpx_client=http)
        client = create_client(live_server, runtime.anon_key or "", options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.auth.close()


def _email() -> str:
    return f"u-{uuid.uuid4().hex[:10]}@example.test"


def _outbox_count(runtime: Runtime, email: str) -> int:
    with runtime.db.transaction() as conn:
        row = conn.execute(
            "SELECT count(*) AS n FROM nojoin_auth.mail_outbox WHERE recipient = %s", (email,)
        ).fetchone()
    return int(row["n"]) if row else 0


def test_signups_are_limited_per_client_address(client_at: Callable[[], Client]) -> None:
    sb = client_at()
    taken = _email()
    assert sb.auth.sign_up({"email": taken, "password": PASSWORD}).session is not None
    sb.auth.sign_out()
    # Probing for taken addresses counts as well.
    with pytest.raises(AuthApiError) as err:
        sb.auth.sign_up({"email": taken, "password": PASSWORD})
    assert err.value.code == "user_already_exists"
    for _ in range(SIGNUPS - 2):
        assert sb.auth.sign_up({"email": _email(), "password": PASSWORD}).session is not None
        sb.auth.sign_out()

    with pytest.raises(AuthApiError) as err:
        sb.auth.sign_up({"email": _email(), "password": PASSWORD})
    assert err.value.status == 429 and err.value.code == "over_request_rate_limit"
    assert "sign-ups" in err.value.message
    assert sb.auth.get_session() is None

    # Somebody on another network is not affected.
    other = client_at()
    assert other.auth.sign_up({"email": _email(), "password": PASSWORD}).session is not None


def test_signup_429_has_gotrue_shape(live_server: str, runtime: Runtime) -> None:
    http = httpx.Client(transport=httpx.HTTPTransport(local_address=f"127.0.0.{next(_hosts)}"))
    with http:
        statuses = [
            http.post(
                f"{live_server}/auth/v1/signup",
                json={"email": _email(), "password": PASSWORD},
                headers={"apikey": runtime.anon_key or ""},
            )
            for _ in range(SIGNUPS + 1)
        ]
    assert [r.status_code for r in statuses] == [200] * SIGNUPS + [429]
    refused = statuses[-1]
    body = refused.json()
    assert body["code"] == body["error_code"] == "over_request_rate_limit"
    assert body["msg"] == body["detail"] and "Try again in" in body["detail"]
    assert 3500 < int(refused.headers["retry-after"]) <= 3601  # the hour's window
    assert "access_token" not in body


def test_reset_mails_are_limited_per_address_and_per_client(
    client_at: Callable[[], Client], runtime: Runtime
) -> None:
    sb = client_at()
    victim = _email()
    sb.auth.sign_up({"email": victim, "password": PASSWORD})
    sb.auth.sign_out()

    for _ in range(RESETS_PER_EMAIL):
        sb.auth.reset_password_for_email(victim)
    with pytest.raises(AuthApiError) as err:
        sb.auth.reset_password_for_email(victim)
    assert err.value.status == 429 and err.value.code == "over_email_send_rate_limit"
    # From elsewhere too: the mailbox is what is protected.
    with pytest.raises(AuthApiError) as err:
        client_at().auth.reset_password_for_email(victim)
    assert err.value.status == 429
    assert _outbox_count(runtime, victim) == RESETS_PER_EMAIL

    # One client spraying addresses (known or not) stops at the per-client limit.
    for _ in range(RESETS_PER_IP - RESETS_PER_EMAIL):
        sb.auth.reset_password_for_email(_email())
    with pytest.raises(AuthApiError) as err:
        sb.auth.reset_password_for_email(_email())
    assert err.value.status == 429 and err.value.code == "over_email_send_rate_limit"


def test_attempts_older_than_every_window_are_purged(
    client_at: Callable[[], Client], runtime: Runtime
) -> None:
    # Rows no limit can count any more (older than the longest window, an hour here) go as
    # soon as another attempt is recorded, so the table cannot grow without end.
    with runtime.db.transaction() as conn:
        conn.execute(
            "INSERT INTO nojoin_auth.attempts (key, attempted_at) VALUES"
            " ('signup:ip:203.0.113.9', now() - interval '2 hours'),"
            " ('signup:ip:203.0.113.9', now() - interval '30 minutes')"
        )
    client_at().auth.sign_up({"email": _email(), "password": PASSWORD})
    with runtime.db.transaction() as conn:
        ages = [
            r["age"]
            for r in conn.execute(
                "SELECT extract(epoch FROM now() - attempted_at) AS age"
                " FROM nojoin_auth.attempts WHERE key = 'signup:ip:203.0.113.9'"
            ).fetchall()
        ]
    assert len(ages) == 1 and 1700 < ages[0] < 1900  # the 30-minute-old row is still counted
