"""Backend settings from NOJOIN_* environment variables (pydantic-settings).

Embedded default: no NOJOIN_DATABASE_URL -> embedded PostgreSQL in the data dir, local file
storage, built-in Supabase-compatible auth. Production: set NOJOIN_DATABASE_URL plus either
NOJOIN_JWKS_URL (Supabase asymmetric keys) or NOJOIN_JWT_SECRET (HS256, explicit opt-in).
Other domains (jobs, billing) add their fields here with the same prefix.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    base = os.environ.get("NOJOIN_DATA_DIR")
    root = Path(base).expanduser() if base else Path(platformdirs.user_data_dir("Nojoin", False))
    return root / "backend"


class Settings(BaseSettings):
    """All backend configuration. Secrets are SecretStr so they never appear in reprs/logs."""

    model_config = SettingsConfigDict(env_prefix="NOJOIN_", extra="ignore")

    # NOJOIN_DATA_DIR is the desktop app's folder; the backend keeps its own sub-folder in it
    # unless NOJOIN_BACKEND_DATA_DIR (or --data-dir) says otherwise.
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        validation_alias=AliasChoices("NOJOIN_BACKEND_DATA_DIR", "data_dir"),
    )
    database_url: str | None = None
    db_pool_min: int = 1
    db_pool_max: int = 10
    run_migrations: bool = True

    # Base URL clients use to reach this server (signed local-storage URLs). Default: the
    # request's own base URL.
    public_url: str | None = None

    # --- auth (verification) ---
    # None -> built-in auth when the database is embedded, external (Supabase) otherwise.
    builtin_auth: bool | None = None
    jwks_url: str | None = None
    jwt_issuer: str | None = Field(
        default=None,
        description=(
            "The `iss` every access token must carry. Unset: the built-in server's own issuer, "
            "or in JWKS mode the JWKS URL minus `/.well-known/jwks.json` (Supabase's "
            "`https://<ref>.supabase.co/auth/v1`); a JWKS URL without that suffix then needs "
            "this set. HS256 mode checks no issuer unless this is set."
        ),
    )
    jwt_audience: str = "authenticated"
    jwt_leeway_seconds: int = 30
    jwks_cache_seconds: int = 600
    # HS256 is only used when this is set, and then exclusively (never mixed with ES256/RS256).
    jwt_secret: SecretStr | None = None

    # --- built-in auth server ---
    access_token_ttl_seconds: int = 3600
    refresh_token_ttl_days: int = 30
    # A just-rotated refresh token presented again within this many seconds (two refreshes
    # racing) gets a fresh session instead of revoking the family (GoTrue's reuse interval).
    refresh_token_reuse_interval_seconds: int = 10
    recovery_token_ttl_seconds: int = 3600
    signin_max_attempts: int = 10
    signin_window_seconds: int = 300
    # Sign-ups (tries, including ones for taken addresses) per client IP per window: a family
    # or an office behind one NAT stays far below it, a script creating accounts does not.
    signup_max_per_ip: int = Field(default=30, ge=1)
    signup_window_seconds: int = Field(default=3600, ge=1)
    # Password-reset mails per address (nobody's mailbox gets flooded) and per client IP.
    recover_max_per_email: int = Field(default=5, ge=1)
    recover_max_per_ip: int = Field(default=30, ge=1)
    recover_window_seconds: int = Field(default=3600, ge=1)
    password_min_length: int = 8
    # "outbox" (database table) or "file" (one JSON file per mail in <data_dir>/mail).
    mailer: Literal["outbox", "file"] = "outbox"
    # PEM of the built-in server's ES256 private key; default: generated once in
    # <data_dir>/auth/jwt_es256.pem (0600). Set it to keep the key out of the data dir.
    jwt_private_key: SecretStr | None = None
    # The anon/service keys of an external Supabase project (only checked as opaque apikeys).
    anon_key: SecretStr | None = None

    # --- config sync ---
    config_max_bytes: int = 256 * 1024

    # --- storage / backups ---
    storage_backend: Literal["local", "s3", "supabase"] = "local"
    storage_dir: Path | None = None
    # HMAC key of local-storage URLs; default: generated once in <data_dir>/secrets (0600).
    storage_signing_secret: SecretStr | None = None
    url_ttl_seconds: int = 900
    backup_max_bytes: int = 2 * 1024**3
    backup_retention: int = 10
    # Unfinished upload URLs a user may hold at once (each reserves a row until it expires).
    backup_max_pending: int = 5
    s3_bucket: str = "user-backups"
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    supabase_url: str | None = None
    supabase_service_key: SecretStr | None = None
    supabase_bucket: str = "user-backups"

    # "text" or "json" (one object per line, with request_id/method/path/status/duration_ms).
    log_format: Literal["text", "json"] = "text"

    # Request bodies outside signed-upload routes are capped (413) before they are parsed.
    max_request_bytes: int = 1024 * 1024

    @property
    def embedded_db(self) -> bool:
        return self.database_url is None

    @property
    def builtin_auth_enabled(self) -> bool:
        if self.builtin_auth is not None:
            return self.builtin_auth
        return self.embedded_db and self.jwks_url is None and self.jwt_secret is None

    @property
    def resolved_storage_dir(self) -> Path:
        return self.storage_dir or (self.data_dir / "storage")

    @property
    def issuer(self) -> str | None:
        """The issuer tokens must carry; None (not checked) only in HS256 mode without one."""
        if self.jwt_issuer:
            return self.jwt_issuer
        if self.builtin_auth_enabled:
            return "nojoin-embedded-auth"
        if self.jwks_url and self.jwt_secret is None:
            return issuer_from_jwks_url(self.jwks_url)
        return None


JWKS_PATH = "/.well-known/jwks.json"


def issuer_from_jwks_url(url: str) -> str | None:
    """Supabase's issuer for its JWKS URL (`.../auth/v1/.well-known/jwks.json` ->
    `.../auth/v1`); None when the URL does not end in the well-known path."""
    base = url.strip().rstrip("/")
    if "?" in base or "#" in base or not base.endswith(JWKS_PATH):
        return None
    return base[: -len(JWKS_PATH)] or None
