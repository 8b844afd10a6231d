"""ConfigManager: the app's current settings over a `ConfigRepository`, with change listeners."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from nojoin.config.repository import ConfigRepository, LocalConfigRepository
from nojoin.config.settings import Settings

log = logging.getLogger(__name__)

Listener = Callable[[Settings, Settings], None]
"""Called as listener(old, new) after settings changed and were saved."""


class ConfigManager:
    """Holds the current `Settings`; every change is validated, saved, then announced.

    Qt-free so the CLI and workers can use it; the UI subscribes with `add_listener` to apply
    changes live (theme, devices, ...).
    """

    def __init__(self, repository: ConfigRepository | None = None) -> None:
        self.repository: ConfigRepository = repository or LocalConfigRepository()
        self._settings = self.repository.load().settings
        self._listeners: list[Listener] = []

    @property
    def settings(self) -> Settings:
        return self._settings

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def update(self, **changes: Any) -> Settings:
        """Validate and store `changes`; raises ConfigError (nothing saved) on a bad value."""
        return self.apply(self._settings.replace(**changes))

    def apply(self, settings: Settings) -> Settings:
        """Store a complete `settings` object and notify listeners if anything changed."""
        settings.validate()
        if settings == self._settings:
            return settings
        stored = self.repository.save(settings).settings
        old, self._settings = self._settings, stored
        for listener in list(self._listeners):
            try:
                listener(old, stored)
            except Exception:  # one broken listener must not stop the others
                log.exception("settings listener %r failed", listener)
        return stored

    def reload(self) -> Settings:
        """Re-read the repository (e.g. after another device changed the settings)."""
        fresh = self.repository.load().settings
        if fresh != self._settings:
            old, self._settings = self._settings, fresh
            for listener in list(self._listeners):
                listener(old, fresh)
        return fresh
