"""Where Nojoin Cloud lives: packaged addresses (release builds) with environment overrides.

The user never types a server address: remote processing and sync are a managed service.
`NOJOIN_CLOUD_URL` points both the API and auth at one server (the embedded backend serves
Supabase-compatible auth at `/auth/v1`); `NOJOIN_CLOUD_AUTH_URL` splits them (production:
the API on its own host, auth on Supabase); `NOJOIN_CLOUD_ANON_KEY` is the public anon key.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import httpx

from nojoin.cloud.errors import CloudNotConfiguredError, OfflineError

log = logging.getLogger(__name__)

PACKAGED_FILE = "cloud.json"


@dataclass(frozen=True, slots=True)
class CloudSettings:
    api_url: str  # base of /api/v1, e.g. https://api.example.com
    auth_url: str  # base of /auth/v1 (a Supabase project URL or the embedded backend)
    anon_key: str  # public key sent as `apikey`; "" = ask the embedded backend's /health

    @property
    def configured(self) -> bool:
        return bool(self.api_url and self.auth_url)

    @property
    def server_id(self) -> str:
        """Names the auth server in keyring entries, so sessions for two servers never mix."""
        parts = urlsplit(self.auth_url)
        return parts.netloc or self.auth_url

    def require(self) -> CloudSettings:
        if not self.configured:
            raise CloudNotConfiguredError(
                "This copy of Nojoin was built without a Nojoin Cloud address, so Cloud Mode "
                "is not available. Local Mode works as usual. (Developers: set "
                "NOJOIN_CLOUD_URL.)"
            )
        return self


def _packaged() -> dict[str, Any]:
    try:
        text = resources.files("nojoin.cloud").joinpath(PACKAGED_FILE).read_text("utf-8")
        data = json.loads(text)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError) as exc:
        log.warning("cannot read packaged cloud settings: %s", exc)
        return {}


def load_cloud_settings() -> CloudSettings:
    """Packaged values, overridden by NOJOIN_CLOUD_URL / _AUTH_URL / _ANON_KEY."""
    packaged = _packaged()
    env_url = os.environ.get("NOJOIN_CLOUD_URL", "").strip()
    api_url = env_url or str(packaged.get("api_url") or "")
    auth_url = (
        os.environ.get("NOJOIN_CLOUD_AUTH_URL", "").strip()
        or env_url
        or str(packaged.get("auth_url") or "")
        or api_url
    )
    anon_key = os.environ.get("NOJOIN_CLOUD_ANON_KEY", "").strip()
    if not anon_key and not env_url:
        anon_key = str(packaged.get("anon_key") or "")
    return CloudSettings(api_url.rstrip("/"), auth_url.rstrip("/"), anon_key)


def discover_anon_key(api_url: str, *, timeout: float = 10.0) -> str:
    """The embedded backend publishes its anon key in GET /health (embedded mode only)."""
    try:
        response = httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout)
    except httpx.HTTPError as exc:
        raise OfflineError() from exc
    if response.status_code >= 500:
        raise OfflineError(
            f"Nojoin Cloud is not available right now (HTTP {response.status_code}). "
            "Try again in a few minutes."
        )
    try:
        key = response.json().get("anon_key")
    except ValueError:
        key = None
    if not isinstance(key, str) or not key:
        raise CloudNotConfiguredError(
            "This Nojoin Cloud server does not publish its public key. Set "
            "NOJOIN_CLOUD_ANON_KEY to the project's anon key."
        )
    return key
