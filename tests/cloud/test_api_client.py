"""The API client: typed errors with actionable messages, retries with backoff on 5xx and
network errors (only where repeating is safe), one token refresh on 401. Status handling is
checked against the real backend where it can produce the status (409, 413, 401) and with an
httpx transport playing a failing network/server for the rest (5xx, 429, 403, resets)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from cloud_support import PASSWORD, Device, new_email

from nojoin.cloud.api_client import ApiClient
from nojoin.cloud.errors import (
    ConflictError,
    ForbiddenError,
    OfflineError,
    PayloadTooLargeError,
    RateLimitedError,
    ServerError,
    SessionExpiredError,
)


class Tokens:
    def __init__(self) -> None:
        self.forced = 0
        self.rejected = 0

    def access_token(self, *, force_refresh: bool = False) -> str:
        self.forced += force_refresh
        return "fresh" if force_refresh else "stale"

    def session_rejected(self) -> None:
        self.rejected += 1


def _client(
    handler: Any, tokens: Tokens | None = None, sleeps: list[float] | None = None
) -> ApiClient:
    return ApiClient(
        "http://cloud.test",
        tokens or Tokens(),
        transport=httpx.MockTransport(handler),
        retries=3,
        backoff=0.5,
        sleep=(sleeps if sleeps is not None else []).append,
    )


def test_5xx_is_retried_with_exponential_backoff_then_succeeds() -> None:
    calls: list[int] = []
    sleeps: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) < 3:
            return httpx.Response(503, json={"detail": "busy"})
        return httpx.Response(200, json={"config": {"theme": "dark"}, "version": 2})

    assert _client(handler, sleeps=sleeps).get_config().version == 2
    assert sleeps == [0.5, 1.0]


def test_persistent_5xx_and_network_failures_give_clear_errors() -> None:
    with pytest.raises(ServerError, match="Try again in a few minutes"):
        _client(lambda r: httpx.Response(500)).get_config()

    def reset(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    sleeps: list[float] = []
    with pytest.raises(OfflineError, match="internet connection"):
        _client(reset, sleeps=sleeps).get_config()
    assert sleeps == [0.5, 1.0, 2.0]


def test_non_idempotent_post_is_not_repeated_after_a_read_timeout() -> None:
    calls: list[int] = []

    def timeout(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(OfflineError):
        _client(timeout).generate_upload_url("b.tar.gz", 10, "a" * 64)
    assert len(calls) == 1  # the server may have acted on it: never sent twice


def test_401_refreshes_once_then_signs_out() -> None:
    tokens = Tokens()
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        if request.headers["Authorization"] == "Bearer fresh":
            return httpx.Response(200, json={"config": {}, "version": 0})
        return httpx.Response(401, json={"detail": "expired"})

    _client(handler, tokens).get_config()
    assert seen == ["Bearer stale", "Bearer fresh"] and tokens.rejected == 0

    with pytest.raises(SessionExpiredError, match="Sign in again"):
        _client(lambda r: httpx.Response(401, json={"detail": "no"}), tokens).get_config()
    assert tokens.rejected == 1


def test_403_and_429_carry_the_servers_reason() -> None:
    with pytest.raises(ForbiddenError, match="needs a subscription"):
        _client(
            lambda r: httpx.Response(
                403, json={"detail": "Remote processing needs a subscription."}
            )
        ).list_backups()
    with pytest.raises(RateLimitedError, match="Wait 30 s") as info:
        _client(
            lambda r: httpx.Response(
                429, json={"detail": "Too many requests."}, headers={"Retry-After": "30"}
            )
        ).list_backups()
    assert info.value.retry_after == 30.0


def test_real_backend_409_and_413(device: Any) -> None:
    dev: Device = device("api")
    dev.auth.sign_up(new_email(), PASSWORD)
    first = dev.api.put_config({"theme": "dark"}, 0)
    assert first.version == 1
    with pytest.raises(ConflictError, match="changed"):
        dev.api.put_config({"theme": "light"}, 0)  # stale version
    with pytest.raises(PayloadTooLargeError, match="larger than Nojoin Cloud accepts"):
        dev.api.put_config({"notes": "x" * 300_000}, first.version)
    assert dev.api.get_config().config == {"theme": "dark"}  # nothing overwritten


def test_a_missing_backup_is_the_desktops_one_not_found_error() -> None:
    from nojoin.errors import NotFoundError

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"detail": "No such backup."})

    api = _client(handler)
    with pytest.raises(NotFoundError, match="No such backup"):
        api.generate_download_url("b-404")
    # A missing settings row is no error: the cloud copy is just empty.
    assert api.get_config().config == {}
    api.close()
