"""Backups with the local storage provider: signed URLs, checksums, isolation, path tricks."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from backend.errors import BadRequestError
from backend.runtime import Runtime
from backend.storage.local import LocalStorage

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def backend_settings_overrides() -> dict[str, Any]:
    return {"backup_retention": 2, "backup_max_bytes": 4 * 1024 * 1024}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def _request_upload(
    client: httpx.AsyncClient, headers: dict[str, str], data: bytes, name: str = "library"
) -> dict[str, Any]:
    resp = await client.post(
        "/api/v1/backups/generate-upload-url",
        json={"name": name, "size": len(data), "sha256": _sha(data)},
        headers=headers,
    )
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def _upload(client: httpx.AsyncClient, target: dict[str, Any], data: bytes) -> httpx.Response:
    assert target["method"] == "PUT" and target["fields"] == {}
    return await client.put(target["url"], content=data, headers=target["headers"])


async def test_upload_list_download_round_trip(
    client: httpx.AsyncClient, create_user: Callable, runtime: Runtime
) -> None:
    user = create_user()
    data = secrets.token_bytes(300_000)
    target = await _request_upload(client, user.headers, data, name="Work laptop")
    assert set(target) == {"backup_id", "method", "url", "fields", "headers", "expires_at"}
    # Not listed until the bytes are there.
    assert (await client.get("/api/v1/backups", headers=user.headers)).json() == []

    resp = await _upload(client, target, data)
    assert resp.status_code == 201, resp.text
    listed = (await client.get("/api/v1/backups", headers=user.headers)).json()
    assert len(listed) == 1
    item = listed[0]
    assert item["backup_id"] == target["backup_id"]
    assert item["name"] == "Work laptop" and item["size"] == len(data)
    assert item["sha256"] == _sha(data) and item["created_at"]
    assert set(item) == {"backup_id", "name", "size", "sha256", "created_at"}

    dl = await client.post(
        "/api/v1/backups/generate-download-url",
        json={"backup_id": target["backup_id"]},
        headers=user.headers,
    )
    assert dl.status_code == 200 and set(dl.json()) == {"url", "expires_at"}
    got = await client.get(dl.json()["url"])
    assert got.status_code == 200
    assert _sha(got.content) == _sha(data)

    # The object sits in the user's own folder, under a server-built key.
    assert isinstance(runtime.storage, LocalStorage)
    path = runtime.storage.root / str(user.id) / "backups" / f"{target['backup_id']}.sqlite3"
    assert path.read_bytes() == data

    # A signed upload URL cannot overwrite a finished backup.
    again = await _upload(client, target, data)
    assert again.status_code == 409


async def test_oversized_or_corrupt_uploads_are_refused(
    client: httpx.AsyncClient, create_user: Callable
) -> None:
    user = create_user()
    data = secrets.token_bytes(10_000)
    target = await _request_upload(client, user.headers, data)
    too_big = await client.put(target["url"], content=data + b"x")
    assert too_big.status_code == 413

    async def chunks():  # type: ignore[no-untyped-def]
        # Chunked, no Content-Length: the stream is cut off as soon as it passes the size.
        yield data
        yield b"more"

    streamed = await client.put(target["url"], content=chunks())
    assert streamed.status_code == 413
    short = await client.put(target["url"], content=data[:-1])
    assert short.status_code == 400
    corrupt = bytearray(data)
    corrupt[0] ^= 0xFF
    bad_hash = await client.put(target["url"], content=bytes(corrupt))
    assert bad_hash.status_code == 422
    assert "sha256" in bad_hash.json()["detail"]
    assert (await client.get("/api/v1/backups", headers=user.headers)).json() == []
    # The right bytes still go through afterwards: failed attempts leave nothing behind.
    assert (await _upload(client, target, data)).status_code == 201


async def test_declared_size_over_limit_is_413(
    client: httpx.AsyncClient, create_user: Callable
) -> None:
    user = create_user()
    resp = await client.post(
        "/api/v1/backups/generate-upload-url",
        json={"name": "huge", "size": 5 * 1024 * 1024, "sha256": "0" * 64},
        headers=user.headers,
    )
    assert resp.status_code == 413


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return f"{parts.path}?{urlencode(query)}"


async def test_tampered_and_expired_urls_are_refused(
    client: httpx.AsyncClient, create_user: Callable, runtime: Runtime
) -> None:
    user = create_user()
    data = b"backup bytes" * 100
    target = await _request_upload(client, user.headers, data)
    # Raising the signed size or changing the signature breaks the HMAC.
    assert (
        await client.put(_with_query(target["url"], size="999999"), content=data)
    ).status_code == 403
    sig = parse_qs(urlsplit(target["url"]).query)["sig"][0]
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    assert (
        await client.put(_with_query(target["url"], sig=flipped), content=data)
    ).status_code == 403
    # Another user's folder with a valid-looking signature for a different key: 403.
    other_key_url = target["url"].replace(str(user.id), str(uuid.uuid4()))
    assert (await client.put(other_key_url, content=data)).status_code == 403

    storage = runtime.storage
    assert isinstance(storage, LocalStorage)
    expired = storage.presign_upload(
        f"{user.id}/backups/{uuid.uuid4()}.sqlite3",
        size=len(data),
        sha256=_sha(data),
        expires_in=-1,
        base_url="http://testserver",
    )
    resp = await client.put(expired.url, content=data)
    assert resp.status_code == 403 and "expired" in resp.json()["detail"]

    assert (await _upload(client, target, data)).status_code == 201
    dl = (
        await client.post(
            "/api/v1/backups/generate-download-url",
            json={"backup_id": target["backup_id"]},
            headers=user.headers,
        )
    ).json()
    assert (await client.get(_with_query(dl["url"], exp="9999999999"))).status_code == 403
    old = storage.presign_download(
        f"{user.id}/backups/{target['backup_id']}.sqlite3", expires_in=-1, base_url=""
    )
    assert (await client.get(old.url)).status_code == 403


async def test_other_users_cannot_list_or_download(
    client: httpx.AsyncClient, create_user: Callable
) -> None:
    alice, bob = create_user(), create_user()
    data = b"alice's meetings"
    target = await _request_upload(client, alice.headers, data)
    assert (await _upload(client, target, data)).status_code == 201
    assert (await client.get("/api/v1/backups", headers=bob.headers)).json() == []
    resp = await client.post(
        "/api/v1/backups/generate-download-url",
        json={"backup_id": target["backup_id"]},
        headers=bob.headers,
    )
    assert resp.status_code == 404
    resp = await client.post(
        "/api/v1/backups/generate-download-url",
        json={"backup_id": str(uuid.uuid4())},
        headers=alice.headers,
    )
    assert resp.status_code == 404
    assert (await client.get("/api/v1/backups")).status_code == 401


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "/etc/passwd", "a\x00b", "dir/name", "..", "back\\slash", " "]
)
async def test_path_like_names_are_refused(
    client: httpx.AsyncClient, create_user: Callable, name: str
) -> None:
    user = create_user()
    resp = await client.post(
        "/api/v1/backups/generate-upload-url",
        json={"name": name, "size": 10, "sha256": "a" * 64},
        headers=user.headers,
    )
    assert resp.status_code == 422
    assert isinstance(resp.json()["detail"], str)


@pytest.mark.parametrize(
    "raw_path",
    [
        "/api/v1/storage/objects/..%2F..%2Fetc%2Fpasswd",
        "/api/v1/storage/objects/%2Fetc%2Fpasswd",
        "/api/v1/storage/objects/abc%00def",
        "/api/v1/storage/objects/abc/..%2F..%2Fx",
        "/api/v1/storage/objects/a%5C..%5Cb",
    ],
)
async def test_path_tricks_on_storage_urls_are_refused(
    client: httpx.AsyncClient, raw_path: str
) -> None:
    query = urlencode({"exp": "9999999999", "size": "1", "sha256": "a" * 64, "sig": "0" * 64})
    url = httpx.URL(f"http://testserver{raw_path}?{query}")
    put = await client.put(url, content=b"x")
    get = await client.get(httpx.URL(f"http://testserver{raw_path}?exp=9999999999&sig={'0' * 64}"))
    # Refused as an invalid key before the signature is even looked at.
    assert put.status_code == 400 and get.status_code == 400
    assert put.json()["detail"] == "Invalid object key."


@pytest.mark.parametrize(
    "key", ["../x", "/abs/path", "a/../../b", "a\x00b", "a//b", "a\\b", "", "a/./b", ".hidden"]
)
def test_local_storage_refuses_unsafe_keys(runtime: Runtime, key: str) -> None:
    storage = runtime.storage
    assert isinstance(storage, LocalStorage)
    with pytest.raises(BadRequestError):
        storage.path_for(key)


async def test_retention_keeps_the_newest(
    client: httpx.AsyncClient, create_user: Callable, runtime: Runtime
) -> None:
    user = create_user()
    ids = []
    for i in range(3):
        data = f"backup {i}".encode() * 50
        target = await _request_upload(client, user.headers, data, name=f"b{i}")
        assert (await _upload(client, target, data)).status_code == 201
        ids.append(target["backup_id"])
        await client.get("/api/v1/backups", headers=user.headers)  # completes + prunes
    listed = (await client.get("/api/v1/backups", headers=user.headers)).json()
    assert [b["name"] for b in listed] == ["b2", "b1"]
    assert isinstance(runtime.storage, LocalStorage)
    assert not (runtime.storage.root / str(user.id) / "backups" / f"{ids[0]}.sqlite3").exists()


async def test_unfinished_uploads_are_capped(
    client: httpx.AsyncClient, create_user: Callable
) -> None:
    user = create_user()
    for i in range(5):
        await _request_upload(client, user.headers, f"pending {i}".encode())
    resp = await client.post(
        "/api/v1/backups/generate-upload-url",
        json={"name": "one too many", "size": 3, "sha256": "a" * 64},
        headers=user.headers,
    )
    assert resp.status_code == 429 and resp.headers["retry-after"]
    # Other users are not affected.
    other = create_user()
    assert (await _request_upload(client, other.headers, b"fine"))["backup_id"]
