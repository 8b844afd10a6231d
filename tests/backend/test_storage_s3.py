"""The S3 provider against moto's server mode on 127.0.0.1, directly and through the API."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from backend.errors import NotFoundError
from backend.runtime import Runtime
from backend.storage.s3 import S3Storage

pytestmark = pytest.mark.anyio
BUCKET = "user-backups"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture(scope="module")
def backend_settings_overrides(moto_endpoint: str) -> dict[str, Any]:
    return {
        "storage_backend": "s3",
        "s3_endpoint_url": moto_endpoint,
        "s3_bucket": BUCKET,
        "s3_access_key_id": "test",
        "s3_secret_access_key": "test",
    }


def _post_form(target: Any, data: bytes) -> httpx.Response:
    fields = target.fields if hasattr(target, "fields") else target["fields"]
    url = target.url if hasattr(target, "url") else target["url"]
    return httpx.post(url, data=fields, files={"file": ("backup.sqlite3", data)})


def test_presigned_post_and_get_round_trip(runtime: Runtime) -> None:
    storage = runtime.storage
    assert isinstance(storage, S3Storage)
    data = secrets.token_bytes(50_000)
    key = "11111111-1111-1111-1111-111111111111/backups/a.sqlite3"
    target = storage.presign_upload(
        key, size=len(data), sha256=hashlib.sha256(data).hexdigest(), expires_in=300, base_url=""
    )
    assert target.method == "POST" and "policy" in {k.lower() for k in target.fields}
    assert storage.stat(key) is None
    resp = _post_form(target, data)
    assert resp.status_code in (200, 204), resp.text
    info = storage.stat(key)
    assert info is not None and info.size == len(data)
    dl = storage.presign_download(key, expires_in=300, base_url="")
    assert httpx.get(dl.url).content == data
    assert b"".join(storage.iter_bytes(key)) == data
    storage.delete(key)
    assert storage.stat(key) is None
    with pytest.raises(NotFoundError):
        b"".join(storage.iter_bytes(key))


def test_presigned_post_policy_pins_the_size(runtime: Runtime) -> None:
    storage = runtime.storage
    assert isinstance(storage, S3Storage)
    key = "11111111-1111-1111-1111-111111111111/backups/b.sqlite3"
    target = storage.presign_upload(key, size=1000, sha256="0" * 64, expires_in=300, base_url="")
    policy = json.loads(base64.b64decode(target.fields["policy"]))
    # Real S3 rejects any other size with EntityTooLarge/TooSmall. (moto does not enforce
    # POST policies, so the API test below checks the server-side size check instead.)
    assert ["content-length-range", 1000, 1000] in policy["conditions"]
    assert {"bucket": BUCKET} in policy["conditions"]
    assert {"key": key} in policy["conditions"]


async def test_wrong_size_object_is_never_listed(
    client: httpx.AsyncClient, create_user: Callable, runtime: Runtime
) -> None:
    user = create_user()
    data = b"y" * 500
    resp = await client.post(
        "/api/v1/backups/generate-upload-url",
        json={"name": "bad", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()},
        headers=user.headers,
    )
    target = resp.json()
    assert _post_form(target, data * 2).status_code in (200, 204)  # moto lets it through
    assert (await client.get("/api/v1/backups", headers=user.headers)).json() == []
    assert runtime.storage.stat(target["fields"]["key"]) is None  # deleted as corrupt


def test_server_side_put(runtime: Runtime) -> None:
    storage = runtime.storage
    assert isinstance(storage, S3Storage)
    key = "11111111-1111-1111-1111-111111111111/jobs/input.wav"
    info = storage.put(key, io.BytesIO(b"RIFF" + b"\0" * 100))
    assert info.size == 104


async def test_backups_api_with_s3(client: httpx.AsyncClient, create_user: Callable) -> None:
    user = create_user()
    data = secrets.token_bytes(20_000)
    resp = await client.post(
        "/api/v1/backups/generate-upload-url",
        json={"name": "s3 backup", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()},
        headers=user.headers,
    )
    assert resp.status_code == 200, resp.text
    target = resp.json()
    assert target["method"] == "POST" and target["fields"]["key"].startswith(f"{user.id}/")
    assert _post_form(target, data).status_code in (200, 204)
    listed = (await client.get("/api/v1/backups", headers=user.headers)).json()
    assert [b["backup_id"] for b in listed] == [target["backup_id"]]
    dl = await client.post(
        "/api/v1/backups/generate-download-url",
        json={"backup_id": target["backup_id"]},
        headers=user.headers,
    )
    assert httpx.get(dl.json()["url"]).content == data
