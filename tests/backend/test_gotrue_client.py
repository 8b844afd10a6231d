"""The real supabase-py client against the built-in auth server on a live uvicorn."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from supabase import Client, ClientOptions, create_client
from supabase_auth.errors import AuthApiError, AuthWeakPasswordError

from backend.runtime import Runtime

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def backend_settings_overrides() -> dict[str, Any]:
    return {"signin_max_attempts": 3}


@pytest.fixture
def sb(live_server: str, runtime: Runtime) -> Iterator[Client]:
    assert runtime.anon_key
    client = create_client(live_server, runtime.anon_key, ClientOptions(auto_refresh_token=False))
    yield client
    client.auth.close()


def _email() -> str:
    return f"u-{uuid.uuid4().hex[:10]}@example.test"


def test_signup_signin_refresh_user_signout(sb: Client, live_server: str) -> None:
    email = _email()
    res = sb.auth.sign_up({"email": email, "password": PASSWORD})
    assert res.session is not None and res.user is not None
    assert res.user.email == email
    assert res.user.aud == "authenticated"
    user_id = res.user.id

    signed_in = sb.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    assert signed_in.session is not None and signed_in.user is not None
    assert signed_in.user.id == user_id
    first = signed_in.session

    me = sb.auth.get_user()
    assert me is not None and me.user.id == user_id and me.user.email == email

    refreshed = sb.auth.refresh_session()
    assert refreshed.session is not None
    assert refreshed.session.refresh_token != first.refresh_token
    assert refreshed.session.access_token != first.access_token

    # The backend API accepts the refreshed access token.
    resp = httpx.get(
        f"{live_server}/api/v1/config",
        headers={"Authorization": f"Bearer {refreshed.session.access_token}"},
    )
    assert resp.status_code == 200, resp.text

    sb.auth.sign_out()
    assert sb.auth.get_session() is None
    # After sign-out the session is gone server-side: /user refuses the old access token.
    with pytest.raises(AuthApiError) as err:
        sb.auth.get_user(refreshed.session.access_token)
    assert err.value.status == 403
    with pytest.raises(AuthApiError):
        sb.auth.refresh_session(refreshed.session.refresh_token)


def _age_rotated_tokens(runtime: Runtime, seconds: int) -> None:
    """Pretend the rotations happened `seconds` ago (instead of sleeping past the interval)."""
    with runtime.db.transaction() as conn:
        conn.execute(
            "UPDATE nojoin_auth.refresh_tokens SET revoked_at = revoked_at - make_interval(secs => %s)"
            " WHERE revoked_at IS NOT NULL",
            (seconds,),
        )


def test_refresh_token_reuse_revokes_the_family(sb: Client, runtime: Runtime) -> None:
    email = _email()
    session = sb.auth.sign_up({"email": email, "password": PASSWORD}).session
    assert session is not None
    old_refresh = session.refresh_token
    new_session = sb.auth.refresh_session(old_refresh).session
    assert new_session is not None
    _age_rotated_tokens(runtime, 60)
    # Replaying the used token is detected...
    with pytest.raises(AuthApiError) as err:
        sb.auth.refresh_session(old_refresh)
    assert err.value.code == "refresh_token_already_used"
    # ...and the legitimate child token dies with the family.
    with pytest.raises(AuthApiError) as err:
        sb.auth.refresh_session(new_session.refresh_token)
    assert err.value.code == "refresh_token_not_found"


def test_racing_refreshes_within_the_reuse_interval_keep_the_session(sb: Client) -> None:
    session = sb.auth.sign_up({"email": _email(), "password": PASSWORD}).session
    assert session is not None
    first = sb.auth.refresh_session(session.refresh_token).session
    second = sb.auth.refresh_session(session.refresh_token).session  # the slower racer
    assert first is not None and second is not None
    assert first.refresh_token != second.refresh_token
    # Both descendants still work: nobody was signed out.
    assert sb.auth.refresh_session(first.refresh_token).session is not None
    assert sb.auth.refresh_session(second.refresh_token).session is not None


def test_sign_out_scopes(sb: Client, live_server: str, runtime: Runtime) -> None:
    assert runtime.anon_key
    email = _email()
    sb.auth.sign_up({"email": email, "password": PASSWORD})
    other = create_client(live_server, runtime.anon_key, ClientOptions(auto_refresh_token=False))
    try:
        other_session = other.auth.sign_in_with_password(
            {"email": email, "password": PASSWORD}
        ).session
        assert other_session is not None
        sb.auth.sign_out({"scope": "others"})
        assert sb.auth.get_user() is not None  # this device stays signed in
        with pytest.raises(AuthApiError):
            other.auth.refresh_session(other_session.refresh_token)
    finally:
        other.auth.close()


def test_wrong_password_duplicate_and_weak_password(sb: Client) -> None:
    email = _email()
    sb.auth.sign_up({"email": email, "password": PASSWORD})
    sb.auth.sign_out()
    # 400 invalid_credentials, as real GoTrue answers: the client raises a plain AuthApiError
    # with that code and stores no session.
    with pytest.raises(AuthApiError) as err:
        sb.auth.sign_in_with_password({"email": email, "password": "wrong password!"})
    assert type(err.value) is AuthApiError
    assert err.value.status == 400 and err.value.code == "invalid_credentials"
    assert err.value.message == "Invalid login credentials"
    assert sb.auth.get_session() is None
    with pytest.raises(AuthApiError) as err:
        sb.auth.sign_up({"email": email.upper(), "password": PASSWORD})
    assert err.value.status == 422 and err.value.code == "user_already_exists"
    with pytest.raises(AuthWeakPasswordError):
        sb.auth.sign_up({"email": _email(), "password": "short"})
    with pytest.raises(AuthApiError) as err:
        sb.auth.sign_up({"email": "not-an-email", "password": PASSWORD})
    assert err.value.status == 422


def test_signin_attempts_are_rate_limited(sb: Client) -> None:
    email = _email()
    sb.auth.sign_up({"email": email, "password": PASSWORD})
    for _ in range(3):
        with pytest.raises(AuthApiError) as err:
            sb.auth.sign_in_with_password({"email": email, "password": "guess guess"})
        assert err.value.status == 400
    # Even the right password is refused while the limit holds.
    with pytest.raises(AuthApiError) as err:
        sb.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    assert err.value.status == 429


def _latest_mail(runtime: Runtime, email: str) -> str:
    with runtime.db.transaction() as conn:
        row = conn.execute(
            "SELECT body FROM nojoin_auth.mail_outbox WHERE recipient = %s ORDER BY id DESC LIMIT 1",
            (email,),
        ).fetchone()
    assert row is not None, "no recovery mail in the outbox"
    return str(row["body"])


def test_password_reset_with_code(sb: Client, runtime: Runtime) -> None:
    email = _email()
    stolen = sb.auth.sign_up({"email": email, "password": PASSWORD}).session
    assert stolen is not None  # stays signed in elsewhere (say, a stolen laptop)
    sb.auth.reset_password_for_email(email)
    # Unknown addresses look the same to the caller (no account enumeration).
    sb.auth.reset_password_for_email(_email())
    body = _latest_mail(runtime, email)
    code = re.search(r"Your code: (\d{6})", body)
    assert code is not None
    assert PASSWORD not in body

    with pytest.raises(AuthApiError):
        sb.auth.verify_otp(
            {
                "email": email,
                "token": "000000" if code[1] != "000000" else "111111",
                "type": "recovery",
            }
        )
    res = sb.auth.verify_otp({"email": email, "token": code[1], "type": "recovery"})
    assert res.session is not None and res.user is not None and res.user.email == email
    sb.auth.update_user({"password": "a brand new password"})
    sb.auth.sign_out()

    with pytest.raises(AuthApiError):
        sb.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    ok = sb.auth.sign_in_with_password({"email": email, "password": "a brand new password"})
    assert ok.session is not None
    # Sessions from before the reset (e.g. on a stolen laptop) are gone.
    with pytest.raises(AuthApiError):
        sb.auth.refresh_session(stolen.refresh_token)
    # A code works once.
    with pytest.raises(AuthApiError):
        sb.auth.verify_otp({"email": email, "token": code[1], "type": "recovery"})


def test_password_reset_with_token_hash(sb: Client, runtime: Runtime) -> None:
    email = _email()
    sb.auth.sign_up({"email": email, "password": PASSWORD})
    sb.auth.sign_out()
    sb.auth.reset_password_for_email(email)
    link = re.search(
        r"paste this token into the app: ([A-Za-z0-9_-]+)", _latest_mail(runtime, email)
    )
    assert link is not None
    res = sb.auth.verify_otp({"token_hash": link[1], "type": "recovery"})
    assert res.session is not None
    sb.auth.update_user({"password": "another new password"})
    assert sb.auth.sign_in_with_password(
        {"email": email, "password": "another new password"}
    ).session


def test_auth_requires_the_anon_key(live_server: str) -> None:
    resp = httpx.post(
        f"{live_server}/auth/v1/token?grant_type=password",
        json={"email": "a@b.test", "password": "x" * 10},
    )
    assert resp.status_code == 401
    assert resp.json()["detail"]
    resp = httpx.post(
        f"{live_server}/auth/v1/token?grant_type=password",
        json={"email": "a@b.test", "password": "x" * 10},
        headers={"apikey": "not-the-key"},
    )
    assert resp.status_code == 401


def test_jwks_is_public_and_has_no_private_parts(live_server: str) -> None:
    jwks = httpx.get(f"{live_server}/auth/v1/.well-known/jwks.json").json()
    assert len(jwks["keys"]) == 1
    key = jwks["keys"][0]
    assert key["alg"] == "ES256" and key["kty"] == "EC" and "d" not in key


def test_signing_key_file_is_private(runtime: Runtime) -> None:
    path = runtime.settings.data_dir / "auth" / "jwt_es256.pem"
    assert path.exists()
    assert path.stat().st_mode & 0o777 == 0o600


def test_signing_key_from_the_environment(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from backend.auth.keys import load_or_create_keys

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    keys = load_or_create_keys(tmp_path, pem)
    assert keys.public_jwk["x"] and not (tmp_path / "jwt_es256.pem").exists()
    with pytest.raises(RuntimeError, match="not a PEM"):
        load_or_create_keys(tmp_path, b"garbage")
    other_curve = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(RuntimeError, match="P-256"):
        load_or_create_keys(tmp_path, other_curve)
