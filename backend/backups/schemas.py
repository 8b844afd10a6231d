"""Shapes of the backups API (SPEC contract)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_BAD_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


class UploadUrlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="Label shown to the user")
    size: int = Field(gt=0, description="Exact size of the file in bytes")
    sha256: str = Field(pattern="^[0-9a-fA-F]{64}$")

    @field_validator("name")
    @classmethod
    def _name_is_a_label(cls, value: str) -> str:
        value = value.strip()
        # The name is only a label (keys are built by the server), but path-like names are
        # refused so that nothing downstream is ever tempted to use one as a path.
        if not value or _BAD_NAME.search(value) or ".." in value:
            raise ValueError("must be a plain label without '/', '\\', '..' or control characters")
        return value

    @field_validator("sha256")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class UploadUrlResponse(BaseModel):
    backup_id: uuid.UUID
    method: Literal["PUT", "POST"]
    url: str
    fields: dict[str, str]
    headers: dict[str, str]
    expires_at: datetime


class BackupOut(BaseModel):
    backup_id: uuid.UUID
    name: str
    size: int
    sha256: str
    created_at: datetime


class DownloadUrlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backup_id: uuid.UUID


class DownloadUrlResponse(BaseModel):
    url: str
    expires_at: datetime
