"""Settings: the typed model (`settings`), the repository interface with its local file store
(`repository`) and the cloud-synced one (`cloud_repository`), the manager the app reads and
changes them through (`manager`), and the engine options made from them (`options`)."""

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
