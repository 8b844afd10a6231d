"""Settings: the typed model, the repository interface with its local file store, the manager."""

from __future__ import annotations

from nojoin.config.manager import ConfigManager
from nojoin.config.repository import (
    ConfigRepository,
    ConfigSnapshot,
    LocalConfigRepository,
)
from nojoin.config.settings import ConfigError, Settings, Theme

__all__ = [
    "ConfigError",
    "ConfigManager",
    "ConfigRepository",
    "ConfigSnapshot",
    "LocalConfigRepository",
    "Settings",
    "Theme",
]
