"""Routes behind the local provider's signed URLs: PUT (streamed upload) and GET (download)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response

from backend.errors import NotFoundError, PayloadTooLargeError
from backend.runtime import RuntimeDep
from backend.storage.local import ROUTE_PREFIX, LocalStorage

router = APIRouter(prefix=ROUTE_PREFIX, tags=["storage"])


def _local(runtime: RuntimeDep) -> LocalStorage:
    storage = runtime.storage
    if not isinstance(storage, LocalStorage):
        raise NotFoundError("Local storage is not enabled on this server.")
    return storage


@router.put("/{key:path}", status_code=201)
async def upload_object(
    key: str,
    request: Request,
    runtime: RuntimeDep,
    exp: Annotated[int, Query()],
    size: Annotated[int, Query(gt=0)],
    sha256: Annotated[str, Query(pattern="^[0-9a-f]{64}$")],
    sig: Annotated[str, Query(max_length=128)],
) -> Response:
    storage = _local(runtime)
    storage.check_signature("PUT", key, exp=exp, size=size, sha256=sha256, sig=sig)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > size:
        raise PayloadTooLargeError(
            f"The upload is larger than the declared {size} bytes.", code="upload_too_large"
        )
    await storage.receive(key, request.stream(), size=size, sha256=sha256)
    return Response(status_code=201)


@router.get("/{key:path}")
async def download_object(
    key: str,
    runtime: RuntimeDep,
    exp: Annotated[int, Query()],
    sig: Annotated[str, Query(max_length=128)],
) -> FileResponse:
    storage = _local(runtime)
    storage.check_signature("GET", key, exp=exp, size=0, sha256="", sig=sig)
    path = storage.path_for(key)
    if not path.is_file():
        raise NotFoundError("Object not found.")
    return FileResponse(path, media_type="application/octet-stream", filename=path.name)
