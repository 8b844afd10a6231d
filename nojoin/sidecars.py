"""The working files Nojoin writes next to a meeting's audio file, named in one place.

The recorder, recovery, importer and backup restore create them; the library deletes them, and
nothing else, together with a meeting's audio. Imports nothing but `paths`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from nojoin import paths

log = logging.getLogger(__name__)


def partial_path(final: Path) -> Path:
    """Where a recording that will end up at `final` is written while it runs."""
    return final.with_name(f"{final.stem}.partial.wav")


def encoding_path(target: Path) -> Path:
    """Where a finished recording is transcoded (FLAC, ...) before it is renamed to `target`."""
    return target.with_name(f"{target.stem}.encoding{target.suffix}")


def importing_path(dest: Path) -> Path:
    """Where an imported file is copied before it is renamed to `dest`."""
    return dest.with_name(f".{dest.name}.importing")


def restoring_path(target: Path) -> Path:
    """Where a backup restore copies an audio file before it is renamed to `target`."""
    return target.with_name(f".{target.name}.restoring")


def sidecars(audio: Path) -> list[Path]:
    """Every working file the app may have left for `audio` (they may not exist)."""
    return [partial_path(audio), encoding_path(audio), importing_path(audio), restoring_path(audio)]


def journal_dir() -> Path:
    """The recording journals' folder (nojoin.audio.recovery); not created here."""
    return paths.data_dir() / "recordings"


def path_key(path: Path) -> str:
    """A comparable form of `path`: absolute, symlinks resolved, case folded where the OS does."""
    return os.path.normcase(str(path.resolve()))


def journaled_files() -> set[str]:
    """`path_key`s of the files a recording journal names: a recording running now, or one
    waiting to be recovered after a crash. Such a file is never someone else's leftover."""
    found: set[str] = set()
    try:
        entries = [*journal_dir().glob("*.json"), *journal_dir().glob("*.tmp")]
    except OSError:
        return found
    for entry in entries:
        try:
            data = json.loads(entry.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.debug("skipping unreadable recording journal %s", entry)
            continue
        if not isinstance(data, dict):
            continue
        # Field names of nojoin.audio.recovery.JournalEntry.
        for field in ("partial_path", "final_path"):
            value = data.get(field)
            if isinstance(value, str) and value:
                found.add(path_key(Path(value)))
    return found
