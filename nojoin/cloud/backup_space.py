"""Space planning for backups and restores: refuse early, with nothing written, when a drive
cannot hold the work (Qt-free)."""

from __future__ import annotations

import shutil
from pathlib import Path

from nojoin.cloud.errors import BackupError

HEADROOM = 16 << 20
"""Bytes kept free beyond an estimate (journals, a VACUUM, file-system overhead)."""


def require_space(needs: dict[Path, int], action: str) -> None:
    """`needs` maps a folder to the bytes that will be written there; folders on one drive
    add up. Raises BackupError naming the drive that is short and by how much."""
    drives: dict[int, tuple[Path, int]] = {}
    for folder, size in needs.items():
        found = existing(folder)
        first, total = drives.get(found.stat().st_dev, (found, 0))
        drives[found.stat().st_dev] = (first, total + size)
    for folder, needed in drives.values():
        free = shutil.disk_usage(folder).free
        if free < needed:
            raise BackupError(
                f"Not enough free disk space to {action}: about {_mb(needed)} needed, "
                f"{_mb(free)} free on the drive of {folder}. Free some space and try again."
            )


def live_db_size(library_path: Path) -> int:
    """An upper bound of a snapshot's size: the library file and its write-ahead log."""
    wal = library_path.with_name(library_path.name + "-wal")
    return sum(p.stat().st_size for p in (library_path, wal) if p.exists())


def existing(folder: Path) -> Path:
    """`folder` or, if it is not there yet, its nearest existing parent."""
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    return folder


def same_drive(a: Path, b: Path) -> bool:
    return existing(a).stat().st_dev == existing(b).stat().st_dev


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:,.0f} MB"
