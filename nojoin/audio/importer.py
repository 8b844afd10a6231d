"""Import an existing audio or video file into the library's audio folder.

The file is checked by decoding all of its audio (streamed, bounded memory) before anything is
copied, so a damaged or non-audio file is refused with a clear message and leaves nothing
behind; the copy is made under a temporary name and renamed into place only when complete.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from nojoin import paths, sidecars
from nojoin.audio import decode
from nojoin.audio.recovery import unique_path
from nojoin.errors import AudioError, CancelledError
from nojoin.models import Meeting, MeetingStatus, MeetingStore
from nojoin.processing.contract import CancelToken, Progress, ProgressCallback

log = logging.getLogger(__name__)

STAGE_IMPORTING = "importing"


@dataclass(frozen=True, slots=True)
class ImportResult:
    path: Path  # where the library keeps the audio (the copy, or the original when referenced)
    duration: float  # seconds of audio actually decodable
    info: decode.AudioInfo
    copied: bool
    meeting: Meeting | None = None


def check_audio(
    path: str | os.PathLike[str],
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> tuple[decode.AudioInfo, float]:
    """Probe and fully decode `path`; return its info and real duration, or raise AudioError."""
    info = decode.probe(path)
    samples = 0
    expected = max(info.duration, 1e-9)
    for chunk in decode.iter_chunks(path, chunk_seconds=10.0):
        if cancel is not None and cancel.cancelled:
            raise CancelledError("Import cancelled.")
        samples += chunk.size
        if progress is not None:
            progress(Progress(STAGE_IMPORTING, min(1.0, samples / decode.SAMPLE_RATE / expected)))
    duration = samples / decode.SAMPLE_RATE
    if duration <= 0.0:
        raise AudioError(
            f"{info.path.name} has an audio track but no sound could be decoded from it; "
            "it may be damaged. Try re-exporting it."
        )
    return info, duration


def import_file(
    source: str | os.PathLike[str],
    *,
    copy: bool = True,
    dest_dir: Path | None = None,
    store: MeetingStore | None = None,
    title: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> ImportResult:
    """Check `source`, copy it into the audio folder (or reference it with copy=False) and, with
    a store, add a meeting (status `recorded`). Raises AudioError, leaving nothing behind."""
    src = Path(source).expanduser()
    info, duration = check_audio(src, progress=progress, cancel=cancel)
    src = src.resolve()
    target_dir = (dest_dir or paths.audio_dir()).resolve()
    copied = False
    if copy and src.parent != target_dir:
        dest = _copy_into(src, target_dir, cancel)
        copied = True
    else:
        dest = src
    meeting: Meeting | None = None
    if store is not None:
        try:
            meeting = store.add_meeting(
                title or _title_from(src),
                audio_path=dest,
                duration=duration,
                status=MeetingStatus.RECORDED,
            )
        except BaseException:
            if copied:
                dest.unlink(missing_ok=True)
            raise
    log.info("imported %s as %s (%.1f s)", src, dest, duration)
    return ImportResult(path=dest, duration=duration, info=info, copied=copied, meeting=meeting)


def _copy_into(src: Path, target_dir: Path, cancel: CancelToken | None) -> Path:
    target_dir.mkdir(parents=True, exist_ok=True)
    dest = unique_path(target_dir / _safe_name(src.name))
    tmp = sidecars.importing_path(dest)
    try:
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            while True:
                if cancel is not None and cancel.cancelled:
                    raise CancelledError("Import cancelled.")
                buf = fin.read(1 << 20)
                if not buf:
                    break
                fout.write(buf)
            fout.flush()
            os.fsync(fout.fileno())
        shutil.copystat(src, tmp)
        os.replace(tmp, dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise AudioError(
            f"Cannot copy {src.name} into {target_dir}: {exc.strerror or exc}. "
            "Check there is free space and the folder is writable."
        ) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^\w.\- ]+", "_", name).strip(" .") or "audio"
    return cleaned[:150]


def _title_from(path: Path) -> str:
    return re.sub(r"[_\s]+", " ", path.stem).strip() or "Imported meeting"
