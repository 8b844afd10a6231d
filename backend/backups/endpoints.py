"""POST /api/v1/backups/generate-upload-url, GET /api/v1/backups,
POST /api/v1/backups/generate-download-url."""

from __future__ import annotations

from fastapi import APIRouter, Request

from backend.auth.dependencies import CurrentUserId
from backend.backups.schemas import (
    BackupOut,
    DownloadUrlRequest,
    DownloadUrlResponse,
    UploadUrlRequest,
    UploadUrlResponse,
)
from backend.backups.service import BackupService
from backend.db import SessionDep
from backend.runtime import Runtime, RuntimeDep

router = APIRouter(prefix="/api/v1/backups", tags=["backups"])


def _service(runtime: Runtime) -> BackupService:
    return BackupService(runtime.settings, runtime.storage)


def _base_url(runtime: Runtime, request: Request) -> str:
    return runtime.settings.public_url or str(request.base_url)


@router.post("/generate-upload-url", response_model=UploadUrlResponse)
def generate_upload_url(
    body: UploadUrlRequest,
    request: Request,
    user_id: CurrentUserId,
    runtime: RuntimeDep,
    conn: SessionDep,
) -> UploadUrlResponse:
    return _service(runtime).create_upload(
        conn,
        user_id,
        name=body.name,
        size=body.size,
        sha256=body.sha256,
        base_url=_base_url(runtime, request),
    )


@router.get("", response_model=list[BackupOut])
def list_backups(user_id: CurrentUserId, runtime: RuntimeDep, conn: SessionDep) -> list[BackupOut]:
    return _service(runtime).list(conn, user_id)


@router.post("/generate-download-url", response_model=DownloadUrlResponse)
def generate_download_url(
    body: DownloadUrlRequest,
    request: Request,
    user_id: CurrentUserId,
    runtime: RuntimeDep,
    conn: SessionDep,
) -> DownloadUrlResponse:
    return _service(runtime).create_download(
        conn, user_id, body.backup_id, base_url=_base_url(runtime, request)
    )
