"""Access-token verification on the API: every forged, expired or foreign token is a 401;
valid ones from the built-in key or a Supabase-style JWKS (RS256/ES256, rotation) pass."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import jwt
import jwt.api_jwk
import jwt.jwk_set_cache
import jwt.jwks_client
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from backend.auth.verifier import TokenVerifier
from backend.errors import UnauthorizedError
from backend.main import create_app
from backend.runtime import Runtime
from backend.settings import JWKS_PATH, Settings

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

    def refuse(_token: str) -> Any:
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


# --- JWKS mode (production Supabase): a real JWKS endpoint on loopback ---


@dataclass
class _Key:
    """A signing key as Supabase holds it; its public half goes into the JWKS."""

    kid: str
    alg: str
    private: Any

    @classmethod
    def new(cls, alg: str) -> _Key:
        private: Any = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if alg == "RS256"
            else ec.generate_private_key(ec.SECP256R1())
        )
        return cls(kid=f"{alg.lower()}-{uuid.uuid4().hex[:8]}", alg=alg, private=private)

    def jwk(self) -> dict[str, Any]:
        algorithm = RSAAlgorithm if self.alg == "RS256" else ECAlgorithm
        public = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.private, algorithm=self.alg, headers={"kid": self.kid})


class _JwksServer:
    """Serves `keys` at /auth/v1/.well-known/jwks.json, like a Supabase project; counts fetches."""

    def __init__(self, keys: list[_Key]) -> None:
        self.keys = keys
        self.fetches = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/auth/v1" + JWKS_PATH:
                    self.send_error(404)
                    return
                server.fetches += 1
                body = json.dumps({"keys": [k.jwk() for k in server.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        port = self._httpd.server_address[1]
        self.issuer = f"http://127.0.0.1:{port}/auth/v1"
        self.url = self.issuer + JWKS_PATH

    def __enter__(self) -> _JwksServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def _supabase_claims(issuer: str, user_id: uuid.UUID, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": "authenticated",
        "sub": str(user_id),
        "role": "authenticated",
        "iat": now,
        "exp": now + 600,
        "session_id": str(uuid.uuid4()),  # also makes every token string unique (no cache hit)
    }
    claims.update(over)
    return claims


@pytest.fixture
def jwks_keys() -> list[_Key]:
    return [_Key.new("RS256"), _Key.new("ES256")]


@pytest.fixture
def jwks_server(jwks_keys: list[_Key]) -> Iterator[_JwksServer]:
    with _JwksServer(list(jwks_keys)) as server:
        yield server


@pytest.fixture
async def jwks_client(
    pg_url: str,
    tmp_path: Path,
    jwks_server: _JwksServer,
    anyio_backend: str,  # noqa: ARG001 (anyio runs this async fixture)
) -> AsyncIterator[httpx.AsyncClient]:
    """The API configured as in production: only NOJOIN_JWKS_URL, no issuer setting."""
    settings = Settings(
        database_url=pg_url,
        data_dir=tmp_path,
        builtin_auth=False,
        jwks_url=jwks_server.url,
        run_migrations=False,
        db_pool_max=2,
    )
    rt = Runtime.start(settings)
    try:
        transport = httpx.ASGITransport(app=create_app(settings, runtime=rt))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c
    finally:
        rt.stop()


def test_issuer_defaults_from_the_jwks_url() -> None:
    ref = "https://abcd.supabase.co/auth/v1"
    jwks = f"{ref}{JWKS_PATH}"
    assert Settings(database_url="postgresql://x", jwks_url=jwks).issuer == ref
    explicit = Settings(database_url="postgresql://x", jwks_url=jwks, jwt_issuer="https://me")
    assert explicit.issuer == "https://me"
    odd = Settings(database_url="postgresql://x", jwks_url="https://keys.example/certs")
    assert odd.issuer is None
    with pytest.raises(RuntimeError, match="NOJOIN_JWT_ISSUER"):
        Runtime.start(odd)


async def test_jwks_mode_accepts_rs256_and_es256_from_the_right_issuer_only(
    jwks_client: httpx.AsyncClient,
    jwks_server: _JwksServer,
    jwks_keys: list[_Key],
    create_user: Callable,
) -> None:
    user = create_user()
    rs256, es256 = jwks_keys
    right = _supabase_claims(jwks_server.issuer, user.id)
    assert await _status(jwks_client, rs256.sign(right)) == 200
    assert await _status(jwks_client, es256.sign(right)) == 200
    assert jwks_server.fetches == 1  # one key set serves both, cached

    # Same keys, same project's audience, but minted by another issuer (e.g. another project
    # sharing a key, or a token from a different auth server): refused.
    other = _supabase_claims("https://someone-else.supabase.co/auth/v1", user.id)
    assert await _status(jwks_client, rs256.sign(other)) == 401
    assert await _status(jwks_client, es256.sign(other)) == 401
    no_iss = _supabase_claims(jwks_server.issuer, user.id)
    del no_iss["iss"]
    assert await _status(jwks_client, es256.sign(no_iss)) == 401
    # A key used with the other key's algorithm name is no signature at all.
    mixed = jwt.encode(right, es256.private, algorithm="ES256", headers={"kid": rs256.kid})
    assert await _status(jwks_client, mixed) == 401


class _Clock:
    """PyJWKClient's monotonic clock (cache lifespan and refetch cooldown), moved by hand."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = time.monotonic()
        fake = SimpleNamespace(monotonic=lambda: self.now)
        for module in (jwt.jwks_client, jwt.jwk_set_cache, jwt.api_jwk):
            monkeypatch.setattr(module, "time", fake)

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_jwks_key_rotation_and_revocation(
    jwks_server: _JwksServer, jwks_keys: list[_Key], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock(monkeypatch)
    cache_seconds = 600
    verifier = TokenVerifier(
        audience="authenticated",
        issuer=jwks_server.issuer,
        jwks_url=jwks_server.url,
        jwks_cache_seconds=cache_seconds,
    )
    user_id = uuid.uuid4()
    old, _ = jwks_keys

    def token(key: _Key) -> str:
        return key.sign(_supabase_claims(jwks_server.issuer, user_id))

    assert verifier.verify(token(old)).id == user_id
    assert jwks_server.fetches == 1

    # Tokens with made-up kids cost at most one refetch per cooldown, not one per request.
    clock.advance(31)
    for _ in range(5):
        with pytest.raises(UnauthorizedError, match="Unknown signing key"):
            verifier.verify(
                _Key("made-up", "ES256", ec.generate_private_key(ec.SECP256R1())).sign({})
            )
    assert jwks_server.fetches == 2

    # Rotation: the project publishes a new key and signs with it. The first token with the
    # new kid makes the client refetch the set (once the cooldown since the last fetch passed).
    new = _Key.new("ES256")
    jwks_server.keys.append(new)
    clock.advance(31)
    assert verifier.verify(token(new)).id == user_id
    assert jwks_server.fetches == 3
    assert verifier.verify(token(old)).id == user_id  # still published: still valid, no fetch
    assert verifier.verify(token(new)).id == user_id
    assert jwks_server.fetches == 3

    # Revocation: the old key leaves the JWKS. Once the cached set expires it is refused.
    jwks_server.keys.remove(old)
    clock.advance(cache_seconds + 1)
    with pytest.raises(UnauthorizedError, match="Unknown signing key"):
        verifier.verify(token(old))
    assert verifier.verify(token(new)).id == user_id
    assert jwks_server.fetches == 4
