"""Backups against the real backend (signed local-storage URLs): round trip gives identical
meetings, a corrupted download or a damaged database is refused and the library stays intact,
audio travels along when asked."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cloud_support import PASSWORD, Backend, Device, new_email

from nojoin import paths
from nojoin.cloud.backup_service import BackupService, human_size
from nojoin.cloud.errors import BackupError
from nojoin.library import Library
from nojoin.models import Segment, Transcript, Word
from nojoin.processing.contract import Progress

MakeDevice = Callable[..., Device]


def _fill(lib: Library, n: int = 3) -> None:
    for i in range(n):
        m = lib.add_meeting(f"Meeting {i}", duration=60.0 + i)
        lib.save_transcript(
            m.id,
            Transcript(
                segments=[
                    Segment(0.0, 2.0, f"hello number {i}", "SPEAKER_00", [Word(0.0, 1.0, "hello")]),
                    Segment(2.0, 4.0, "and a reply", "SPEAKER_01"),
                ],
                language="en",
                duration=4.0,
            ),
        )
        lib.add_tag(m.id, "weekly")
        lib.rename_speaker(m.id, "SPEAKER_00", "Alice")


def _dump(lib: Library) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for m in lib.list_meetings():
        t = lib.get_transcript(m.id)
        out.append((m.id, m.title, m.duration, tuple(m.tags), lib.speaker_names(m.id), t.to_dict()))
    return out


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every file (hidden ones too) and folder under `root`: name -> bytes (None: a folder)."""
    return {
        p.relative_to(root).as_posix(): None if p.is_dir() else p.read_bytes()
        for p in sorted(root.rglob("*"))
    }


def _rollbacks(lib: Library) -> list[str]:
    folder = lib.path.parent / "restore-rollback"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _audio_backup(tmp_path: Path) -> tuple[Library, BackupService, Path]:
    """A library with three recordings backed up with audio; then life goes on: one recording
    is re-encoded (same name, other bytes), one deleted, one whose folder is gone, one new."""
    lib = Library()
    root = paths.audio_dir()
    for rel in ("2025/old.flac", "2026/standup.flac", "2026/zz-retro.flac"):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"fLaC" + rel.encode() * 500)
        lib.add_meeting(rel, audio_path=path, duration=3.0)
    service = BackupService(api=None, library_path=lib.path)  # type: ignore[arg-type]
    (tmp_path / "archive").mkdir()
    archive = service.create_archive(tmp_path / "archive", include_audio=True).path
    (root / "2026" / "standup.flac").write_bytes(b"fLaC re-encoded" * 300)
    (root / "2026" / "zz-retro.flac").unlink()
    (root / "2025" / "old.flac").unlink()
    (root / "2025").rmdir()
    (root / "2026" / "new.flac").write_bytes(b"fLaC only here")
    lib.add_meeting("Only in the current library")
    return lib, service, archive


@pytest.fixture
def signed_in(device: MakeDevice) -> Device:
    dev = device("laptop")
    dev.auth.sign_up(new_email(), PASSWORD)
    return dev


def test_backup_then_restore_gives_identical_meetings(signed_in: Device) -> None:
    lib = Library()
    _fill(lib)
    before = _dump(lib)
    service = BackupService(signed_in.api, lib.path, device="laptop")
    reports: list[Progress] = []
    entry = service.back_up(progress=reports.append)
    size = human_size(entry.size)
    assert Progress("upload", 1.0, None, f"{size} of {size}") in reports

    listed = service.list_backups()
    assert [(b.backup_id, b.device, b.size, b.sha256) for b in listed] == [
        (entry.backup_id, "laptop", entry.size, entry.sha256)
    ]
    assert listed[0].created_at is not None

    # Life goes on while the app keeps the library open: one deleted, one added.
    lib.delete_meeting(lib.list_meetings()[0].id)
    lib.add_meeting("Added after the backup")
    assert _dump(lib) != before

    report = service.restore(listed[0])
    assert report.meetings == 3
    assert _dump(lib) == before  # the app's open connection sees the restored library
    assert lib.integrity_check() == "ok"
    # The library as it was just before the restore is kept as a rollback copy.
    with Library(report.rollback_path / "library.sqlite3") as rollback:
        assert "Added after the backup" in [m.title for m in rollback.list_meetings()]
    lib.close()


