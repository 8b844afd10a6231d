"""Access-token verification on the API: every forged, expired or foreign token is a 401."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from backend.auth.verifier import TokenVerifier
from backend.errors import UnauthorizedError
from backend.runtime import Runtime

pytestmark = pytest.mark.anyio


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _claims(runtime: Runtime, user_id: uuid.UUID, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": runtime.settings.issuer,
        "aud": "authenticated",
        "sub": str(user_id),
        "role": "authenticated",
        "iat": now,
        "exp": now + 600,
    }
    claims.update(over)
    return claims


def _hs256_with_public_key(runtime: Runtime, claims: dict[str, Any]) -> str:
    """The classic alg-confusion forgery: HS256 keyed with the server's *public* key bytes."""
    assert runtime.keys is not None
    header = {"alg": "HS256", "typ": "JWT", "kid": runtime.keys.kid}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    sig = hmac.new(runtime.keys.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(sig)}"


async def _status(client: httpx.AsyncClient, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return (await client.get("/api/v1/config", headers=headers)).status_code


async def test_valid_token_is_accepted(client: httpx.AsyncClient, create_user: Callable) -> None:
    user = create_user()
    assert await _status(client, user.token) == 200


async def test_missing_or_malformed_header_is_401(client: httpx.AsyncClient) -> None:
    resp = await client.get("/api/v1/config")
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == "Bearer"
    assert isinstance(resp.json()["detail"], str)
    assert await _status(client, "not-a-jwt") == 401
    resp = await client.get("/api/v1/config", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert resp.status_code == 401


async def test_expiry_uses_a_small_leeway(
    client: httpx.AsyncClient, create_user: Callable, token_for: Callable
) -> None:
    user = create_user()
    now = int(time.time())
    assert await _status(client, token_for(user.id, exp=now - 5)) == 200  # within leeway
    assert await _status(client, token_for(user.id, exp=now - 120)) == 401


async def test_tampered_token_is_401(client: httpx.AsyncClient, create_user: Callable) -> None:
    victim, attacker = create_user(), create_user()
    head, payload, sig = attacker.token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = str(victim.id)
    forged = f"{head}.{_b64(json.dumps(claims).encode())}.{sig}"
    assert await _status(client, forged) == 401


async def test_token_signed_by_another_key_is_401(
    client: httpx.AsyncClient, runtime: Runtime, create_user: Callable
) -> None:
    assert runtime.keys is not None
    user = create_user()
    other = ec.generate_private_key(ec.SECP256R1())
    claims = _claims(runtime, user.id)
    same_kid = jwt.encode(claims, other, algorithm="ES256", headers={"kid": runtime.keys.kid})
    assert await _status(client, same_kid) == 401
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert await _status(client, jwt.encode(claims, rsa_key, algorithm="RS256")) == 401


async def test_alg_confusion_and_alg_none_are_401(
    client: httpx.AsyncClient, runtime: Runtime, create_user: Callable
) -> None:
    user = create_user()
    assert await _status(client, _hs256_with_public_key(runtime, _claims(runtime, user.id))) == 401
    unsigned = jwt.encode(_claims(runtime, user.id), None, algorithm="none")
    assert await _status(client, unsigned) == 401


async def test_wrong_audience_issuer_role_or_subject_is_401(
    client: httpx.AsyncClient, runtime: Runtime, create_user: Callable, token_for: Callable
) -> None:
    user = create_user()
    assert await _status(client, token_for(user.id, aud="something-else")) == 401
    assert await _status(client, token_for(user.id, iss="https://evil.example/auth/v1")) == 401
    assert await _status(client, token_for(user.id, role="anon")) == 401
    assert await _status(client, token_for("not-a-uuid")) == 401
    # The anon key is a valid signature but not a user.
    assert await _status(client, runtime.anon_key) == 401


def test_jwks_url_mode_verifies_via_the_published_keys(
    live_server: str, runtime: Runtime, create_user: Callable
) -> None:
    verifier = TokenVerifier(
        audience="authenticated",
        issuer=runtime.settings.issuer,
        jwks_url=f"{live_server}/auth/v1/.well-known/jwks.json",
    )
    user = create_user()
    assert verifier.verify(user.token).id == user.id
    with pytest.raises(UnauthorizedError):
        verifier.verify(_hs256_with_public_key(runtime, _claims(runtime, user.id)))
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(UnauthorizedError):
        verifier.verify(
            jwt.encode(_claims(runtime, user.id), other, algorithm="ES256", headers={"kid": "nope"})
        )


def test_hs256_mode_is_exclusive(runtime: Runtime, create_user: Callable) -> None:
    secret = "s3cret-" * 6
    verifier = TokenVerifier(audience="authenticated", issuer=None, hs256_secret=secret)
    user = create_user()
    claims = _claims(runtime, user.id)
    assert verifier.verify(jwt.encode(claims, secret, algorithm="HS256")).id == user.id
    # A perfectly valid ES256 token is still refused: the algorithm lists are never mixed.
    with pytest.raises(UnauthorizedError):
        verifier.verify(user.token)
    with pytest.raises(ValueError):
        TokenVerifier(audience="a", issuer=None, hs256_secret=secret, jwks_url="http://x")


def test_verified_token_cache_never_outlives_the_token(
    runtime: Runtime, create_user: Callable, token_for: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runtime.keys is not None
    verifier = TokenVerifier(
        audience="authenticated",
        issuer=runtime.settings.issuer,
        leeway=0,
        static_keys=[jwt.PyJWK(runtime.keys.public_jwk)],
    )
    user = create_user()
    now = time.time()
    token = token_for(user.id, exp=int(now) + 5)
    assert verifier.verify(token).id == user.id

    def refuse(token: str) -> Any:
        raise UnauthorizedError("checked again")

    monkeypatch.setattr(verifier, "_verify_uncached", refuse)
    assert verifier.verify(token).id == user.id  # served from the cache while valid
    monkeypatch.setattr(time, "time", lambda: now + 10)  # past exp: the cache must not answer
    with pytest.raises(UnauthorizedError, match="checked again"):
        verifier.verify(token)
    # A forged variant of a cached token is a different string: never a cache hit.
    head, payload, sig = token.split(".")
    with pytest.raises(UnauthorizedError):
        verifier.verify(f"{head}.{payload}.{sig[:-2]}AA")
