"""SQL for public.backups. Every query is scoped by user_id (the backend connects as the table
owner, so RLS does not filter for it)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from backend.db import Repository

Row = dict[str, Any]
_COLUMNS = "id, user_id, name, object_key, size, sha256, provider, status, created_at, expires_at"


class BackupRepository(Repository):
    def insert(
        self,
        *,
        backup_id: uuid.UUID,
        user_id: uuid.UUID,
        name: str,
        object_key: str,
        size: int,
        sha256: str,
        provider: str,
        expires_at: datetime,
    ) -> None:
        self.session.execute(
            "INSERT INTO public.backups"
            " (id, user_id, name, object_key, size, sha256, provider, expires_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (backup_id, user_id, name, object_key, size, sha256, provider, expires_at),
        )

    def get(self, user_id: uuid.UUID, backup_id: uuid.UUID) -> Row | None:
        return self.session.execute(
            f"SELECT {_COLUMNS} FROM public.backups WHERE id = %s AND user_id = %s",
            (backup_id, user_id),
        ).fetchone()

    def pending(self, user_id: uuid.UUID) -> list[Row]:
        return self.session.execute(
            f"SELECT {_COLUMNS} FROM public.backups WHERE user_id = %s AND status = 'pending'"
            " ORDER BY created_at FOR UPDATE SKIP LOCKED",
            (user_id,),
        ).fetchall()

    def completed(self, user_id: uuid.UUID) -> list[Row]:
        return self.session.execute(
            f"SELECT {_COLUMNS} FROM public.backups WHERE user_id = %s AND status = 'completed'"
            " ORDER BY created_at DESC, id",
            (user_id,),
        ).fetchall()

    def mark_completed(self, backup_id: uuid.UUID) -> None:
        self.session.execute(
            "UPDATE public.backups SET status = 'completed', completed_at = now() WHERE id = %s",
            (backup_id,),
        )

    def delete(self, backup_id: uuid.UUID) -> None:
        self.session.execute("DELETE FROM public.backups WHERE id = %s", (backup_id,))
