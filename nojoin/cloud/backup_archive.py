"""The backup file: a consistent SQLite snapshot and a manifest (and the audio, if asked)
packed as `.tar.gz`, its name and checksum, and the safe unpacking and checks of one being
restored; plus the progress and cancel helpers the backup modules share (Qt-free).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import platform
import re
import shutil
import socket
import sqlite3
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nojoin import __version__ as nojoin_version
from nojoin.cloud.errors import BackupError
from nojoin.errors import CancelledError
from nojoin.processing.contract import CancelToken, Progress, ProgressCallback

FORMAT = 1
MANIFEST = "manifest.json"
DB_MEMBER = "library.sqlite3"
AUDIO_PREFIX = "audio/"
CHUNK = 256 * 1024
NAME_RE = re.compile(
    r"^nojoin-backup_(?P<device>[A-Za-z0-9.-]{1,60})_(?P<stamp>\d{8}T\d{6}Z)(?P<audio>-audio)?"
    r"\.tar\.gz$"
)
CANCELLED = "The backup operation was cancelled; nothing was changed."


@dataclass(frozen=True, slots=True)
class Archive:
    path: Path
    name: str
    size: int
    sha256: str


# --- progress and cancel (the engine contract's pair, as everywhere on the desktop) ---------


def report(progress: ProgressCallback | None, stage: str, done: int, total: int) -> None:
    """Report `done` of `total` for a stage ('snapshot', 'pack', 'upload', 'download',
    'verify', 'restore') as a `Progress`; for transfers the message says how much of what."""
    if progress is None:
        return
    fraction = min(1.0, done / total) if total > 0 else 0.0
    message = (
        f"{human_size(done)} of {human_size(total)}"
        if stage in ("upload", "download") and total
        else ""
    )
    progress(Progress(stage, fraction, None, message))


def check_cancel(cancel: CancelToken | None) -> None:
    if cancel is not None and cancel.cancelled:
        raise CancelledError(CANCELLED)


def human_size(size: int) -> str:
    """1.2 MB, 340 KB, 12 bytes: sizes as the Backups window shows them."""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            if unit == "bytes":
                return f"{int(value)} {unit}"
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
        value /= 1024
    return f"{size} bytes"  # pragma: no cover


# --- names ------------------------------------------------------------------------------------


def device_name() -> str:
    raw = socket.gethostname() or platform.node() or "computer"
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", raw.split(".")[0]).strip("-.")
    return (slug or "computer")[:60]


def backup_name(device: str, when: datetime, include_audio: bool) -> str:
    stamp = when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"nojoin-backup_{device}_{stamp}{'-audio' if include_audio else ''}.tar.gz"


# --- making one -------------------------------------------------------------------------------


def snapshot(library_path: Path, dest: Path, progress: ProgressCallback | None = None) -> None:
    """A consistent copy of the live library (other connections may keep writing)."""
    if not library_path.exists():
        raise BackupError(
            "There is no meeting library to back up yet. Record or import a meeting first."
        )
    try:
        src = sqlite3.connect(f"file:{library_path}?mode=ro", uri=True, timeout=10)
        dst = sqlite3.connect(dest)
        try:
            src.backup(
                dst,
                pages=1024,
                progress=lambda _status, remaining, total: report(
                    progress, "snapshot", total - remaining, total
                ),
            )
            dst.execute("PRAGMA journal_mode = DELETE")
        finally:
            dst.close()
            src.close()
    except sqlite3.Error as exc:
        raise BackupError(
            f"Cannot read the meeting library for a backup ({exc}). Close other programs "
            "using it and try again."
        ) from exc


def audio_files(audio_dir: Path) -> list[Path]:
    """The audio folder's files (hidden working files left out)."""
    if not audio_dir.is_dir():
        return []
    return sorted(p for p in audio_dir.rglob("*") if p.is_file() and not p.name.startswith("."))


