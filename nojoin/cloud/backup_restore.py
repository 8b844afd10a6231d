"""The restore transaction: a verified, unpacked backup replaces the live library and its
audio, all or nothing (Qt-free, blocking).

The backup's audio is staged beside its targets under hidden names; the current library (and
the audio files about to be overwritten) is kept as a rollback copy; the backup is copied into
the live library in one SQLite transaction (the running app's connection sees the restored
meetings at once); then the staged audio is renamed into place. A failure before that
transaction commits only removes what was staged; one after it puts library and audio back.
"""

from __future__ import annotations

import filecmp
import itertools
import logging
import os
import re
import shutil
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nojoin import sidecars
from nojoin.cloud.backup_archive import DB_MEMBER, check_cancel, report, snapshot
from nojoin.cloud.backup_space import HEADROOM, live_db_size, require_space, same_drive
from nojoin.cloud.errors import BackupError
from nojoin.errors import LibraryError
from nojoin.processing.contract import CancelToken, ProgressCallback

log = logging.getLogger(__name__)

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
LOCK_TIMEOUT = 30.0
"""Seconds the restore waits for another connection's write lock on the live library."""


@dataclass(frozen=True, slots=True)
class AudioFile:
    """An audio file of a backup on its way into the live audio folder."""

    source: Path  # unpacked from the backup
    target: Path  # where it belongs in the live audio folder
    replaces: bool  # a different file is there now (it goes into the rollback copy)

    @property
    def staged(self) -> Path:
        return sidecars.restoring_path(self.target)


class RestoreTransaction:
    """Restores an unpacked backup into the library at `library_path` and `audio_dir`:
    `plan_audio`, `prepare`, `require_space`, then `swap`, then `prune_rollbacks`."""

    def __init__(self, library_path: Path, audio_dir: Path) -> None:
        self.library_path = library_path
        self.audio_dir = audio_dir

    def plan_audio(self, unpacked: Path) -> list[AudioFile]:
        """The backup's audio files that are not already in the live audio folder as they are."""
        src_root = unpacked / "audio"
        if not src_root.is_dir():
            return []
        plan: list[AudioFile] = []
        for path in sorted(p for p in src_root.rglob("*") if p.is_file()):
            target = self.audio_dir / path.relative_to(src_root)
            if target.exists() and not target.is_file():
                raise BackupError(
                    f"Cannot restore the audio file {target}: something that is not a file is "
                    "in its place. Move it away and restore again. Your library was not changed."
                )
            if target.is_file() and filecmp.cmp(path, target, shallow=False):
                continue
            plan.append(AudioFile(source=path, target=target, replaces=target.exists()))
        return plan

    def prepare(self, db: Path, manifest: dict[str, Any], audio: list[AudioFile]) -> None:
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

    def require_space(self, audio: list[AudioFile], unpacked: Path) -> None:
        """What is still to be written: the rollback copy (library + the audio files it would
        overwrite, counted although hard links usually make those free) and the staged audio
        (a rename when the audio folder shares the drive of the unpacked backup)."""
        replaced = sum(f.target.stat().st_size for f in audio if f.replaces)
        needs = {self.library_path.parent: live_db_size(self.library_path) + replaced + HEADROOM}
        if audio and not same_drive(self.audio_dir, unpacked):
            needs[self.audio_dir] = sum(f.source.stat().st_size for f in audio)
        self.library_path.parent.mkdir(parents=True, exist_ok=True)
        require_space(needs, "restore this backup")

    def swap(
        self,
        db: Path,
        audio: list[AudioFile],
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> tuple[int, Path]:
        """All or nothing: stage the audio beside its targets, keep the rollback copy, copy the
        database into the live library in one transaction, then rename the staged audio into
        place. Until that transaction commits, nothing the user has is changed (a failure just
        removes what was staged); a failure after it puts library and audio back from the
        rollback copy. Returns the restored meeting count and the rollback folder."""
        existed = self.library_path.exists()
        created: list[Path] = []
        rollback: Path | None = None
        placed: list[AudioFile] = []
        committed = False
        try:
            self._stage_audio(audio, created, progress, cancel)
            check_cancel(cancel)
            rollback = self._rollback_copy(audio)
            check_cancel(cancel)
            try:
                self._copy_into_live(db, cancel)
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
        report(progress, "restore", len(audio) + 1, len(audio) + 1)
        return meetings, rollback

    def _stage_audio(
        self,
        audio: list[AudioFile],
        created: list[Path],
        progress: ProgressCallback | None,
        cancel: CancelToken | None,
    ) -> None:
        """Put each restored audio file beside its target under a hidden name (same folder, so
        the final rename is atomic). Folders made for them are appended to `created`."""
        for i, f in enumerate(audio):
            check_cancel(cancel)
            report(progress, "restore", i, len(audio) + 1)
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
        report(progress, "restore", len(audio), len(audio) + 1)

    def _rollback_copy(self, audio: list[AudioFile]) -> Path:
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
                snapshot(self.library_path, dest / DB_MEMBER)
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

    def prune_rollbacks(self, keep: Path) -> None:
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

    def _copy_into_live(self, db: Path, cancel: CancelToken | None) -> None:
        """Copy `db` over the live library in one write transaction (raises sqlite3.Error with
        the library unchanged); the app's open connections see the result at once."""
        deadline = time.monotonic() + LOCK_TIMEOUT

        def waiting(status: int, _remaining: int, _total: int) -> None:
            # Python's backup() retries a busy target forever; give up after LOCK_TIMEOUT
            # (and on Cancel) instead. Raising here aborts the copy with the target unchanged.
            if status in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                check_cancel(cancel)
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

    def _put_back(self, rollback: Path, placed: list[AudioFile], existed: bool) -> None:
        """Undo a restore that failed after its database copy committed."""
        for f in reversed(placed):
            if f.replaces:
                _link_or_copy(rollback / "audio" / f.target.relative_to(self.audio_dir), f.staged)
                os.replace(f.staged, f.target)
            else:
                f.target.unlink()
        saved = rollback / DB_MEMBER
        if saved.exists():
            self._copy_into_live(saved, None)
        elif not existed:
            self.library_path.unlink(missing_ok=True)

    def _discard(
        self, audio: list[AudioFile], created: list[Path], rollback: Path | None, existed: bool
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


def _link_or_copy(src: Path, dst: Path) -> None:
    """A second name for `src` at `dst` (a hard link costs no space), else a copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _reason(exc: BaseException) -> str:
    return str(exc.strerror or exc) if isinstance(exc, OSError) else str(exc) or type(exc).__name__
