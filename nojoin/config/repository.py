"""Where settings are stored: a small `ConfigRepository` interface and the local JSON file store.

A cloud store (Cloud Mode) implements the same two methods, so `ConfigManager` and the UI do
not care where settings live.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from nojoin import paths
from nojoin.config.settings import ConfigError, Settings
from nojoin.fsutil import atomic_write_text

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"


@dataclass(frozen=True, slots=True)
class ConfigSnapshot:
    """Settings as stored, with when they were last written (None: never saved)."""

    settings: Settings
    updated_at: datetime | None = None


@runtime_checkable
class ConfigRepository(Protocol):
    """A place settings are loaded from and saved to. Implementations are Qt-free."""

    def load(self) -> ConfigSnapshot:
        """The stored settings, or defaults when nothing is stored yet."""
        ...

    def save(self, settings: Settings) -> ConfigSnapshot:
        """Store `settings` (already validated) and return what was stored."""
        ...


class LocalConfigRepository:
    """Settings in a JSON file (default: `config.json` in the config dir), written atomically.

    File layout: ``{"format": 1, "updated_at": ISO-8601, "settings": {...}}``. A damaged file
    is moved aside (never deleted) and defaults are used, so the app still starts.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else paths.config_dir() / CONFIG_FILE

    def load(self) -> ConfigSnapshot:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ConfigSnapshot(Settings())
        except OSError as exc:
            raise ConfigError(
                f"Cannot read the settings file {self.path}: {exc.strerror or exc}. "
                "Check its permissions."
            ) from exc
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            aside = self._move_aside()
            log.warning("settings file %s is damaged (%s); moved to %s", self.path, exc, aside)
            return ConfigSnapshot(Settings())
        fmt = data.get("format", 0)
        if isinstance(fmt, int) and fmt > FORMAT_VERSION:
            log.warning(
                "settings file %s has format %s (newer than %d); reading known fields only",
                self.path,
                fmt,
                FORMAT_VERSION,
            )
        # Format 0 (hand-written): the settings are the top-level object.
        body: Any = data.get("settings", data) if "format" in data else data
        if not isinstance(body, dict):
            body = {}
        return ConfigSnapshot(Settings.from_dict(body), _parse_time(data.get("updated_at")))

    def save(self, settings: Settings) -> ConfigSnapshot:
        settings.validate()
        now = datetime.now(UTC).replace(microsecond=0)
        payload = {
            "format": FORMAT_VERSION,
            "updated_at": now.isoformat(),
            "settings": settings.to_dict(),
        }
        text = json.dumps(payload, indent=2, sort_keys=True) + "\n"
        try:
            atomic_write_text(self.path, text)
        except OSError as exc:
            raise ConfigError(
                f"Cannot save settings to {self.path}: {exc.strerror or exc}. "
                "Check the folder's permissions and free disk space; your previous settings "
                "are unchanged."
            ) from exc
        return ConfigSnapshot(settings, now)

    def _move_aside(self) -> Path | None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        try:
            os.replace(self.path, aside)
        except OSError:
            return None
        return aside


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
