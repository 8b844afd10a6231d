"""Cloud backups of the meeting library (and optionally its audio) through signed URLs.

Backing up: a consistent snapshot taken with SQLite's online backup API while the app keeps
running, packed with a manifest (and audio files, if asked) into a `.tar.gz`, checksummed
(SHA-256), then uploaded with plain HTTP to the URL the backend signed (PUT of the bytes, or
a POST form with the given fields, per the backups API contract), with progress and cancel.

Restoring: download with progress while hashing, refuse on a checksum mismatch, unpack safely,
check the manifest's database checksum and `PRAGMA integrity_check`, upgrade the schema on the
copy, stage its audio files beside their targets under hidden names, keep the current library
(and the audio files about to be overwritten) as a rollback copy, copy the backup into the live
library in one SQLite transaction (the running app's connection sees the restored meetings at
once), then rename the staged audio into place. All or nothing: a failure before that
transaction commits only removes what was staged; one after it puts library and audio back.

Qt-free and blocking: run it on a worker thread.
"""

from __future__ import annotations

import filecmp
import gzip
import hashlib
import io
import itertools
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
from nojoin.processing.contract import CancelToken, Progress, ProgressCallback

log = logging.getLogger(__name__)
# httpx logs every request line at INFO, and ours carry signed (secret, short-lived) URLs.
logging.getLogger("httpx").setLevel(max(logging.getLogger("httpx").level, logging.WARNING))

FORMAT = 1
MANIFEST = "manifest.json"
DB_MEMBER = "library.sqlite3"
AUDIO_PREFIX = "audio/"
CHUNK = 256 * 1024
ROLLBACK_DIR = "restore-rollback"
ROLLBACK_PREFIX = "library-before-restore-"
ROLLBACK_KEEP = 3
"""Rollback copies kept in `restore-rollback/`; older ones go after a successful restore."""
ROLLBACK_RE = re.compile(
    "^"
    + re.escape(ROLLBACK_PREFIX)
    + r"(?P<stamp>\d{8}T\d{6})(?P<micro>\d{6})?Z(?:-(?P<n>\d+))?"
    + r"(?:\.sqlite3)?$"  # earlier versions kept a bare .sqlite3 file
)
HEADROOM = 16 << 20
"""Bytes kept free beyond an estimate (journals, a VACUUM, file-system overhead)."""
LOCK_TIMEOUT = 30.0
"""Seconds the restore waits for another connection's write lock on the live library."""
NAME_RE = re.compile(
    r"^nojoin-backup_(?P<device>[A-Za-z0-9.-]{1,60})_(?P<stamp>\d{8}T\d{6}Z)(?P<audio>-audio)?"
    r"\.tar\.gz$"
)

Report = Callable[[str, int, int], None]
"""Internal: report(stage, done, total), turned into the caller's `Progress` by `_reporter`.
Stages: 'snapshot', 'pack', 'upload', 'download', 'verify', 'restore'; `total` 0 = unknown."""


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
    """Folder with the library (`library.sqlite3`) and the audio files the restore overwrote,
    as they were just before it."""
    audio_files: int


@dataclass(frozen=True, slots=True)
class _AudioFile:
    """An audio file of a backup on its way into the live audio folder."""

    source: Path  # unpacked from the backup
    target: Path  # where it belongs in the live audio folder
    replaces: bool  # a different file is there now (it goes into the rollback copy)

    @property
    def staged(self) -> Path:
        return sidecars.restoring_path(self.target)


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
    def __init__(self, token: CancelToken | None) -> None:
        self.token = token

    def check(self) -> None:
        if self.token is not None and self.token.cancelled:
            raise CancelledError("The backup operation was cancelled; nothing was changed.")


