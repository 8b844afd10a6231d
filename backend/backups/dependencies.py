"""FastAPI dependencies of the backups domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from backend.backups.service import BackupService
from backend.runtime import RuntimeDep


async def get_backup_service(runtime: RuntimeDep) -> BackupService:
    return runtime.backups


BackupServiceDep = Annotated[BackupService, Depends(get_backup_service)]
