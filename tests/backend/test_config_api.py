"""GET/PUT /api/v1/config: round-trip, optimistic concurrency, size cap, validation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def backend_settings_overrides() -> dict[str, Any]:
    # A tiny pool makes the many-concurrent-requests test below meaningful.
    return {"config_max_bytes": 2048, "db_pool_max": 2}


async def test_round_trip_and_versions(client: httpx.AsyncClient, create_user: Callable) -> None:
    user = create_user()
    first = await client.get("/api/v1/config", headers=user.headers)
    assert first.status_code == 200
    assert first.json()["config"] == {} and first.json()["version"] == 0
    assert first.headers["etag"] == '"0"'

    config = {"model": "tiny.en", "language": "en", "diarize": True, "nested": {"a": [1, 2.5]}}
    put = await client.put(
        "/api/v1/config", json={"config": config, "version": 0}, headers=user.headers
    )
    assert put.status_code == 200, put.text
    assert put.json()["version"] == 1 and put.json()["config"] == config
    got = await client.get("/api/v1/config", headers=user.headers)
    assert got.json()["config"] == config and got.json()["version"] == 1
    assert got.headers["etag"] == '"1"'

    # A second device still on version 0 loses the race: 409, nothing overwritten.
    stale = await client.put(
        "/api/v1/config", json={"config": {"model": "base"}, "version": 0}, headers=user.headers
    )
    assert stale.status_code == 409
    assert stale.json()["version"] == 1 and "version" in stale.json()["detail"]
    assert (await client.get("/api/v1/config", headers=user.headers)).json()["config"] == config

    # If-Match works instead of `version`.
    ok = await client.put(
        "/api/v1/config",
        json={"config": {"model": "base"}},
        headers={**user.headers, "If-Match": '"1"'},
    )
    assert ok.status_code == 200 and ok.json()["version"] == 2
    stale = await client.put(
        "/api/v1/config",
        json={"config": {"model": "small"}},
        headers={**user.headers, "If-Match": '"1"'},
    )
    assert stale.status_code == 409


async def test_concurrent_first_writes_one_wins(
    client: httpx.AsyncClient, create_user: Callable
) -> None:
    user = create_user()

    async def put(value: str) -> int:
        resp = await client.put(
            "/api/v1/config", json={"config": {"v": value}, "version": 0}, headers=user.headers
        )
        return resp.status_code

    codes = sorted(await asyncio.gather(*(put(str(i)) for i in range(6))))
    assert codes == [200] + [409] * 5


async def test_more_concurrent_requests_than_threads_and_connections(
    client: httpx.AsyncClient, create_user: Callable
) -> None:
    """80 requests at once > 40 worker threads > 2 connections: no deadlock, all answered.
    (Requests that wait for a connection must not sit on worker threads the connection
    holders need.)"""
    user = create_user()
    with anyio.fail_after(30):
        responses = await asyncio.gather(
            *(client.get("/api/v1/config", headers=user.headers) for _ in range(80))
        )
    assert [r.status_code for r in responses] == [200] * 80


async def test_users_are_isolated(client: httpx.AsyncClient, create_user: Callable) -> None:
    alice, bob = create_user(), create_user()
    await client.put(
        "/api/v1/config", json={"config": {"secret": "alice"}, "version": 0}, headers=alice.headers
    )
    got = await client.get("/api/v1/config", headers=bob.headers)
    assert got.json() == {"config": {}, "version": 0, "updated_at": None}


async def test_size_cap_is_413(client: httpx.AsyncClient, create_user: Callable) -> None:
    user = create_user()
    big = {"blob": "x" * 5000}
    resp = await client.put(
        "/api/v1/config", json={"config": big, "version": 0}, headers=user.headers
    )
    assert resp.status_code == 413
    # Chunked upload without Content-Length is capped while streaming.
    body = json.dumps({"config": big, "version": 0}).encode()

    async def gen():  # type: ignore[no-untyped-def]
        for i in range(0, len(body), 512):
            yield body[i : i + 512]

    resp = await client.put(
        "/api/v1/config",
        content=gen(),
        headers={**user.headers, "Content-Type": "application/json"},
    )
    assert resp.status_code == 413
    assert (await client.get("/api/v1/config", headers=user.headers)).json()["version"] == 0


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b'{"config": [1, 2], "version": 0}', "application/json", 422),
        (b'{"config": "text", "version": 0}', "application/json", 422),
        (b"[1, 2]", "application/json", 422),
        (b"{not json", "application/json", 422),
        (b'{"config": {"x": NaN}, "version": 0}', "application/json", 422),
        (b'{"config": {"x": "a\\u0000b"}, "version": 0}', "application/json", 422),
        (b'{"config": {}, "version": -1}', "application/json", 422),
        (b'{"config": {}}', "application/json", 422),
        (b'{"config": {}, "version": 0, "extra": 1}', "application/json", 422),
        (b'{"config": {}, "version": 0}', "text/plain", 415),
        (b"\xff\xfe", "application/json", 422),
    ],
)
async def test_bad_input_is_a_clear_4xx(
    client: httpx.AsyncClient, create_user: Callable, body: bytes, content_type: str, status: int
) -> None:
    user = create_user()
    resp = await client.put(
        "/api/v1/config", content=body, headers={**user.headers, "Content-Type": content_type}
    )
    assert resp.status_code == status, resp.text
    assert isinstance(resp.json()["detail"], str) and resp.json()["detail"]