def create_archive(
    library_path: Path,
    audio_dir: Path,
    device: str,
    dest_dir: Path,
    *,
    include_audio: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    when: datetime | None = None,
) -> Archive:
    """Snapshot the library and pack it with its manifest (and the audio) in `dest_dir`."""
    when = when or datetime.now(UTC)
    name = backup_name(device, when, include_audio)
    snap = dest_dir / DB_MEMBER
    snapshot(library_path, snap, progress)
    check_cancel(cancel)
    files = audio_files(audio_dir) if include_audio else []
    manifest = {
        "format": FORMAT,
        "app_version": nojoin_version,
        "created_at": when.astimezone(UTC).isoformat(timespec="seconds"),
        "device": device,
        "database": {"name": DB_MEMBER, "sha256": sha256_file(snap)},
        "audio_dir": str(audio_dir),
        "audio": [str(p.relative_to(audio_dir).as_posix()) for p in files],
    }
    archive = dest_dir / name
    total = snap.stat().st_size + sum(p.stat().st_size for p in files)
    done = 0
    try:
        # Audio is already compressed; level 6 is a fair trade for the database.
        with tarfile.open(archive, "w:gz", compresslevel=6) as tar:
            data = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(data)
            info.mtime = int(when.timestamp())
            tar.addfile(info, io.BytesIO(data))
            tar.add(snap, DB_MEMBER, recursive=False)
            done += snap.stat().st_size
            report(progress, "pack", done, total)
            for path in files:
                check_cancel(cancel)
                rel = path.relative_to(audio_dir).as_posix()
                tar.add(path, AUDIO_PREFIX + rel, recursive=False)
                done += path.stat().st_size
                report(progress, "pack", done, total)
    except OSError as exc:
        raise BackupError(
            f"Cannot write the backup file ({exc.strerror or exc}). Free some disk space "
            "and try again."
        ) from exc
    return Archive(archive, name, archive.stat().st_size, sha256_file(archive))


# --- reading one back -------------------------------------------------------------------------


def unpack(archive: Path, dest: Path) -> dict[str, Any]:
    """Extract only the expected members (no links, no absolute paths, nothing outside)."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            names = tar.getnames()
            if MANIFEST not in names or DB_MEMBER not in names:
                raise BackupError(
                    "This file is not a Nojoin backup (manifest or database missing)."
                )
            for member in tar.getmembers():
                name = member.name
                if not member.isfile():
                    continue
                if name not in (MANIFEST, DB_MEMBER) and not name.startswith(AUDIO_PREFIX):
                    continue
                target = (dest / name).resolve()
                if not target.is_relative_to(dest.resolve()) or ".." in Path(name).parts:
                    raise BackupError("The backup contains an unsafe file path; it was refused.")
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                if source is None:
                    continue
                with source, target.open("wb") as out:
                    shutil.copyfileobj(source, out, CHUNK)
            manifest = json.loads((dest / MANIFEST).read_text(encoding="utf-8"))
    except (tarfile.TarError, gzip.BadGzipFile, EOFError, OSError, ValueError) as exc:
        raise BackupError(
            f"The backup file is damaged ({exc}); it was not restored. Your library was not "
            "changed."
        ) from exc
    if not isinstance(manifest, dict) or int(manifest.get("format", 0)) > FORMAT:
        raise BackupError(
            "This backup was made by a newer version of Nojoin. Update Nojoin to restore it."
        )
    return manifest


def verify(db: Path, manifest: dict[str, Any]) -> None:
    """The unpacked database is the one the manifest names and passes `integrity_check`."""
    if sha256_file(db) != str(manifest.get("database", {}).get("sha256", "")):
        raise BackupError(
            "The backup's database does not match its manifest (damaged backup); it was "
            "not restored. Your library was not changed."
        )
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(
            f"The backup's database is damaged ({exc}); it was not restored. Your library was "
            "not changed."
        ) from exc
    result = "; ".join(str(r[0]) for r in rows)
    if result != "ok":
        raise BackupError(
            f"The backup's database failed its integrity check ({result[:200]}); it was not "
            "restored. Your library was not changed."
        )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
