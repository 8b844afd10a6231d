"""Where Nojoin keeps its data and config; NOJOIN_DATA_DIR / NOJOIN_CONFIG_DIR override."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from nojoin.errors import NojoinError

APP_NAME = "Nojoin"


def data_dir() -> Path:
    """Library, audio, logs. Created on first use."""
    env = os.environ.get("NOJOIN_DATA_DIR")
    path = Path(env).expanduser() if env else Path(platformdirs.user_data_dir(APP_NAME, False))
    return _ensure(path)


def config_dir() -> Path:
    env = os.environ.get("NOJOIN_CONFIG_DIR")
    path = Path(env).expanduser() if env else Path(platformdirs.user_config_dir(APP_NAME, False))
    return _ensure(path)


def cache_dir() -> Path:
    """Models joined from split packages, downloads."""
    env = os.environ.get("NOJOIN_CACHE_DIR")
    path = Path(env).expanduser() if env else Path(platformdirs.user_cache_dir(APP_NAME, False))
    return _ensure(path)


def library_path() -> Path:
    return data_dir() / "library.sqlite3"


def audio_dir() -> Path:
    return _ensure(data_dir() / "audio")


def logs_dir() -> Path:
    return _ensure(data_dir() / "logs")


def _ensure(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NojoinError(
            f"Cannot create the folder {path}: {exc.strerror or exc}. "
            "Check its permissions or set NOJOIN_DATA_DIR / NOJOIN_CONFIG_DIR to a writable folder."
        ) from exc
    if not os.access(path, os.W_OK):
        raise NojoinError(
            f"The folder {path} is not writable. "
            "Fix its permissions or set NOJOIN_DATA_DIR / NOJOIN_CONFIG_DIR to a writable folder."
        )
    return path