def test_corrupted_download_is_refused_and_library_untouched(
    signed_in: Device, backend: Backend
) -> None:
    lib = Library()
    _fill(lib, 2)
    service = BackupService(signed_in.api, lib.path)
    entry = service.back_up()
    lib.add_meeting("Only in the current library")
    before = _dump(lib)

    # Damage the stored object on the server (bit rot, a bad proxy, tampering).
    user = signed_in.auth.account
    assert user is not None
    [stored] = list(
        (backend.data_dir / "storage" / user.user_id / "backups").glob(f"{entry.backup_id}*")
    )
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))

    with pytest.raises(BackupError, match="checksum does not match"):
        service.restore(service.list_backups()[0])
    assert _dump(lib) == before
    assert lib.integrity_check() == "ok"
    assert not list(lib.path.parent.glob("restore-rollback/*"))  # never got that far
    lib.close()


def _archive(tmp: Path, db_bytes: bytes, *, manifest_sha: str | None = None) -> Path:
    manifest = {
        "format": 1,
        "database": {
            "name": "library.sqlite3",
            "sha256": manifest_sha or hashlib.sha256(db_bytes).hexdigest(),
        },
        "audio": [],
    }
    path = tmp / "b.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in (
            ("manifest.json", json.dumps(manifest).encode()),
            ("library.sqlite3", db_bytes),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_damaged_database_in_backup_fails_integrity_check(tmp_path: Path) -> None:
    lib = Library()
    _fill(lib, 1)
    before = _dump(lib)
    lib.close()
    digest = _sha(lib.path)
    # A backup whose database is damaged inside (valid checksum of damaged bytes).
    src = tmp_path / "src.sqlite3"
    with Library(src) as other:
        _fill(other, 40)
    conn = sqlite3.connect(src)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    raw = bytearray(src.read_bytes())
    for offset in range(4096 * 3, len(raw) - 4096, 4096):  # scribble over b-tree pages
        raw[offset + 8 : offset + 40] = b"\xa5" * 32
    service = BackupService(api=None, library_path=lib.path)  # type: ignore[arg-type]
    with pytest.raises(BackupError, match="damaged|integrity"):
        service.restore_archive(_archive(tmp_path, bytes(raw)))
    assert _sha(paths.library_path()) == digest  # not one byte changed
    with Library() as again:
        assert _dump(again) == before


def test_archive_that_is_not_a_backup_is_refused(tmp_path: Path) -> None:
    lib = Library()
    _fill(lib, 1)
    before = _dump(lib)
    service = BackupService(api=None, library_path=lib.path)  # type: ignore[arg-type]
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"this is not gzip")
    with pytest.raises(BackupError, match="damaged"):
        service.restore_archive(junk)
    with pytest.raises(BackupError, match="does not match its manifest"):
        service.restore_archive(_archive(tmp_path, b"x" * 100, manifest_sha="0" * 64))
    assert _dump(lib) == before
    lib.close()


def test_backup_with_audio_restores_files_on_another_computer(
    signed_in: Device, tmp_path: Path
) -> None:
    lib = Library()
    audio = paths.audio_dir() / "2026" / "standup.flac"
    audio.parent.mkdir(parents=True)
    audio.write_bytes(b"fLaC" + bytes(range(256)) * 64)
    m = lib.add_meeting("Stand-up", audio_path=audio, duration=3.0)
    service = BackupService(signed_in.api, lib.path)
    entry = service.back_up(include_audio=True)
    assert entry.includes_audio
    lib.close()

    # Another computer: different data folder, empty library.
    other_data = tmp_path / "other-computer"
    other = BackupService(
        signed_in.api, other_data / "library.sqlite3", audio_dir=other_data / "audio"
    )
    (other_data).mkdir()
    Library(other.library_path).close()
    [listed] = other.list_backups()
    report = other.restore(listed)
    assert report.audio_files == 1
    restored_audio = other_data / "audio" / "2026" / "standup.flac"
    assert restored_audio.read_bytes() == audio.read_bytes()
    with Library(other.library_path) as restored:
        assert restored.get_meeting(m.id).audio_path == str(restored_audio)


