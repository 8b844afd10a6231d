"""Shapes of GET/PUT /api/v1/config."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ConfigOut(BaseModel):
    """`version` is 0 until the first PUT; send it back as `version` (or If-Match)."""

    config: dict[str, Any]
    version: int
    updated_at: datetime | None = None


class ConfigIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config: dict[str, Any]
    version: int | None = Field(
        default=None,
        ge=0,
        description="The version this change is based on (0 = no cloud config yet). "
        "Omit it only when sending If-Match.",
    )
