"""Backup rules: server-built keys `{user_id}/backups/{backup_id}.sqlite3`, size cap, per-user
retention, and completion detected from the storage (the client uploads straight to it).

GET /api/v1/backups lists completed uploads only: a pending row becomes completed the first
time the backend sees an object of exactly the declared size under its key; pending rows
whose upload URL expired without an object are dropped.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from backend.backups.repository import BackupRepository, Row
from backend.backups.schemas import BackupOut, DownloadUrlResponse, UploadUrlResponse
from backend.db import Connection
from backend.errors import (
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    TooManyRequestsError,
)
from backend.settings import Settings
from backend.storage.base import StorageProvider

logger = logging.getLogger(__name__)


class BackupService:
    """One per Runtime (`runtime.backups`, `BackupServiceDep`)."""

    def __init__(self, settings: Settings, storage: StorageProvider) -> None:
        self.settings = settings
        self.storage = storage

    @staticmethod
    def object_key(user_id: uuid.UUID, backup_id: uuid.UUID) -> str:
        return f"{user_id}/backups/{backup_id}.sqlite3"

    def create_upload(
        self,
        conn: Connection,
        user_id: uuid.UUID,
        *,
        name: str,
        size: int,
        sha256: str,
        base_url: str,
    ) -> UploadUrlResponse:
        repo = BackupRepository.from_session(conn)
        if size > self.settings.backup_max_bytes:
            raise PayloadTooLargeError(
                f"The backup is {size} bytes; the limit is {self.settings.backup_max_bytes}.",
                code="backup_too_large",
            )
        self.reconcile(conn, user_id)
        if len(repo.pending(user_id)) >= self.settings.backup_max_pending:
            raise TooManyRequestsError(
                "Too many unfinished backup uploads. Finish one or wait for its link to expire.",
                retry_after=self.settings.url_ttl_seconds,
                code="too_many_pending_uploads",
            )
        backup_id = uuid.uuid4()
        key = self.object_key(user_id, backup_id)
        ttl = self.settings.url_ttl_seconds
        target = self.storage.presign_upload(
            key, size=size, sha256=sha256, expires_in=ttl, base_url=base_url
        )
        repo.insert(
            backup_id=backup_id,
            user_id=user_id,
            name=name,
            object_key=key,
            size=size,
            sha256=sha256,
            provider=self.storage.name,
            expires_at=target.expires_at,
        )
        return UploadUrlResponse(
            backup_id=backup_id,
            method=target.method,
            url=target.url,
            fields=target.fields,
            headers=target.headers,
            expires_at=target.expires_at,
        )

    def list(self, conn: Connection, user_id: uuid.UUID) -> list[BackupOut]:
        self.reconcile(conn, user_id)
        return [_out(row) for row in BackupRepository.from_session(conn).completed(user_id)]

    def create_download(
        self, conn: Connection, user_id: uuid.UUID, backup_id: uuid.UUID, *, base_url: str
    ) -> DownloadUrlResponse:
        repo = BackupRepository.from_session(conn)
        row = repo.get(user_id, backup_id)
        if row is None:
            raise NotFoundError("No such backup.", code="backup_not_found")
        if row["status"] != "completed":
            self.reconcile(conn, user_id)
            row = repo.get(user_id, backup_id)
            if row is None:
                raise NotFoundError("No such backup.", code="backup_not_found")
            if row["status"] != "completed":
                raise ConflictError(
                    "This backup's upload has not finished yet.", code="upload_pending"
                )
        target = self.storage.presign_download(
            row["object_key"], expires_in=self.settings.url_ttl_seconds, base_url=base_url
        )
        return DownloadUrlResponse(url=target.url, expires_at=target.expires_at)

    def reconcile(self, conn: Connection, user_id: uuid.UUID) -> None:
        """Promote finished uploads, drop expired or corrupt ones, enforce retention."""
        repo = BackupRepository.from_session(conn)
        now = datetime.now(UTC)
        grace = timedelta(seconds=60)  # an upload that started before expiry may still finish
        changed = False
        for row in repo.pending(user_id):
            info = self.storage.stat(row["object_key"])
            if info is not None and info.size == row["size"]:
                repo.mark_completed(row["id"])
                changed = True
            elif info is not None:
                logger.warning("Backup %s has the wrong size; deleting it", row["id"])
                self._drop(conn, row)
            elif row["expires_at"] + grace < now:
                repo.delete(row["id"])
        if changed:
            for row in repo.completed(user_id)[self.settings.backup_retention :]:
                logger.info("Retention: deleting backup %s of user %s", row["id"], user_id)
                self._drop(conn, row)

    def _drop(self, conn: Connection, row: Row) -> None:
        self.storage.delete(row["object_key"])
        BackupRepository.from_session(conn).delete(row["id"])


def _out(row: Row) -> BackupOut:
    return BackupOut(
        backup_id=row["id"],
        name=row["name"],
        size=row["size"],
        sha256=row["sha256"],
        created_at=row["created_at"],
    )
