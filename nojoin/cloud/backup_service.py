"""Cloud backups of the meeting library (and optionally its audio) through signed URLs.

Backing up: a consistent snapshot taken with SQLite's online backup API while the app keeps
running, packed with a manifest (and audio files, if asked) into a `.tar.gz`, checksummed
(SHA-256), then uploaded with plain HTTP to the URL the backend signed (PUT of the bytes, or
a POST form with the given fields, per the backups API contract), with progress and cancel.

Restoring: download with progress while hashing, refuse on a checksum mismatch, unpack safely,
check the manifest's database checksum and `PRAGMA integrity_check`, upgrade the schema on the
copy, keep the current library as a rollback copy, then copy the backup into the live library
in one SQLite transaction (the running app's connection sees the restored meetings at once;
a failure rolls back and leaves the library as it was).

Qt-free and blocking: run it on a worker thread.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import platform
import re
import shutil
import socket
import sqlite3
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

import httpx

from nojoin import __version__ as nojoin_version
from nojoin import paths, sidecars
from nojoin.cloud.api_client import ApiClient, BackupInfo
from nojoin.cloud.errors import BackupError, OfflineError
from nojoin.errors import CancelledError, LibraryError

log = logging.getLogger(__name__)
# httpx logs every request line at INFO, and ours carry signed (secret, short-lived) URLs.
logging.getLogger("httpx").setLevel(max(logging.getLogger("httpx").level, logging.WARNING))

FORMAT = 1
MANIFEST = "manifest.json"
DB_MEMBER = "library.sqlite3"
AUDIO_PREFIX = "audio/"
CHUNK = 256 * 1024
LOCK_TIMEOUT = 30.0
"""Seconds the restore waits for another connection's write lock on the live library."""
NAME_RE = re.compile(
    r"^nojoin-backup_(?P<device>[A-Za-z0-9.-]{1,60})_(?P<stamp>\d{8}T\d{6}Z)(?P<audio>-audio)?"
    r"\.tar\.gz$"
)

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): stage is 'snapshot', 'pack', 'upload', 'download', 'verify',
'restore'; `total` 0 = unknown."""


@dataclass(frozen=True, slots=True)
class BackupEntry:
    """A backup as listed for the user."""

    backup_id: str
    name: str
    size: int
    sha256: str
    created_at: datetime | None
    device: str
    includes_audio: bool


@dataclass(frozen=True, slots=True)
class Archive:
    path: Path
    name: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class RestoreReport:
    meetings: int
    rollback_path: Path
    audio_files: int


def device_name() -> str:
    raw = socket.gethostname() or platform.node() or "computer"
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", raw.split(".")[0]).strip("-.")
    return (slug or "computer")[:60]


def backup_name(device: str, when: datetime, include_audio: bool) -> str:
    stamp = when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"nojoin-backup_{device}_{stamp}{'-audio' if include_audio else ''}.tar.gz"


def describe(info: BackupInfo) -> BackupEntry:
    match = NAME_RE.match(info.name)
    return BackupEntry(
        backup_id=info.backup_id,
        name=info.name,
        size=info.size,
        sha256=info.sha256,
        created_at=info.created_at,
        device=match.group("device") if match else "",
        includes_audio=bool(match and match.group("audio")),
    )


class _Cancel:
    def __init__(self, event: threading.Event | None) -> None:
        self.event = event

    def check(self) -> None:
        if self.event is not None and self.event.is_set():
            raise CancelledError("The backup operation was cancelled; nothing was changed.")


class _ProgressReader(io.RawIOBase):
    """A file wrapper that reports how much has been read (for POST form uploads)."""

    def __init__(self, fh: IO[bytes], total: int, progress: Progress, cancel: _Cancel) -> None:
        self._fh = fh
        self._total = total
        self._done = 0
        self._progress = progress
        self._cancel = cancel

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self._cancel.check()
        data = self._fh.read(size)
        self._done += len(data)
        self._progress("upload", self._done, self._total)
        return data


class BackupService:
    """Back up, list and restore the library at `library_path` via the backend's signed URLs."""

    def __init__(
        self,
        api: ApiClient,
        library_path: Path | None = None,
        *,
        audio_dir: Path | None = None,
        device: str | None = None,
        http: httpx.Client | None = None,
        work_dir: Path | None = None,
    ) -> None:
        self.api = api
        self.library_path = library_path or paths.library_path()
        self._audio_dir = audio_dir
        self.device = device or device_name()
        self._http = http or httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0))
        self._work_dir = work_dir

    @property
    def audio_dir(self) -> Path:
        return self._audio_dir or paths.audio_dir()

    def _require_space(self, needed: int, action: str) -> None:
        """Refuse early (nothing written) when the library's disk cannot hold the work."""
        folder = self.library_path.parent
        folder.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(folder).free
        if free < needed:
            raise BackupError(
                f"Not enough free disk space to {action}: about {_mb(needed)} needed, "
                f"{_mb(free)} free on the drive of {folder}. Free some space and try again."
            )

    def _tmpdir(self) -> tempfile.TemporaryDirectory[str]:
        base = self._work_dir or self.library_path.parent
        base.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(prefix=".nojoin-backup-", dir=base)

    # ------------------------------------------------------------------ back up

    def snapshot(self, dest: Path, progress: Progress | None = None) -> None:
        """A consistent copy of the live library (other connections may keep writing)."""
        if not self.library_path.exists():
            raise BackupError(
                "There is no meeting library to back up yet. Record or import a meeting first."
            )
        report = progress or _no_progress
        try:
            src = sqlite3.connect(f"file:{self.library_path}?mode=ro", uri=True, timeout=10)
            dst = sqlite3.connect(dest)
            try:
                src.backup(
                    dst,
                    pages=1024,
                    progress=lambda _status, remaining, total: report(
                        "snapshot", total - remaining, total
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

    def create_archive(
        self,
        dest_dir: Path,
        *,
        include_audio: bool = False,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        when: datetime | None = None,
    ) -> Archive:
        report = progress or _no_progress
        stop = _Cancel(cancel)
        when = when or datetime.now(UTC)
        name = backup_name(self.device, when, include_audio)
        snap = dest_dir / DB_MEMBER
        self.snapshot(snap, report)
        stop.check()
        audio_files = self._audio_files() if include_audio else []
        manifest = {
            "format": FORMAT,
            "app_version": nojoin_version,
            "created_at": when.astimezone(UTC).isoformat(timespec="seconds"),
            "device": self.device,
            "database": {"name": DB_MEMBER, "sha256": _sha256_file(snap)},
            "audio_dir": str(self.audio_dir),
            "audio": [str(p.relative_to(self.audio_dir).as_posix()) for p in audio_files],
        }
        archive = dest_dir / name
        total = snap.stat().st_size + sum(p.stat().st_size for p in audio_files)
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
                report("pack", done, total)
                for path in audio_files:
                    stop.check()
                    rel = path.relative_to(self.audio_dir).as_posix()
                    tar.add(path, AUDIO_PREFIX + rel, recursive=False)
                    done += path.stat().st_size
                    report("pack", done, total)
        except OSError as exc:
            raise BackupError(
                f"Cannot write the backup file ({exc.strerror or exc}). Free some disk space "
                "and try again."
            ) from exc
        return Archive(archive, name, archive.stat().st_size, _sha256_file(archive))

    def back_up(
        self,
        *,
        include_audio: bool = False,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> BackupEntry:
        """Snapshot, pack, checksum and upload. Returns the new backup as listed."""
        report = progress or _no_progress
        stop = _Cancel(cancel)
        if self.library_path.exists():
            audio = sum(p.stat().st_size for p in self._audio_files()) if include_audio else 0
            # snapshot + compressed archive of it and the audio, with some headroom
            self._require_space(
                2 * self.library_path.stat().st_size + audio + (16 << 20), "back up"
            )
        with self._tmpdir() as tmp:
            archive = self.create_archive(
                Path(tmp), include_audio=include_audio, progress=report, cancel=cancel
            )
            stop.check()
            target = self.api.generate_upload_url(archive.name, archive.size, archive.sha256)
            self._upload(
                archive, target.method, target.url, target.fields, target.headers, report, stop
            )
        log.info("backup %s uploaded (%d bytes)", archive.name, archive.size)
        return BackupEntry(
            backup_id=target.backup_id,
            name=archive.name,
            size=archive.size,
            sha256=archive.sha256,
            created_at=datetime.now(UTC),
            device=self.device,
            includes_audio=include_audio,
        )

    def _upload(
        self,
        archive: Archive,
        method: str,
        url: str,
        fields: dict[str, str],
        headers: dict[str, str],
        report: Progress,
        stop: _Cancel,
    ) -> None:
        try:
            if method == "PUT":

                def chunks() -> Iterator[bytes]:
                    done = 0
                    with archive.path.open("rb") as fh:
                        while chunk := fh.read(CHUNK):
                            stop.check()
                            done += len(chunk)
                            report("upload", done, archive.size)
                            yield chunk

                response = self._http.put(
                    url,
                    content=chunks(),
                    headers={
                        "Content-Type": "application/octet-stream",
                        **headers,
                        "Content-Length": str(archive.size),
                    },
                )
            else:
                with archive.path.open("rb") as fh:
                    reader = cast(IO[bytes], _ProgressReader(fh, archive.size, report, stop))
                    response = self._http.post(
                        url,
                        data=fields,
                        files={"file": (archive.name, reader, "application/gzip")},
                        headers=headers,
                    )
        except httpx.TransportError as exc:
            raise OfflineError(
                "The upload was interrupted: Nojoin Cloud cannot be reached. Check your "
                "connection and back up again."
            ) from exc
        if not response.is_success:
            raise BackupError(
                f"Nojoin Cloud refused the upload (HTTP {response.status_code}"
                f"{': ' + _detail(response) if _detail(response) else ''}). Try again; if it "
                "keeps failing, back up without audio."
            )

    def _audio_files(self) -> list[Path]:
        root = self.audio_dir
        if not root.is_dir():
            return []
        return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))

    # ------------------------------------------------------------------ list

    def list_backups(self) -> list[BackupEntry]:
        return [describe(b) for b in self.api.list_backups()]

    # ------------------------------------------------------------------ restore

    def download(
        self,
        entry: BackupEntry,
        dest: Path,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        """Download a backup to `dest`; raises BackupError if its SHA-256 is not the listed one."""
        report = progress or _no_progress
        stop = _Cancel(cancel)
        url = self.api.generate_download_url(entry.backup_id)
        digest = hashlib.sha256()
        done = 0
        try:
            with self._http.stream("GET", url) as response:
                if not response.is_success:
                    response.read()
                    raise BackupError(
                        f"Cannot download the backup (HTTP {response.status_code}"
                        f"{': ' + _detail(response) if _detail(response) else ''}). Try again."
                    )
                total = int(response.headers.get("Content-Length") or entry.size)
                with dest.open("wb") as out:
                    for chunk in response.iter_bytes(CHUNK):
                        stop.check()
                        digest.update(chunk)
                        out.write(chunk)
                        done += len(chunk)
                        report("download", done, total)
        except httpx.TransportError as exc:
            raise OfflineError(
                "The download was interrupted: Nojoin Cloud cannot be reached. Your library "
                "was not changed."
            ) from exc
        if digest.hexdigest() != entry.sha256.lower():
            raise BackupError(
                "The downloaded backup is damaged (its checksum does not match), so it was not "
                "restored. Your library was not changed. Try again or pick another backup."
            )

    def restore(
        self,
        entry: BackupEntry,
        *,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> RestoreReport:
        """Download, verify and restore `entry` into the library. Any failure before the final
        copy leaves the library untouched; the copy itself is one SQLite transaction."""
        report = progress or _no_progress
        stop = _Cancel(cancel)
        current = self.library_path.stat().st_size if self.library_path.exists() else 0
        # download + unpacked copy (databases compress ~3-5x) + rollback copy of the library
        self._require_space(entry.size * 6 + current + (16 << 20), "restore this backup")
        with self._tmpdir() as tmp_name:
            tmp = Path(tmp_name)
            archive = tmp / "backup.tar.gz"
            self.download(entry, archive, report, cancel)
            stop.check()
            return self.restore_archive(archive, progress=report, cancel=cancel, work=tmp)

    def restore_archive(
        self,
        archive: Path,
        *,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        work: Path | None = None,
    ) -> RestoreReport:
        report = progress or _no_progress
        stop = _Cancel(cancel)
        with self._tmpdir() as own_tmp:
            base = work or Path(own_tmp)
            unpacked = base / "unpacked"
            unpacked.mkdir()
            manifest = _unpack(archive, unpacked)
            db = unpacked / DB_MEMBER
            report("verify", 0, 1)
            if _sha256_file(db) != str(manifest.get("database", {}).get("sha256", "")):
                raise BackupError(
                    "The backup's database does not match its manifest (damaged backup); it was "
                    "not restored. Your library was not changed."
                )
            _check_integrity(db)
            stop.check()
            audio_count = self._prepare(db, unpacked, manifest)
            report("verify", 1, 1)
            stop.check()
            rollback = self._rollback_copy()
            report("restore", 0, 1)
            meetings = self._copy_into_live(db, rollback, stop)
            report("restore", 1, 1)
        return RestoreReport(meetings=meetings, rollback_path=rollback, audio_files=audio_count)

    def _prepare(self, db: Path, unpacked: Path, manifest: dict[str, Any]) -> int:
        """Upgrade the copy's schema, put audio files in place and point meetings at them."""
        from nojoin.library import Library  # the cloud layer orchestrates the library

        try:
            lib = Library(db)
        except LibraryError as exc:
            raise BackupError(f"This backup cannot be restored: {exc}") from exc
        copied = 0
        try:
            old_root = str(manifest.get("audio_dir") or "")
            audio_src = unpacked / "audio"
            if audio_src.is_dir():
                for path in sorted(p for p in audio_src.rglob("*") if p.is_file()):
                    target = self.audio_dir / path.relative_to(audio_src)
                    if target.exists() and target.stat().st_size == path.stat().st_size:
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    tmp_target = sidecars.restoring_path(target)
                    shutil.copyfile(path, tmp_target)
                    os.replace(tmp_target, target)
                    copied += 1
            if old_root and Path(old_root) != self.audio_dir:
                for meeting in lib.list_meetings():
                    if meeting.audio_path and meeting.audio_path.startswith(old_root.rstrip("/\\")):
                        rel = Path(meeting.audio_path).relative_to(old_root)
                        local = self.audio_dir / rel
                        if local.exists():
                            lib.update_meeting(meeting.id, audio_path=local)
        finally:
            lib.close()
        return copied

    def _rollback_copy(self) -> Path:
        folder = self.library_path.parent / "restore-rollback"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        dest = folder / f"library-before-restore-{stamp}.sqlite3"
        if self.library_path.exists():
            self.snapshot(dest)
        return dest

    def _copy_into_live(self, db: Path, rollback: Path, stop: _Cancel) -> int:
        deadline = time.monotonic() + LOCK_TIMEOUT

        def waiting(status: int, _remaining: int, _total: int) -> None:
            # Python's backup() retries a busy target forever; give up after LOCK_TIMEOUT
            # (and on Cancel) instead. Raising here aborts the copy with the target unchanged.
            if status in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                stop.check()
                if time.monotonic() > deadline:
                    raise sqlite3.OperationalError("the library is locked by another program")

        try:
            src = sqlite3.connect(db)
            src.execute("PRAGMA journal_mode = DELETE")
            dst = sqlite3.connect(self.library_path, timeout=LOCK_TIMEOUT)
            try:
                page = int(dst.execute("PRAGMA page_size").fetchone()[0])
                if int(src.execute("PRAGMA page_size").fetchone()[0]) != page:
                    # A WAL database only accepts a backup with its own page size.
                    src.execute(f"PRAGMA page_size = {page}")
                    src.execute("VACUUM")
                # Short waits inside SQLite so `waiting` can check Cancel and the deadline.
                dst.execute("PRAGMA busy_timeout = 200")
                # pages=-1: everything in one step = one write transaction on the target.
                src.backup(dst, pages=-1, progress=waiting)
                check = dst.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":  # pragma: no cover - the copy was verified before
                    raise BackupError(f"The restored library failed its check ({check}).")
                meetings = int(dst.execute("SELECT count(*) FROM meetings").fetchone()[0])
            finally:
                dst.close()
                src.close()
        except sqlite3.Error as exc:
            raise BackupError(
                f"Restoring failed ({exc}); your library was not changed. Close other programs "
                f"using it and try again. A copy of it is at {rollback}."
            ) from exc
        return meetings


def _unpack(archive: Path, dest: Path) -> dict[str, Any]:
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


def _check_integrity(db: Path) -> None:
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


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _detail(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return ""
    detail = data.get("detail") if isinstance(data, dict) else None
    return detail if isinstance(detail, str) else ""


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:,.0f} MB"


def _no_progress(stage: str, done: int, total: int) -> None:
    return None
