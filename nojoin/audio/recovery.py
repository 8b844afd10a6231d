"""Crash safety for recordings: a journal of recordings in progress, and their recovery.

While recording, audio goes to `<name>.partial.wav` (PCM WAV written block by block, so
everything handed to the OS survives a kill; fsync'd every second so a power cut loses at most
about a second). A JSON journal entry in `<data dir>/recordings/` says where that file is and
holds an OS file lock for as long as the recorder lives. On the next start, `find_interrupted()`
lists entries whose lock is free (the recorder died) and `recover()` repairs the WAV header
(its sizes are only written on a clean close) and moves the file to its final name;
`nojoin.audio.saving.save_recording` then adds it to the library as a clean stop would.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from nojoin import sidecars
from nojoin.errors import AudioError

log = logging.getLogger(__name__)

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def journal_dir() -> Path:
    path = sidecars.journal_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(slots=True)
class JournalEntry:
    """What a recorder writes before its first sample, so a crash can be repaired."""

    id: str
    partial_path: str
    final_path: str
    samplerate: int
    channels: int
    started_at: str  # ISO 8601 with timezone
    title: str
    pid: int

    @property
    def journal_path(self) -> Path:
        return journal_dir() / f"{self.id}.json"


@dataclass(frozen=True, slots=True)
class RecoveredRecording:
    """A recording rescued after a crash; `path` is None when nothing had been recorded."""

    path: Path | None
    duration: float
    started_at: datetime
    title: str


class JournalLock:
    """Holds the journal entry's lock while a recording is running (released by the OS on death)."""

    def __init__(self, entry: JournalEntry) -> None:
        self.entry = entry
        tmp = entry.journal_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(entry), indent=2), encoding="utf-8")
        # Lock before the rename (the lock follows the inode) so that no other process can
        # ever see this entry unlocked and "recover" a recording that is just starting.
        self._fh: IO[str] | None = open(tmp, encoding="utf-8")  # noqa: SIM115
        if fcntl is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(tmp, entry.journal_path)

    def release(self, *, delete: bool) -> None:
        if self._fh is not None:
            self._fh.close()  # closing drops the flock
            self._fh = None
        if delete:
            self.entry.journal_path.unlink(missing_ok=True)


def new_entry(
    partial: Path, final: Path, samplerate: int, channels: int, started_at: datetime, title: str
) -> JournalEntry:
    return JournalEntry(
        id=uuid.uuid4().hex,
        partial_path=str(partial),
        final_path=str(final),
        samplerate=samplerate,
        channels=channels,
        started_at=started_at.isoformat(timespec="seconds"),
        title=title,
        pid=os.getpid(),
    )


def find_interrupted() -> list[JournalEntry]:
    """Recordings whose recorder died (crash, kill, power cut) before stopping; oldest first."""
    found: list[JournalEntry] = []
    for p in sorted(journal_dir().glob("*.json")):
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            entry = JournalEntry(**data)
        except (OSError, ValueError, TypeError) as exc:
            log.warning("ignoring unreadable recording journal %s: %s", p, exc)
            continue
        if _is_alive(p, entry):
            continue
        found.append(entry)
    found.sort(key=lambda e: e.started_at)
    return found


def recover(entry: JournalEntry) -> RecoveredRecording:
    """Make the interrupted recording a playable WAV at its final path with its real duration.

    Idempotent: a second call after a crash during recovery finishes the job.
    """
    started = datetime.fromisoformat(entry.started_at)
    partial = Path(entry.partial_path)
    final = Path(entry.final_path)
    if not partial.exists():
        if final.exists():  # an earlier recovery got as far as the rename
            frames, rate = _wav_frames(final)
            entry.journal_path.unlink(missing_ok=True)
            return RecoveredRecording(final, frames / rate if rate else 0.0, started, entry.title)
        log.warning("interrupted recording %s left no audio file", entry.partial_path)
        entry.journal_path.unlink(missing_ok=True)
        return RecoveredRecording(None, 0.0, started, entry.title)
    frames = repair_wav(partial)
    if frames == 0:
        partial.unlink(missing_ok=True)
        entry.journal_path.unlink(missing_ok=True)
        return RecoveredRecording(None, 0.0, started, entry.title)
    target = finalize_file(partial, final)
    entry.journal_path.unlink(missing_ok=True)
    duration = frames / entry.samplerate
    log.info("recovered interrupted recording %s (%.1f s)", target, duration)
    return RecoveredRecording(target, duration, started, entry.title)


