"""Cloud backups of the meeting library (and optionally its audio) through signed URLs: the
service the CloudManager runs, putting together the seams it is made of (Qt-free, blocking:
run it on a worker thread).

Backing up: plan the space (`backup_space`), make the archive, a consistent SQLite snapshot
with a manifest (and audio files, if asked) as a checksummed `.tar.gz` (`backup_archive`),
then upload it to the URL the backend signed (`backup_transfer`), with progress and cancel.

Restoring: plan the space, download while hashing (refused on a checksum mismatch), unpack
safely and check the manifest's database checksum and `PRAGMA integrity_check`, then the
all-or-nothing restore transaction (`backup_restore`): stage the audio, keep a rollback copy,
copy the backup into the live library in one SQLite transaction, rename the audio into place.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from nojoin import paths
from nojoin.cloud import backup_transfer
from nojoin.cloud.api_client import ApiClient, BackupInfo
from nojoin.cloud.backup_archive import (
    DB_MEMBER,
    NAME_RE,
    Archive,
    audio_files,
    check_cancel,
    create_archive,
    device_name,
    human_size,
    report,
    snapshot,
    unpack,
    verify,
)
from nojoin.cloud.backup_restore import RestoreTransaction
from nojoin.cloud.backup_space import HEADROOM, live_db_size, require_space, same_drive
from nojoin.processing.contract import CancelToken, ProgressCallback

__all__ = ["BackupEntry", "BackupService", "RestoreReport", "describe", "human_size"]

log = logging.getLogger(__name__)


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
class RestoreReport:
    meetings: int
    rollback_path: Path
    """Folder with the library (`library.sqlite3`) and the audio files the restore overwrote,
    as they were just before it."""
    audio_files: int


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
        self.library_path.parent.mkdir(parents=True, exist_ok=True)
        require_space(needs, action)

    def _work_base(self) -> Path:
        return self._work_dir or self.library_path.parent

    def _tmpdir(self) -> tempfile.TemporaryDirectory[str]:
        base = self._work_base()
        base.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(prefix=".nojoin-backup-", dir=base)

    # ------------------------------------------------------------------ back up

    def snapshot(self, dest: Path, progress: ProgressCallback | None = None) -> None:
        """A consistent copy of the live library (other connections may keep writing)."""
        snapshot(self.library_path, dest, progress)

    def create_archive(
        self,
        dest_dir: Path,
        *,
        include_audio: bool = False,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        when: datetime | None = None,
    ) -> Archive:
        return create_archive(
            self.library_path,
            self.audio_dir,
            self.device,
            dest_dir,
            include_audio=include_audio,
            progress=progress,
            cancel=cancel,
            when=when,
        )

    def back_up(
        self,
        *,
        include_audio: bool = False,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> BackupEntry:
        """Snapshot, pack, checksum and upload. Returns the new backup as listed."""
        if self.library_path.exists():
            audio = (
                sum(p.stat().st_size for p in audio_files(self.audio_dir)) if include_audio else 0
            )
            # snapshot + compressed archive of it and the audio, with some headroom
            self._require_space(
                {self._work_base(): 2 * live_db_size(self.library_path) + audio + HEADROOM},
                "back up",
            )
        with self._tmpdir() as tmp:
            archive = self.create_archive(
                Path(tmp), include_audio=include_audio, progress=progress, cancel=cancel
            )
            check_cancel(cancel)
            target = self.api.generate_upload_url(archive.name, archive.size, archive.sha256)
            backup_transfer.upload(self._http, archive, target, progress, cancel)
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
        url = self.api.generate_download_url(entry.backup_id)
        backup_transfer.download(
            self._http,
            url,
            dest,
            size=entry.size,
            sha256=entry.sha256,
            progress=progress,
            cancel=cancel,
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
        # Download + unpacked copy (databases compress ~3-5x) in the work folder, the rollback
        # copy of the library beside it, and audio staged in the audio folder when that is on
        # another drive (else staging is a rename). restore_archive checks again once the
        # backup is unpacked and it is known which audio files would be overwritten.
        needs = {
            self._work_base(): entry.size * 6 + HEADROOM,
            self.library_path.parent: live_db_size(self.library_path),
        }
        if entry.includes_audio and not same_drive(self.audio_dir, self._work_base()):
            needs[self.audio_dir] = entry.size
        self._require_space(needs, "restore this backup")
        with self._tmpdir() as tmp_name:
            tmp = Path(tmp_name)
            archive = tmp / "backup.tar.gz"
            self.download(entry, archive, progress, cancel)
            check_cancel(cancel)
            return self.restore_archive(archive, progress=progress, cancel=cancel, work=tmp)

    def restore_archive(
        self,
        archive: Path,
        *,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        work: Path | None = None,
    ) -> RestoreReport:
        """Restore a backup file already on this computer (see `restore`)."""
        transaction = RestoreTransaction(self.library_path, self.audio_dir)
        with self._tmpdir() as own_tmp:
            base = work or Path(own_tmp)
            unpacked = base / "unpacked"
            unpacked.mkdir()
            manifest = unpack(archive, unpacked)
            db = unpacked / DB_MEMBER
            report(progress, "verify", 0, 1)
            verify(db, manifest)
            check_cancel(cancel)
            audio = transaction.plan_audio(unpacked)
            transaction.prepare(db, manifest, audio)
            report(progress, "verify", 1, 1)
            check_cancel(cancel)
            transaction.require_space(audio, unpacked)
            meetings, rollback = transaction.swap(db, audio, progress, cancel)
        transaction.prune_rollbacks(keep=rollback)
        return RestoreReport(meetings=meetings, rollback_path=rollback, audio_files=len(audio))
