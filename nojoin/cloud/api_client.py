"""HTTP client for the Nojoin backend's `/api/v1`: bearer token, timeouts, retries, typed errors.

Network errors and 5xx answers are retried with exponential backoff (only where repeating the
request is safe); 401 triggers one token refresh and one retry; 401/403/404/409/413/429 map to
`nojoin.cloud.errors` classes whose messages a user can act on. Qt-free and blocking: call it
off the UI thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx

from nojoin.cloud.errors import (
    CloudError,
    ConflictError,
    ForbiddenError,
    OfflineError,
    PayloadTooLargeError,
    RateLimitedError,
    ServerError,
    SessionExpiredError,
)
from nojoin.errors import NojoinError, NotFoundError

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
DEFAULT_TIMEOUT = httpx.Timeout(20.0, connect=5.0)
RETRY_STATUS = frozenset({500, 502, 503, 504})
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


class TokenSource(Protocol):
    """What the client needs from the auth service (`AuthService` satisfies it)."""

    def access_token(self, *, force_refresh: bool = False) -> str: ...

    def session_rejected(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RemoteConfig:
    """The user's settings as stored in the cloud. version 0 = never stored."""

    config: dict[str, Any]
    version: int
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class UploadTarget:
    backup_id: str
    method: str  # "PUT" or "POST"
    url: str
    fields: dict[str, str]
    headers: dict[str, str]
    expires_at: str


@dataclass(frozen=True, slots=True)
class BackupInfo:
    backup_id: str
    name: str
    size: int
    sha256: str
    created_at: datetime | None


class ApiClient:
    """Calls `/api/v1` on `base_url` with a token from `tokens`."""

    def __init__(
        self,
        base_url: str,
        tokens: TokenSource,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retries: int = 3,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url, timeout=timeout, transport=transport, follow_redirects=False
        )

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ core

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send an authenticated request; returns a 2xx response or raises a CloudError."""
        url = f"{API_PREFIX}{path}"
        refreshed = False
        attempt = 0
        while True:
            token = self.tokens.access_token(force_refresh=refreshed)
            try:
                response = self._http.request(
                    method,
                    url,
                    json=json,
                    params=params,
                    headers={**(headers or {}), "Authorization": f"Bearer {token}"},
                )
            except httpx.TransportError as exc:
                # A request that never reached the server is always safe to repeat.
                safe = method in IDEMPOTENT or isinstance(exc, httpx.ConnectError)
                if safe and attempt < self.retries:
                    self._wait(attempt, f"{method} {path}: {exc!r}")
                    attempt += 1
                    continue
                raise OfflineError() from exc
            if response.status_code == 401 and not refreshed:
                refreshed = True  # maybe expired in flight: refresh once and retry
                continue
            if response.status_code in RETRY_STATUS and method in IDEMPOTENT:
                if attempt < self.retries:
                    self._wait(attempt, f"{method} {path}: HTTP {response.status_code}")
                    attempt += 1
                    continue
            if response.is_success:
                return response
            raise self._error(response)

    def _wait(self, attempt: int, why: str) -> None:
        delay = self.backoff * (2**attempt)
        log.info("retrying in %.1f s (%s)", delay, why)
        self._sleep(delay)

    def _error(self, response: httpx.Response) -> NojoinError:
        status = response.status_code
        detail = error_detail(response)
        if status == 401:
            self.tokens.session_rejected()
            return SessionExpiredError()
        if status == 403:
            return ForbiddenError(
                detail
                or "Nojoin Cloud refused this request for your account. Check your "
                "subscription in the Cloud menu."
            )
        if status == 404:
            return NotFoundError(detail or "Not found on Nojoin Cloud (it may have been deleted).")
        if status == 409:
            return ConflictError(
                detail
                or "This was changed on another device in the meantime. Nojoin will "
                "fetch the newer version."
            )
        if status == 413:
            return PayloadTooLargeError(
                (detail + " " if detail else "")
                + "The upload is larger than Nojoin Cloud accepts; make it smaller (for "
                "example, back up without audio)."
            )
        if status == 429:
            retry_after = _retry_after(response)
            wait = f" Wait {int(retry_after)} s, then try again." if retry_after else ""
            return RateLimitedError(
                (detail or "Too many requests to Nojoin Cloud.") + (wait or " Try again later."),
                retry_after,
            )
        if status >= 500:
            return ServerError(
                f"Nojoin Cloud had a problem (HTTP {status}). Try again in a few minutes."
            )
        return CloudError(detail or f"Nojoin Cloud refused the request (HTTP {status}).")

    # ------------------------------------------------------------------ config

    def get_config(self) -> RemoteConfig:
        try:
            data = self.request("GET", "/config").json()
        except NotFoundError:
            return RemoteConfig({}, 0)
        return _remote_config(data)

    def put_config(self, config: dict[str, Any], version: int) -> RemoteConfig:
        """Store `config` if the cloud copy is still at `version` (0: none yet); else 409."""
        data = self.request("PUT", "/config", json={"config": config, "version": version}).json()
        return _remote_config(data)

    # ------------------------------------------------------------------ backups

    def generate_upload_url(self, name: str, size: int, sha256: str) -> UploadTarget:
        data = self.request(
            "POST",
            "/backups/generate-upload-url",
            json={"name": name, "size": size, "sha256": sha256},
        ).json()
        method = str(data.get("method", "PUT")).upper()
        if method not in ("PUT", "POST"):
            raise ServerError(f"Nojoin Cloud answered with an unknown upload method {method!r}.")
        return UploadTarget(
            backup_id=str(data["backup_id"]),
            method=method,
            url=str(data["url"]),
            fields={str(k): str(v) for k, v in (data.get("fields") or {}).items()},
            headers={str(k): str(v) for k, v in (data.get("headers") or {}).items()},
            expires_at=str(data.get("expires_at", "")),
        )

    def list_backups(self) -> list[BackupInfo]:
        data = self.request("GET", "/backups").json()
        items = data.get("backups", data) if isinstance(data, dict) else data
        backups = [
            BackupInfo(
                backup_id=str(b["backup_id"]),
                name=str(b["name"]),
                size=int(b["size"]),
                sha256=str(b["sha256"]),
                created_at=_time(b.get("created_at")),
            )
            for b in items
        ]
        backups.sort(key=lambda b: b.created_at.timestamp() if b.created_at else 0.0, reverse=True)
        return backups

    def generate_download_url(self, backup_id: str) -> str:
        data = self.request(
            "POST", "/backups/generate-download-url", json={"backup_id": backup_id}
        ).json()
        return str(data["url"])


def _remote_config(data: Any) -> RemoteConfig:
    if not isinstance(data, dict):
        raise ServerError("Nojoin Cloud sent settings in an unexpected format.")
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise ServerError("Nojoin Cloud sent settings in an unexpected format.")
    return RemoteConfig(config, int(data.get("version") or 0), _time(data.get("updated_at")))


def error_detail(response: httpx.Response) -> str:
    """The server's `{"detail": ...}` message of an error response ("" when it sent none)."""
    try:
        data = response.json()
    except ValueError:
        return ""
    detail = data.get("detail") if isinstance(data, dict) else None
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        return str(detail[0].get("msg", ""))
    return ""


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