def test_not_enough_disk_space_is_refused_before_anything_is_written(
    signed_in: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil as shutil_module
    from collections import namedtuple

    lib = Library()
    _fill(lib, 1)
    service = BackupService(signed_in.api, lib.path)
    entry = service.back_up()
    before = _dump(lib)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil_module, "disk_usage", lambda path: usage(10**9, 10**9, 1024))
    with pytest.raises(BackupError, match="Not enough free disk space to back up"):
        service.back_up()
    with pytest.raises(BackupError, match="Not enough free disk space to restore"):
        service.restore(entry)
    assert [b.backup_id for b in service.list_backups()] == [entry.backup_id]
    assert _dump(lib) == before
    lib.close()


def test_restore_failing_in_the_database_copy_leaves_library_and_audio_byte_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nojoin.cloud import backup_restore

    lib, service, archive = _audio_backup(tmp_path)
    before = _dump(lib)
    lib.close()
    digest = _sha(lib.path)
    audio_before = _tree(paths.audio_dir())

    # Another program is in the middle of writing: the copy cannot get the write lock. It
    # must give up (not wait forever) and leave everything as it was: no audio file replaced,
    # added or half-written, no folder made, no rollback copy left behind.
    monkeypatch.setattr(backup_restore, "LOCK_TIMEOUT", 0.5)
    blocker = sqlite3.connect(lib.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(BackupError, match="locked by another program.*were not changed"):
            service.restore_archive(archive)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert _sha(lib.path) == digest
    assert _tree(paths.audio_dir()) == audio_before
    assert _rollbacks(lib) == []
    with Library() as again:
        assert _dump(again) == before

    # Once the other program is done, the same restore goes through.
    report = service.restore_archive(archive)
    assert report.audio_files == 3
    with Library() as again:
        assert "Only in the current library" not in [m.title for m in again.list_meetings()]
    assert (paths.audio_dir() / "2025" / "old.flac").read_bytes().startswith(b"fLaC2025")
    # The overwritten recording is in the rollback copy.
    kept = report.rollback_path / "audio" / "2026" / "standup.flac"
    assert kept.read_bytes() == audio_before["2026/standup.flac"]


def test_restore_failing_after_the_database_copy_puts_library_and_audio_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    lib, service, archive = _audio_backup(tmp_path)
    assert str(paths.audio_dir()).startswith(str(tmp_path))
    before = _dump(lib)
    audio_before = _tree(paths.audio_dir())

    # The database copy commits, two files are renamed into place (a new one in a new folder,
    # one replacing a file), then the third rename fails (the disk goes away, say).
    real_replace = os.replace
    last = paths.audio_dir() / "2026" / "zz-retro.flac"

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(dst) == last:
            raise OSError(errno.EIO, "Input/output error")
        real_replace(src, dst)

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", replace)
        with pytest.raises(BackupError, match="Input/output error.*put back as they were"):
            service.restore_archive(archive)
    assert _dump(lib) == before  # the app's open connection sees its library again
    assert lib.integrity_check() == "ok"
    assert _tree(paths.audio_dir()) == audio_before
    assert _rollbacks(lib) == []
    lib.close()


def _free_space(monkeypatch: pytest.MonkeyPatch, free: Callable[[Path], int]) -> None:
    import shutil as shutil_module
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(
        shutil_module, "disk_usage", lambda path: usage(10**12, 0, free(Path(path)))
    )


def test_restore_needs_room_for_the_rollback_copy_of_overwritten_audio(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nojoin.cloud.backup_space import HEADROOM

    lib, service, archive = _audio_backup(tmp_path)
    # The recording the restore would overwrite is big (the backup's version is small).
    big = 8 << 20
    (paths.audio_dir() / "2026" / "standup.flac").write_bytes(b"\x00" * big)
    before = _dump(lib)
    audio_before = _tree(paths.audio_dir())
    wal = lib.path.with_name(lib.path.name + "-wal")
    library = lib.path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)

    # Room for the library's rollback copy, not for the overwritten recording's.
    _free_space(monkeypatch, lambda _path: library + HEADROOM + big // 2)
    with pytest.raises(BackupError, match="Not enough free disk space to restore"):
        service.restore_archive(archive)
    assert _dump(lib) == before
    assert _tree(paths.audio_dir()) == audio_before
    assert _rollbacks(lib) == []

    _free_space(monkeypatch, lambda _path: library + HEADROOM + 2 * big)
    report = service.restore_archive(archive)
    assert (report.rollback_path / "audio" / "2026" / "standup.flac").stat().st_size == big
    lib.close()


@pytest.fixture
def other_drive(tmp_path: Path) -> Iterator[Path]:
    """A folder on another file system than the data folder (tmpfs /dev/shm on Linux)."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on another file system than the temp folder")
    with tempfile.TemporaryDirectory(prefix="nojoin-test-", dir=shm) as folder:
        yield Path(folder)


def test_restore_needs_room_for_staged_audio_on_the_audio_folders_drive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, other_drive: Path
) -> None:
    audio_dir = other_drive / "audio"
    lib = Library()
    recording = audio_dir / "2026" / "standup.flac"
    recording.parent.mkdir(parents=True)
    size = 8 << 20
    recording.write_bytes(b"\x00" * size)
    lib.add_meeting("Stand-up", audio_path=recording, duration=3.0)
    service = BackupService(
        api=None,  # type: ignore[arg-type]
        library_path=lib.path,
        audio_dir=audio_dir,
    )
    (tmp_path / "archive").mkdir()
    archive = service.create_archive(tmp_path / "archive", include_audio=True).path
    recording.unlink()

    # Plenty of room where the library is; the audio folder's drive cannot take the recording.
    def free(path: Path) -> int:
        return size // 2 if path.is_relative_to(other_drive) else 10**11

    _free_space(monkeypatch, free)
    with pytest.raises(BackupError, match=f"restore.*on the drive of {other_drive}"):
        service.restore_archive(archive)
    assert _tree(audio_dir) == {"2026": None}
    assert _rollbacks(lib) == []

    _free_space(monkeypatch, lambda _path: 10**11)
    assert service.restore_archive(archive).audio_files == 1
    assert recording.stat().st_size == size
    lib.close()


def test_only_the_three_newest_rollback_copies_are_kept(tmp_path: Path) -> None:
    lib = Library()
    _fill(lib, 2)
    service = BackupService(api=None, library_path=lib.path)  # type: ignore[arg-type]
    archive = service.create_archive(tmp_path).path
    folder = lib.path.parent / "restore-rollback"
    folder.mkdir()
    # One left by an earlier version (a bare file), and something the user put there.
    (folder / "library-before-restore-20250101T000000Z.sqlite3").write_bytes(b"old copy")
    (folder / "my notes.txt").write_text("keep me")

    reports = []
    for i in range(5):
        lib.add_meeting(f"Added before restore {i}")
        reports.append(service.restore_archive(archive))
        assert len([p for p in folder.iterdir() if p.name != "my notes.txt"]) == min(i + 2, 3)

    assert sorted(folder.iterdir()) == sorted(
        [*(r.rollback_path for r in reports[-3:]), folder / "my notes.txt"]
    )
    # Each kept copy is the library as it was before its own restore.
    for i, report in zip(range(2, 5), reports[-3:], strict=True):
        with Library(report.rollback_path / "library.sqlite3") as kept:
            assert f"Added before restore {i}" in [m.title for m in kept.list_meetings()]
    lib.close()
