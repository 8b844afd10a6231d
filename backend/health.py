"""GET /health: liveness plus database reachability; the anon key in embedded mode only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from backend.runtime import RuntimeDep

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(runtime: RuntimeDep) -> JSONResponse:
    db_ok = await run_in_threadpool(runtime.db.ping)
    settings = runtime.settings
    body: dict[str, Any] = {
        "status": "ok" if db_ok else "degraded",
        "database": "ok" if db_ok else "unreachable",
        "mode": "embedded" if settings.embedded_db else "external",
        "auth": "builtin" if settings.builtin_auth_enabled else "external",
        "storage": runtime.storage.name,
    }
    if settings.embedded_db and settings.builtin_auth_enabled and runtime.anon_key:
        body["anon_key"] = runtime.anon_key
    return JSONResponse(body, status_code=200 if db_ok else 503)
