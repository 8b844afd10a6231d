"""POST /api/v1/backups/generate-upload-url, GET /api/v1/backups,
POST /api/v1/backups/generate-download-url."""

from __future__ import annotations

from fastapi import APIRouter

from backend.auth.dependencies import CurrentUserId
from backend.backups.dependencies import BackupServiceDep
from backend.backups.schemas import (
    BackupOut,
    DownloadUrlRequest,
    DownloadUrlResponse,
    UploadUrlRequest,
    UploadUrlResponse,
)
from backend.db import SessionDep
from backend.runtime import BaseURLDep

router = APIRouter(prefix="/api/v1/backups", tags=["backups"])


@router.post("/generate-upload-url", response_model=UploadUrlResponse)
def generate_upload_url(
    body: UploadUrlRequest,
    base_url: BaseURLDep,
    user_id: CurrentUserId,
    service: BackupServiceDep,
    conn: SessionDep,
) -> UploadUrlResponse:
    return service.create_upload(
        conn,
        user_id,
        name=body.name,
        size=body.size,
        sha256=body.sha256,
        base_url=base_url,
    )


@router.get("", response_model=list[BackupOut])
def list_backups(
    user_id: CurrentUserId, service: BackupServiceDep, conn: SessionDep
) -> list[BackupOut]:
    return service.list(conn, user_id)


@router.post("/generate-download-url", response_model=DownloadUrlResponse)
def generate_download_url(
    body: DownloadUrlRequest,
    base_url: BaseURLDep,
    user_id: CurrentUserId,
    service: BackupServiceDep,
    conn: SessionDep,
) -> DownloadUrlResponse:
    return service.create_download(conn, user_id, body.backup_id, base_url=base_url)
