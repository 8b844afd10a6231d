"""Config sync rules: optimistic concurrency (409 on a stale version) and a size cap."""

from __future__ import annotations

import json
import uuid
from typing import Any

from backend.config.repository import ProfileRepository
from backend.config.schemas import ConfigOut
from backend.db import Connection
from backend.errors import ConflictError, PayloadTooLargeError, ValidationFailedError


class ConfigService:
    """One per Runtime (`runtime.config`, `ConfigServiceDep`)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    def get(self, conn: Connection, user_id: uuid.UUID) -> ConfigOut:
        row = ProfileRepository.from_session(conn).get(user_id)
        if row is None:
            return ConfigOut(config={}, version=0, updated_at=None)
        return ConfigOut(**row)

    def put(
        self, conn: Connection, user_id: uuid.UUID, config: dict[str, Any], expected: int
    ) -> ConfigOut:
        repo = ProfileRepository.from_session(conn)
        size = len(json.dumps(config, separators=(",", ":"), ensure_ascii=False).encode())
        if size > self.max_bytes:
            raise PayloadTooLargeError(
                f"The config is {size} bytes; the limit is {self.max_bytes}.",
                code="config_too_large",
            )
        if _contains_nul(config):
            raise ValidationFailedError("The config must not contain NUL characters.")
        row = (
            repo.insert(user_id, config)
            if expected == 0
            else repo.update_if_version(user_id, config, expected)
        )
        if row is None:
            current = repo.get(user_id)
            version = current["version"] if current else 0
            raise ConflictError(
                f"The cloud config changed (now version {version}, you sent {expected}). "
                "Fetch it, merge, and try again.",
                code="version_conflict",
                extra={"version": version},
            )
        return ConfigOut(**row)


def _contains_nul(value: Any) -> bool:
    # PostgreSQL jsonb cannot store \u0000: refuse it as bad input instead of failing with 500.
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in k or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(v) for v in value)
    return False
