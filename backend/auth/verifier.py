"""Verify Supabase access tokens (JWTs) and turn them into an `AuthUser`.

Three key sources, never mixed: the built-in server's own ES256 key, a JWKS URL (Supabase's
asymmetric keys, ES256/RS256, cached PyJWKClient), or an HS256 shared secret that must be
configured explicitly. A token whose `alg` is not in the configured list is refused before
any key is looked at, which rules out alg-confusion (e.g. HS256 signed with a public key).

JWKS mode keeps the fetched key set for `jwks_cache_seconds`; a token with a kid not in it
triggers one refetch (key rotation), at most once per PyJWKClient's 30 s cooldown so made-up
kids cannot make every request fetch. A key removed from the JWKS stops working once the
cached set expires.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from jwt import PyJWK, PyJWKClient

from backend.errors import ServiceUnavailableError, UnauthorizedError

logger = logging.getLogger(__name__)

ASYMMETRIC_ALGORITHMS = ("ES256", "RS256")
CACHE_SECONDS = 300
CACHE_MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class AuthUser:
    """The caller, from a verified access token."""

    id: uuid.UUID
    role: str
    email: str | None = None
    session_id: uuid.UUID | None = None
    claims: dict[str, Any] = field(default_factory=dict)


class TokenVerifier:
    """Checks signature, alg, exp (with leeway), aud and iss; yields the user."""

    def __init__(
        self,
        *,
        audience: str,
        issuer: str | None,
        leeway: int = 30,
        static_keys: list[PyJWK] | None = None,
        jwks_url: str | None = None,
        jwks_cache_seconds: int = 600,
        hs256_secret: str | None = None,
    ) -> None:
        sources = sum(x is not None for x in (static_keys, jwks_url, hs256_secret))
        if sources != 1:
            raise ValueError("Configure exactly one key source: static keys, JWKS URL or HS256.")
        self.audience = audience
        self.issuer = issuer
        self.leeway = leeway
        self._static = {k.key_id: k for k in static_keys or []}
        # Only the key set is cached (with a lifespan). PyJWKClient's per-kid cache
        # (`cache_keys=False`) never expires, so a key revoked in the JWKS would stay trusted
        # until restart.
        self._jwks_client = (
            PyJWKClient(jwks_url, cache_keys=False, lifespan=jwks_cache_seconds, timeout=5)
            if jwks_url
            else None
        )
        self._hs256 = hs256_secret
        # token -> (user, valid until). A token string is immutable, so a verified result can be
        # reused until the token expires (bounded, and at most CACHE_SECONDS so a key removed
        # from the JWKS stops working soon). Saves the signature check on every request.
        self._cache: dict[str, tuple[AuthUser, float]] = {}
        self.algorithms: tuple[str, ...] = ("HS256",) if hs256_secret else ASYMMETRIC_ALGORITHMS

    def _key_for(self, token: str, header: dict[str, Any]) -> Any:
        alg = header.get("alg")
        if self._hs256 is not None:
            return self._hs256
        if self._jwks_client is not None:
            try:
                jwk = self._jwks_client.get_signing_key_from_jwt(token)
            except jwt.PyJWKClientConnectionError as exc:
                logger.warning("Could not fetch the JWKS: %s", exc)
                raise ServiceUnavailableError(
                    "The sign-in key server is unreachable; try again shortly."
                ) from exc
            except jwt.PyJWTError as exc:
                raise UnauthorizedError("Unknown signing key.", code="bad_jwt") from exc
        else:
            kid = header.get("kid")
            found = self._static.get(kid) if kid else None
            if found is None and not kid and len(self._static) == 1:
                found = next(iter(self._static.values()))
            if found is None:
                raise UnauthorizedError("Unknown signing key.", code="bad_jwt")
            jwk = found
        if jwk.algorithm_name != alg:
            raise UnauthorizedError("Token algorithm does not match its key.", code="bad_jwt")
        return jwk.key

    def decode(self, token: str) -> dict[str, Any]:
        """Verified claims of `token`, or UnauthorizedError."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise UnauthorizedError("Malformed access token.", code="bad_jwt") from exc
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise UnauthorizedError("Token algorithm not allowed.", code="bad_jwt")
        key = self._key_for(token, header)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "sub", "aud"] + (["iss"] if self.issuer else [])},
            )
        except jwt.ExpiredSignatureError as exc:
            raise UnauthorizedError("The session expired; sign in again.", code="bad_jwt") from exc
        except jwt.PyJWTError as exc:
            raise UnauthorizedError("Invalid access token.", code="bad_jwt") from exc
        return claims

    def verify(self, token: str) -> AuthUser:
        now = time.time()
        hit = self._cache.get(token)
        if hit is not None and hit[1] > now:
            return hit[0]
        user = self._verify_uncached(token)
        exp = float(user.claims["exp"]) + self.leeway
        if len(self._cache) >= CACHE_MAX_ENTRIES:
            self._cache.clear()
        self._cache[token] = (user, min(exp, now + CACHE_SECONDS))
        return user

    def _verify_uncached(self, token: str) -> AuthUser:
        claims = self.decode(token)
        try:
            user_id = uuid.UUID(str(claims["sub"]))
        except ValueError as exc:
            raise UnauthorizedError("Invalid access token subject.", code="bad_jwt") from exc
        role = str(claims.get("role", ""))
        if role != "authenticated":
            raise UnauthorizedError("This token is not a signed-in user's token.", code="bad_jwt")
        session_id: uuid.UUID | None = None
        if claims.get("session_id"):
            try:
                session_id = uuid.UUID(str(claims["session_id"]))
            except ValueError as exc:
                raise UnauthorizedError("Invalid session id.", code="bad_jwt") from exc
        email = claims.get("email")
        return AuthUser(
            id=user_id,
            role=role,
            email=str(email) if email else None,
            session_id=session_id,
            claims=claims,
        )
