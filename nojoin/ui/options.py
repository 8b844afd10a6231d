"""Kept for the widgets' imports: the conversion lives in nojoin.config.options (Qt-free)."""

from __future__ import annotations

from nojoin.config.options import options_from_settings

__all__ = ["options_from_settings"]