class _ProgressReader(io.RawIOBase):
    """A file wrapper that reports how much has been read (for POST form uploads)."""

    def __init__(self, fh: IO[bytes], total: int, progress: Report, cancel: _Cancel) -> None:
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

    def _require_space(self, needs: dict[Path, int], action: str) -> None:
        """Refuse early (nothing written) when a drive cannot hold the work: `needs` maps a
        folder to the bytes that will be written there; folders on one drive add up."""
        self.library_path.parent.mkdir(parents=True, exist_ok=True)
        drives: dict[int, tuple[Path, int]] = {}
        for folder, size in needs.items():
            existing = _existing(folder)
            first, total = drives.get(existing.stat().st_dev, (existing, 0))
            drives[existing.stat().st_dev] = (first, total + size)
        for folder, needed in drives.values():
            free = shutil.disk_usage(folder).free
            if free < needed:
                raise BackupError(
                    f"Not enough free disk space to {action}: about {_mb(needed)} needed, "
                    f"{_mb(free)} free on the drive of {folder}. Free some space and try again."
                )

    def _work_base(self) -> Path:
        return self._work_dir or self.library_path.parent

    def _live_db_size(self) -> int:
        """An upper bound of a snapshot's size: the library file and its write-ahead log."""
        wal = self.library_path.with_name(self.library_path.name + "-wal")
        return sum(p.stat().st_size for p in (self.library_path, wal) if p.exists())

    def _tmpdir(self) -> tempfile.TemporaryDirectory[str]:
        base = self._work_base()
        base.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(prefix=".nojoin-backup-", dir=base)

    # ------------------------------------------------------------------ back up

    def snapshot(self, dest: Path, progress: ProgressCallback | None = None) -> None:
        """A consistent copy of the live library (other connections may keep writing)."""
        if not self.library_path.exists():
            raise BackupError(
                "There is no meeting library to back up yet. Record or import a meeting first."
            )
        report = _reporter(progress)
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
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        when: datetime | None = None,
    ) -> Archive:
        report = _reporter(progress)
        stop = _Cancel(cancel)
        when = when or datetime.now(UTC)
        name = backup_name(self.device, when, include_audio)
        snap = dest_dir / DB_MEMBER
        self.snapshot(snap, progress)
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
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> BackupEntry:
        """Snapshot, pack, checksum and upload. Returns the new backup as listed."""
        report = _reporter(progress)
        stop = _Cancel(cancel)
        if self.library_path.exists():
            audio = sum(p.stat().st_size for p in self._audio_files()) if include_audio else 0
            # snapshot + compressed archive of it and the audio, with some headroom
            self._require_space(
                {self._work_base(): 2 * self._live_db_size() + audio + HEADROOM}, "back up"
            )
        with self._tmpdir() as tmp:
            archive = self.create_archive(
                Path(tmp), include_audio=include_audio, progress=progress, cancel=cancel
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
        report: Report,
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
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        """Download a backup to `dest`; raises BackupError if its SHA-256 is not the listed one."""
        report = _reporter(progress)
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
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> RestoreReport:
        """Download, verify and restore `entry` into the library (and its audio folder). A
        failed restore leaves library and audio files as they were."""
        stop = _Cancel(cancel)
        # Download + unpacked copy (databases compress ~3-5x) in the work folder, the rollback
        # copy of the library beside it, and audio staged in the audio folder when that is on
        # another drive (else staging is a rename). restore_archive checks again once the
        # backup is unpacked and it is known which audio files would be overwritten.
        needs = {
            self._work_base(): entry.size * 6 + HEADROOM,
            self.library_path.parent: self._live_db_size(),
        }
        if entry.includes_audio and not _same_drive(self.audio_dir, self._work_base()):
            needs[self.audio_dir] = entry.size
        self._require_space(needs, "restore this backup")
        with self._tmpdir() as tmp_name:
            tmp = Path(tmp_name)
            archive = tmp / "backup.tar.gz"
            self.download(entry, archive, progress, cancel)
            stop.check()
            return self.restore_archive(archive, progress=progress, cancel=cancel, work=tmp)

    def restore_archive(
        self,
        archive: Path,
        *,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        work: Path | None = None,
    ) -> RestoreReport:
        report = _reporter(progress)
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
            audio = self._plan_audio(unpacked)
            self._prepare(db, manifest, audio)
            report("verify", 1, 1)
            stop.check()
            self._require_restore_space(audio, unpacked)
            meetings, rollback = self._swap(db, audio, report, stop)
        self._prune_rollbacks(keep=rollback)
        return RestoreReport(meetings=meetings, rollback_path=rollback, audio_files=len(audio))

    def _plan_audio(self, unpacked: Path) -> list[_AudioFile]:
        """The backup's audio files that are not already in the live audio folder as they are."""
        src_root = unpacked / "audio"
        if not src_root.is_dir():
            return []
        plan: list[_AudioFile] = []
        for path in sorted(p for p in src_root.rglob("*") if p.is_file()):
            target = self.audio_dir / path.relative_to(src_root)
            if target.exists() and not target.is_file():
                raise BackupError(
                    f"Cannot restore the audio file {target}: something that is not a file is "
                    "in its place. Move it away and restore again. Your library was not changed."
                )
            if target.is_file() and filecmp.cmp(path, target, shallow=False):
                continue
            plan.append(_AudioFile(source=path, target=target, replaces=target.exists()))
        return plan

    def _prepare(self, db: Path, manifest: dict[str, Any], audio: list[_AudioFile]) -> None:
        """Upgrade the copy's schema and point its meetings at this computer's audio folder."""
        from nojoin.library import Library  # the cloud layer orchestrates the library

        try:
            lib = Library(db)
        except LibraryError as exc:
            raise BackupError(f"This backup cannot be restored: {exc}") from exc
        arriving = {f.target for f in audio}
        try:
            old_root = str(manifest.get("audio_dir") or "")
            if old_root and Path(old_root) != self.audio_dir:
                for meeting in lib.list_meetings():
                    if meeting.audio_path and meeting.audio_path.startswith(old_root.rstrip("/\\")):
                        rel = Path(meeting.audio_path).relative_to(old_root)
                        local = self.audio_dir / rel
                        if local in arriving or local.exists():
                            lib.update_meeting(meeting.id, audio_path=local)
        finally:
            lib.close()

    def _require_restore_space(self, audio: list[_AudioFile], unpacked: Path) -> None:
        """What is still to be written: the rollback copy (library + the audio files it would
        overwrite, counted although hard links usually make those free) and the staged audio
        (a rename when the audio folder shares the drive of the unpacked backup)."""
        replaced = sum(f.target.stat().st_size for f in audio if f.replaces)
        needs = {self.library_path.parent: self._live_db_size() + replaced + HEADROOM}
        if audio and not _same_drive(self.audio_dir, unpacked):
            needs[self.audio_dir] = sum(f.source.stat().st_size for f in audio)
        self._require_space(needs, "restore this backup")

    def _swap(
        self, db: Path, audio: list[_AudioFile], report: Report, stop: _Cancel
    ) -> tuple[int, Path]:
        """All or nothing: stage the audio beside its targets, keep the rollback copy, copy the
        database into the live library in one transaction, then rename the staged audio into
        place. Until that transaction commits, nothing the user has is changed (a failure just
        removes what was staged); a failure after it puts library and audio back from the
        rollback copy. Returns the restored meeting count and the rollback folder."""
        existed = self.library_path.exists()
        created: list[Path] = []
        rollback: Path | None = None
        placed: list[_AudioFile] = []
        committed = False
        try:
            self._stage_audio(audio, created, report, stop)
            stop.check()
            rollback = self._rollback_copy(audio)
            stop.check()
            try:
                self._copy_into_live(db, stop)
            except sqlite3.Error as exc:
                raise BackupError(
                    f"Restoring failed ({exc}); your library and audio files were not changed. "
                    "Close other programs using the library and try again."
                ) from exc
            committed = True
            meetings = self._check_live()
            for f in audio:
                os.replace(f.staged, f.target)
                placed.append(f)
        except BaseException as exc:
            if not committed:
                self._discard(audio, created, rollback, existed)
                raise
            assert rollback is not None
            try:
                self._put_back(rollback, placed, existed)
            except Exception as undo:
                log.exception("could not put the library back after a failed restore")
                self._discard(audio, created, None, existed)
                raise BackupError(
                    f"Restoring failed partway ({_reason(exc)}) and Nojoin could not put your "
                    f"library back by itself ({_reason(undo)}). The library and audio files as "
                    f"they were are kept in {rollback}: with Nojoin closed, copy "
                    f"{DB_MEMBER} from there over {self.library_path} and the files in its "
                    f"audio folder into {self.audio_dir}."
                ) from exc
            self._discard(audio, created, rollback, existed)
            if not isinstance(exc, Exception):
                raise
            raise BackupError(
                f"Restoring failed ({_reason(exc)}); your library and audio files were put back "
                "as they were. Try again."
            ) from exc
        report("restore", len(audio) + 1, len(audio) + 1)
        return meetings, rollback

    def _stage_audio(
        self, audio: list[_AudioFile], created: list[Path], report: Report, stop: _Cancel
    ) -> None:
        """Put each restored audio file beside its target under a hidden name (same folder, so
        the final rename is atomic). Folders made for them are appended to `created`."""
        for i, f in enumerate(audio):
            stop.check()
            report("restore", i, len(audio) + 1)
            try:
                missing = [p for p in f.target.parents if not p.exists()]
                f.target.parent.mkdir(parents=True, exist_ok=True)
                created.extend(missing)
                try:
                    os.replace(f.source, f.staged)  # same drive: a rename, no extra space
                except OSError:
                    shutil.copyfile(f.source, f.staged)
            except OSError as exc:
                raise BackupError(
                    f"Cannot write the restored audio file {f.target} ({_reason(exc)}); your "
                    "library and audio files were not changed. Free some disk space and try "
                    "again."
                ) from exc
        report("restore", len(audio), len(audio) + 1)

    def _rollback_copy(self, audio: list[_AudioFile]) -> Path:
        """Keep the library, and the audio files the restore will overwrite, as they are now in
        a new folder of `restore-rollback/`; returns that folder."""
        root = self.library_path.parent / ROLLBACK_DIR
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        try:
            root.mkdir(parents=True, exist_ok=True)
            for n in itertools.count():
                dest = root / f"{ROLLBACK_PREFIX}{stamp}{f'-{n}' if n else ''}"
                try:
                    dest.mkdir()
                    break
                except FileExistsError:
                    continue
        except OSError as exc:
            raise BackupError(
                f"Cannot keep a copy of the current library ({_reason(exc)}); nothing was "
                "restored. Free some disk space and try again."
            ) from exc
        try:
            if self.library_path.exists():
                self.snapshot(dest / DB_MEMBER)
            for f in audio:
                if f.replaces:
                    kept = dest / "audio" / f.target.relative_to(self.audio_dir)
                    kept.parent.mkdir(parents=True, exist_ok=True)
                    _link_or_copy(f.target, kept)
        except OSError as exc:
            shutil.rmtree(dest, ignore_errors=True)
            raise BackupError(
                f"Cannot keep a copy of the current library ({_reason(exc)}); nothing was "
                "restored. Free some disk space and try again."
            ) from exc
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise
        return dest

    def _prune_rollbacks(self, keep: Path) -> None:
        """Remove all but the newest ROLLBACK_KEEP rollback copies (`keep` always stays, even
        if the clock went back). Only names this module makes are touched."""
        found: list[tuple[tuple[str, str, int], Path]] = []
        for path in (self.library_path.parent / ROLLBACK_DIR).iterdir():
            match = ROLLBACK_RE.match(path.name)
            if match and path != keep:
                key = (match["stamp"], match["micro"] or "", int(match["n"] or 0))
                found.append((key, path))
        found.sort(reverse=True)
        for _key, path in found[ROLLBACK_KEEP - 1 :]:
            try:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            except OSError as exc:
                log.warning("could not remove the old rollback copy %s: %s", path, exc)

    def _copy_into_live(self, db: Path, stop: _Cancel) -> None:
        """Copy `db` over the live library in one write transaction (raises sqlite3.Error with
        the library unchanged); the app's open connections see the result at once."""
        deadline = time.monotonic() + LOCK_TIMEOUT

        def waiting(status: int, _remaining: int, _total: int) -> None:
            # Python's backup() retries a busy target forever; give up after LOCK_TIMEOUT
            # (and on Cancel) instead. Raising here aborts the copy with the target unchanged.
            if status in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                stop.check()
                if time.monotonic() > deadline:
                    raise sqlite3.OperationalError("the library is locked by another program")

        src = sqlite3.connect(db)
        try:
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
            finally:
                dst.close()
        finally:
            src.close()

    def _check_live(self) -> int:
        """Check the just-restored live library; returns its meeting count."""
        conn = sqlite3.connect(self.library_path, timeout=LOCK_TIMEOUT)
        try:
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":  # pragma: no cover - the copy was verified before
                raise BackupError(f"the restored library failed its check ({check})")
            return int(conn.execute("SELECT count(*) FROM meetings").fetchone()[0])
        finally:
            conn.close()

    def _put_back(self, rollback: Path, placed: list[_AudioFile], existed: bool) -> None:
        """Undo a restore that failed after its database copy committed."""
        for f in reversed(placed):
            if f.replaces:
                _link_or_copy(rollback / "audio" / f.target.relative_to(self.audio_dir), f.staged)
                os.replace(f.staged, f.target)
            else:
                f.target.unlink()
        saved = rollback / DB_MEMBER
        if saved.exists():
            self._copy_into_live(saved, _Cancel(None))
        elif not existed:
            self.library_path.unlink(missing_ok=True)

    def _discard(
        self, audio: list[_AudioFile], created: list[Path], rollback: Path | None, existed: bool
    ) -> None:
        """Remove what a failed restore staged (and its now needless rollback copy)."""
        for f in audio:
            try:
                f.staged.unlink(missing_ok=True)
            except OSError:
                log.warning("could not remove %s", f.staged)
        for folder in sorted(set(created), key=lambda p: len(p.parts), reverse=True):
            try:
                folder.rmdir()
            except OSError:
                pass  # not empty (someone else's file) or already gone
        if rollback is not None:
            shutil.rmtree(rollback, ignore_errors=True)
        # sqlite3.connect creates an empty file where there was no library
        if not existed and self.library_path.exists() and not self.library_path.stat().st_size:
            self.library_path.unlink(missing_ok=True)


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


def _existing(folder: Path) -> Path:
    """`folder` or, if it is not there yet, its nearest existing parent."""
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    return folder


def _same_drive(a: Path, b: Path) -> bool:
    return _existing(a).stat().st_dev == _existing(b).stat().st_dev


def _link_or_copy(src: Path, dst: Path) -> None:
    """A second name for `src` at `dst` (a hard link costs no space), else a copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _reason(exc: BaseException) -> str:
    return str(exc.strerror or exc) if isinstance(exc, OSError) else str(exc) or type(exc).__name__


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


def _reporter(progress: ProgressCallback | None) -> Report:
    """The internal report(stage, done, total) as the caller's `Progress` (fraction of the
    stage; for transfers the message says how much of how much)."""
    if progress is None:
        return lambda _stage, _done, _total: None

    def report(stage: str, done: int, total: int) -> None:
        fraction = min(1.0, done / total) if total > 0 else 0.0
        message = (
            f"{human_size(done)} of {human_size(total)}"
            if stage in ("upload", "download") and total
            else ""
        )
        progress(Progress(stage, fraction, None, message))

    return report
