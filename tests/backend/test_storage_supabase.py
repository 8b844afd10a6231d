"""The Supabase Storage provider against a local stand-in for Supabase's Storage REST API
(the hosted service cannot exist offline). The stand-in checks the service key and signed
tokens the way Storage does, so the provider's wire format is exercised end to end."""

from __future__ import annotations

import hashlib
import io
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import httpx
import pytest
import uvicorn
from fastapi import Body, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from backend.errors import NotFoundError
from backend.runtime import Runtime
from backend.storage.supabase import SupabaseStorage

pytestmark = pytest.mark.anyio
SERVICE_KEY = "service-role-key-for-tests"
BUCKET = "user-backups"


def fake_storage_app() -> FastAPI:
    app = FastAPI()
    objects: dict[str, bytes] = {}
    tokens: dict[str, tuple[str, str, float]] = {}  # token -> (purpose, path, expiry)

    def need_service(authorization: str | None) -> None:
        if authorization != f"Bearer {SERVICE_KEY}":
            raise HTTPException(403, "invalid signature")

    def token_for(purpose: str, path: str, ttl: float) -> str:
        tok = secrets.token_urlsafe(16)
        tokens[tok] = (purpose, path, time.time() + ttl)
        return tok

    def check_token(tok: str, purpose: str, path: str) -> None:
        got = tokens.get(tok)
        if got is None or got[0] != purpose or got[1] != path or got[2] < time.time():
            raise HTTPException(400, "invalid token")

    @app.post("/storage/v1/object/upload/sign/{path:path}")
    def sign_upload(path: str, authorization: Annotated[str | None, Header()] = None) -> Any:
        need_service(authorization)
        tok = token_for("upload", path, 7200)
        return {"url": f"/object/upload/sign/{path}?token={tok}", "token": tok}

    @app.put("/storage/v1/object/upload/sign/{path:path}")
    async def upload_signed(path: str, token: str, request: Request) -> Any:
        check_token(token, "upload", path)
        if path in objects:
            raise HTTPException(409, "The resource already exists")
        objects[path] = await request.body()
        return {"Key": path}

    @app.post("/storage/v1/object/sign/{path:path}")
    def sign_download(
        path: str,
        body: Annotated[dict[str, Any], Body()],
        authorization: Annotated[str | None, Header()] = None,
    ) -> Any:
        need_service(authorization)
        if path not in objects:
            return JSONResponse({"statusCode": "404", "error": "not_found"}, status_code=400)
        tok = token_for("download", path, float(body["expiresIn"]))
        return {"signedURL": f"/object/sign/{path}?token={tok}"}

    @app.get("/storage/v1/object/sign/{path:path}")
    def download_signed(path: str, token: str) -> Response:
        check_token(token, "download", path)
        return Response(objects[path], media_type="application/octet-stream")

    @app.api_route("/storage/v1/object/authenticated/{path:path}", methods=["GET", "HEAD"])
    def read(path: str, authorization: Annotated[str | None, Header()] = None) -> Response:
        need_service(authorization)
        if path not in objects:
            return JSONResponse({"statusCode": "404", "error": "not_found"}, status_code=400)
        return Response(objects[path], media_type="application/octet-stream")

    @app.post("/storage/v1/object/{path:path}")
    async def put(
        path: str, request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> Any:
        need_service(authorization)
        objects[path] = await request.body()
        return {"Key": path}

    @app.delete("/storage/v1/object/{bucket}")
    def delete(
        bucket: str,
        body: Annotated[dict[str, Any], Body()],
        authorization: Annotated[str | None, Header()] = None,
    ) -> Any:
        need_service(authorization)
        removed = [p for p in body["prefixes"] if objects.pop(f"{bucket}/{p}", None) is not None]
        return [{"name": p} for p in removed]

    return app


@pytest.fixture(scope="module")
def supabase_url() -> Iterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(fake_storage_app(), host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def backend_settings_overrides(supabase_url: str) -> dict[str, Any]:
    return {
        "storage_backend": "supabase",
        "supabase_url": supabase_url,
        "supabase_service_key": SERVICE_KEY,
    }


def test_signed_upload_download_round_trip(runtime: Runtime) -> None:
    storage = runtime.storage
    assert isinstance(storage, SupabaseStorage)
    data = secrets.token_bytes(40_000)
    key = "22222222-2222-2222-2222-222222222222/backups/a.sqlite3"
    target = storage.presign_upload(
        key, size=len(data), sha256=hashlib.sha256(data).hexdigest(), expires_in=300, base_url=""
    )
    assert target.method == "PUT" and "token=" in target.url
    assert storage.stat(key) is None
    # The client needs no key at all: the signed URL is enough.
    assert httpx.put(target.url, content=data, headers=target.headers).status_code == 200
    info = storage.stat(key)
    assert info is not None and info.size == len(data)
    dl = storage.presign_download(key, expires_in=60, base_url="")
    assert httpx.get(dl.url).content == data
    assert b"".join(storage.iter_bytes(key)) == data
    storage.delete(key)
    assert storage.stat(key) is None
    with pytest.raises(NotFoundError):
        b"".join(storage.iter_bytes(key))


def test_server_side_put_and_bad_service_key(runtime: Runtime, supabase_url: str) -> None:
    storage = runtime.storage
    assert isinstance(storage, SupabaseStorage)
    key = "22222222-2222-2222-2222-222222222222/jobs/in.wav"
    assert storage.put(key, io.BytesIO(b"a" * 3000)).size == 3000
    wrong = SupabaseStorage(supabase_url, "not-the-service-key", BUCKET)
    with pytest.raises(Exception, match="Supabase Storage upload signing failed"):
        wrong.presign_upload(key, size=1, sha256="0" * 64, expires_in=60, base_url="")


async def test_backups_api_with_supabase_storage(
    client: httpx.AsyncClient, create_user: Callable
) -> None:
    alice, bob = create_user(), create_user()
    data = secrets.token_bytes(12_345)
    resp = await client.post(
        "/api/v1/backups/generate-upload-url",
        json={"name": "cloud", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()},
        headers=alice.headers,
    )
    target = resp.json()
    assert target["method"] == "PUT" and f"/{BUCKET}/{alice.id}/" in target["url"]
    assert httpx.put(target["url"], content=data, headers=target["headers"]).status_code == 200
    listed = (await client.get("/api/v1/backups", headers=alice.headers)).json()
    assert [b["size"] for b in listed] == [len(data)]
    assert (await client.get("/api/v1/backups", headers=bob.headers)).json() == []
    dl = await client.post(
        "/api/v1/backups/generate-download-url",
        json={"backup_id": target["backup_id"]},
        headers=alice.headers,
    )
    assert hashlib.sha256(httpx.get(dl.json()["url"]).content).hexdigest() == listed[0]["sha256"]