def repair_wav(path: Path) -> int:
    """Fix the RIFF and data sizes of a WAV cut off mid-write; return its frame count."""
    try:
        with open(path, "r+b") as fh:
            header = fh.read(12)
            if len(header) < 12 or header[:4] not in (b"RIFF", b"RIFX") or header[8:12] != b"WAVE":
                raise AudioError(f"{path.name} is not a WAV file; cannot recover it.")
            block_align = 0
            pos = 12
            size = os.fstat(fh.fileno()).st_size
            while pos + 8 <= size:
                fh.seek(pos)
                cid, clen = struct.unpack("<4sI", fh.read(8))
                if cid == b"fmt ":
                    fmt = fh.read(16)
                    block_align = struct.unpack("<H", fmt[12:14])[0]
                elif cid == b"data":
                    if block_align <= 0:
                        raise AudioError(f"{path.name} has no format header; cannot recover it.")
                    data_start = pos + 8
                    frames = max(0, (size - data_start) // block_align)
                    data_len = frames * block_align
                    fh.truncate(data_start + data_len)
                    fh.seek(pos + 4)
                    fh.write(struct.pack("<I", data_len))
                    fh.seek(4)
                    fh.write(struct.pack("<I", data_start + data_len - 8))
                    fh.flush()
                    os.fsync(fh.fileno())
                    return frames
                pos += 8 + clen + (clen & 1)
    except OSError as exc:
        raise AudioError(f"Cannot repair {path}: {exc.strerror or exc}") from exc
    raise AudioError(f"{path.name} has no audio data chunk; cannot recover it.")


def unique_path(path: Path) -> Path:
    """`path`, or `name-2.ext`, `name-3.ext`... if it is taken."""
    if not path.exists():
        return path
    n = 2
    while True:
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        if not candidate.exists():
            return candidate
        n += 1


def _wav_frames(path: Path) -> tuple[int, int]:
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises RuntimeError/LibsndfileError
        raise AudioError(f"Cannot read {path}: {exc}") from exc
    return int(info.frames), int(info.samplerate)


def _is_alive(journal: Path, entry: JournalEntry) -> bool:
    """Is the recorder that owns this entry still running?"""
    if fcntl is not None:
        try:
            with open(journal, encoding="utf-8") as fh:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return True
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
                return False
        except OSError:
            return False
    return _pid_alive(entry.pid)  # pragma: no cover - Windows


def _pid_alive(pid: int) -> bool:  # pragma: no cover - Windows fallback
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def finalize_file(partial: Path, final: Path) -> Path:
    """Move the finished partial WAV to `final` (transcoding to FLAC if asked); return the path."""
    target = unique_path(final)
    if target.suffix.lower() == ".wav":
        os.replace(partial, target)
        return target
    import soundfile as sf

    tmp = sidecars.encoding_path(target)
    try:
        with (
            sf.SoundFile(str(partial)) as src,
            sf.SoundFile(
                str(tmp),
                "w",
                samplerate=src.samplerate,
                channels=src.channels,
                subtype="PCM_16",
                format=target.suffix.lstrip(".").upper(),
            ) as dst,
        ):
            for block in src.blocks(blocksize=src.samplerate * 10, dtype="float32"):
                dst.write(block)
        os.replace(tmp, target)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        log.exception("could not encode %s", target)
        # Keep the audio: fall back to the WAV next to the requested name.
        fallback = unique_path(target.with_suffix(".wav"))
        os.replace(partial, fallback)
        log.warning("kept the recording as %s (%s)", fallback, exc)
        return fallback
    partial.unlink(missing_ok=True)
    return target
