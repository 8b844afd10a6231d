"""GET/PUT /api/v1/config. The version is also the ETag; PUT accepts If-Match instead of
`version` in the body."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from backend.auth.dependencies import CurrentUserId
from backend.config.dependencies import ConfigServiceDep
from backend.config.schemas import ConfigIn, ConfigOut
from backend.db import SessionDep
from backend.errors import (
    BadRequestError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)

router = APIRouter(prefix="/api/v1/config", tags=["config"])


def _respond(out: ConfigOut) -> JSONResponse:
    return JSONResponse(
        out.model_dump(mode="json"),
        headers={"ETag": f'"{out.version}"', "Cache-Control": "no-store"},
    )


def _parse_if_match(value: str | None) -> int | None:
    if value is None:
        return None
    tag = value.strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise BadRequestError('If-Match must be a config version ETag such as "3".')
    return int(tag)


async def _read_capped(request: Request, limit: int) -> bytes:
    # Counted while streaming: a chunked body without Content-Length cannot bypass the cap.
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise PayloadTooLargeError(
                f"The config is larger than {limit} bytes.", code="config_too_large"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


@router.get("", response_model=ConfigOut)
def get_config(user_id: CurrentUserId, service: ConfigServiceDep, conn: SessionDep) -> JSONResponse:
    return _respond(service.get(conn, user_id))


@router.put(
    "",
    response_model=ConfigOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ConfigIn.model_json_schema()}},
        }
    },
    responses={409: {"description": "Stale version"}, 413: {"description": "Too large"}},
)
async def put_config(
    request: Request,
    user_id: CurrentUserId,
    service: ConfigServiceDep,
    conn: SessionDep,
    if_match: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaTypeError("Send the config as application/json.")
    # JSON framing ({"config": ..., "version": n}) gets a little headroom over the config cap.
    raw = await _read_capped(request, service.max_bytes + 1024)
    try:
        payload: Any = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailedError(f"Body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise ValidationFailedError('Body must be a JSON object {"config": {...}, "version": n}.')
    try:
        body = ConfigIn.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValidationFailedError(f"Invalid request: {where}: {first['msg']}") from exc
    expected = body.version if body.version is not None else _parse_if_match(if_match)
    if expected is None:
        raise ValidationFailedError(
            "Say which version you changed: send `version` in the body or an If-Match header."
        )
    out = await run_in_threadpool(service.put, conn, user_id, body.config, expected)
    return _respond(out)
