"""Everything the app holds for its lifetime (pool, keys, storage, verifier), built once.

`Runtime.start(settings)` starts embedded PostgreSQL when no NOJOIN_DATABASE_URL is set,
opens the pool and applies migrations. Domains reach it through `RuntimeDep`; other domains
(jobs, billing) may keep their long-lived objects in `extras` and stop them via `on_stop`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from jwt import PyJWK

from backend.auth.keys import SigningKeys, load_or_create_anon_key, load_or_create_keys
from backend.auth.mailer import FileMailer, Mailer, OutboxMailer
from backend.auth.service import AuthService
from backend.auth.verifier import TokenVerifier
from backend.db import Database
from backend.embedded import EmbeddedPostgres, start_embedded
from backend.migrations import apply_migrations
from backend.settings import Settings
from backend.storage.base import StorageProvider
from backend.storage.factory import build_storage

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    storage: StorageProvider
    verifier: TokenVerifier
    keys: SigningKeys | None = None
    anon_key: str | None = None
    mailer: Mailer | None = None
    auth: AuthService | None = None
    embedded: EmbeddedPostgres | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    on_stop: list[Callable[[], None]] = field(default_factory=list)

    @classmethod
    def start(cls, settings: Settings) -> Runtime:
        if (
            settings.jwks_url
            and not settings.builtin_auth_enabled
            and settings.jwt_secret is None
            and settings.issuer is None
        ):
            # Without an issuer check any token signed by a key in that JWKS would pass,
            # whoever issued it; refuse to start rather than silently skip the check.
            raise RuntimeError(
                f"Cannot tell the token issuer from NOJOIN_JWKS_URL={settings.jwks_url!r} (it "
                "does not end in /.well-known/jwks.json): set NOJOIN_JWT_ISSUER to the `iss` of "
                "its tokens (for Supabase: https://<ref>.supabase.co/auth/v1)."
            )
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        embedded: EmbeddedPostgres | None = None
        url = settings.database_url
        if url is None:
            embedded, url = start_embedded(settings.data_dir)
        try:
            if settings.run_migrations:
                applied = apply_migrations(url)
                if applied:
                    logger.info("Applied migrations: %s", ", ".join(applied))
            db = Database(url, min_size=settings.db_pool_min, max_size=settings.db_pool_max)
            db.open()
        except BaseException:
            if embedded is not None:
                embedded.stop()
            raise

        keys: SigningKeys | None = None
        anon_key: str | None = None
        mailer: Mailer | None = None
        issuer = settings.issuer
        if settings.builtin_auth_enabled:
            auth_dir = settings.data_dir / "auth"
            pem = settings.jwt_private_key
            keys = load_or_create_keys(
                auth_dir, pem.get_secret_value().encode() if pem is not None else None
            )
            assert issuer is not None
            anon_key = load_or_create_anon_key(auth_dir, keys, issuer)
            verifier = TokenVerifier(
                audience=settings.jwt_audience,
                issuer=issuer,
                leeway=settings.jwt_leeway_seconds,
                static_keys=[PyJWK(keys.public_jwk)],
            )
            mailer = (
                FileMailer(settings.data_dir / "mail")
                if settings.mailer == "file"
                else OutboxMailer()
            )
        elif settings.jwt_secret is not None:
            verifier = TokenVerifier(
                audience=settings.jwt_audience,
                issuer=issuer,
                leeway=settings.jwt_leeway_seconds,
                hs256_secret=settings.jwt_secret.get_secret_value(),
            )
        elif settings.jwks_url:
            verifier = TokenVerifier(
                audience=settings.jwt_audience,
                issuer=issuer,
                leeway=settings.jwt_leeway_seconds,
                jwks_url=settings.jwks_url,
                jwks_cache_seconds=settings.jwks_cache_seconds,
            )
        else:
            db.close()
            if embedded is not None:
                embedded.stop()
            raise RuntimeError(
                "No way to verify sign-ins: set NOJOIN_JWKS_URL (Supabase JWKS), or "
                "NOJOIN_JWT_SECRET (HS256), or NOJOIN_BUILTIN_AUTH=true."
            )
        if settings.anon_key is not None and anon_key is None:
            anon_key = settings.anon_key.get_secret_value()
        storage = build_storage(settings)
        auth = AuthService(settings, keys, mailer) if keys is not None and mailer else None
        return cls(
            auth=auth,
            settings=settings,
            db=db,
            storage=storage,
            verifier=verifier,
            keys=keys,
            anon_key=anon_key,
            mailer=mailer,
            embedded=embedded,
        )

    def stop(self) -> None:
        for hook in reversed(self.on_stop):
            try:
                hook()
            except Exception:
                logger.exception("Shutdown hook failed")
        self.db.close()
        if self.embedded is not None:
            self.embedded.stop()


async def get_runtime(request: Request) -> Runtime:
    # async: a trivial lookup must not cost a threadpool hop per request.
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
