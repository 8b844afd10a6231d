"""Probe and decode any audio/video file (PyAV/FFmpeg) to 16 kHz mono float32, streamed in chunks.

Everything here raises `AudioError` with a one-line message a user can act on; callers never
see PyAV's own exceptions.
"""

from __future__ import annotations

import logging
import os
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nojoin.errors import AudioError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
"""The rate Whisper and the diarizers expect."""

DEFAULT_CHUNK_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """What `probe()` learns about a file without decoding all of it."""

    path: Path
    duration: float  # seconds; 0.0 when the file holds no samples
    sample_rate: int
    channels: int
    has_video: bool
    codec: str
    container: str


def probe(path: str | os.PathLike[str]) -> AudioInfo:
    """Describe the first audio stream of `path`; raise AudioError if it has none or is unreadable."""
    p = _check_path(path)
    container = _open(p)
    try:
        stream = _audio_stream(container, p)
        has_video = any(s.type == "video" for s in container.streams)
        duration = _duration(container, stream)
        ctx = stream.codec_context
        channels = int(getattr(ctx, "channels", 0) or getattr(stream, "channels", 0) or 0)
        rate = int(ctx.sample_rate or stream.rate or 0)
        return AudioInfo(
            path=p,
            duration=duration,
            sample_rate=rate,
            channels=channels,
            has_video=has_video,
            codec=str(ctx.name),
            container=str(container.format.name),
        )
    finally:
        container.close()


def iter_chunks(
    path: str | os.PathLike[str],
    *,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    sample_rate: int = SAMPLE_RATE,
) -> Iterator[npt.NDArray[np.float32]]:
    """Yield the audio of `path` as mono float32 in [-1, 1] at `sample_rate`, `chunk_seconds` at a time.

    Memory stays bounded by one chunk plus FFmpeg's own buffers, whatever the file's length.
    The last chunk may be shorter. A file whose audio track holds no samples yields nothing.
    """
    import av

    if chunk_seconds <= 0:
        raise ValueError("chunk_seconds must be positive")
    p = _check_path(path)
    chunk_len = max(1, int(round(chunk_seconds * sample_rate)))
    container = _open(p)
    try:
        stream = _audio_stream(container, p)
        stream.thread_type = "AUTO"
        # Keep the source layout and average the channels ourselves: FFmpeg's stereo->mono
        # matrix adds both sides at -3 dB each, which clips loud recordings.
        resampler = av.AudioResampler(format="fltp", rate=sample_rate)
        pending: list[npt.NDArray[np.float32]] = []
        pending_len = 0
        try:
            for frame in _frames(container, stream, p):
                for out in resampler.resample(frame):
                    arr = _mono(out)
                    pending.append(arr)
                    pending_len += arr.size
                while pending_len >= chunk_len:
                    buf = np.concatenate(pending)
                    yield np.clip(buf[:chunk_len], -1.0, 1.0)
                    rest = buf[chunk_len:]
                    pending = [rest] if rest.size else []
                    pending_len = rest.size
            for out in resampler.resample(None):
                arr = _mono(out)
                pending.append(arr)
                pending_len += arr.size
        except av.FFmpegError as exc:
            raise AudioError(
                f"{p.name} is damaged and cannot be decoded ({_why(exc)}). "
                "Try re-exporting it from the program that made it."
            ) from exc
        if pending_len:
            buf = np.concatenate(pending)
            for start in range(0, buf.size, chunk_len):
                yield np.clip(buf[start : start + chunk_len], -1.0, 1.0)
    finally:
        container.close()


def decode(
    path: str | os.PathLike[str], *, sample_rate: int = SAMPLE_RATE
) -> npt.NDArray[np.float32]:
    """The whole file as one mono float32 array (for short files and tests; prefer iter_chunks)."""
    chunks = list(iter_chunks(path, sample_rate=sample_rate))
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(chunks)


def to_wav16(
    path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
) -> float:
    """Stream `path` into a 16 kHz mono 16-bit PCM WAV file; return its duration in seconds."""
    samples = 0
    with wave.open(os.fspath(out_path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        for chunk in iter_chunks(path, chunk_seconds=chunk_seconds):
            w.writeframes(float_to_pcm16(chunk).tobytes())
            samples += chunk.size
    return samples / SAMPLE_RATE


def float_to_pcm16(samples: npt.NDArray[np.float32]) -> npt.NDArray[np.int16]:
    """Float [-1, 1] to little-endian int16 PCM."""
    # x32768 and clip: the exact inverse of FFmpeg's s16 -> float (/32768), so PCM round-trips.
    scaled = np.round(np.asarray(samples, dtype=np.float64) * 32768.0)
    return np.clip(scaled, -32768, 32767).astype("<i2")


# --- helpers ---------------------------------------------------------------------------


def _check_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise AudioError(f"File not found: {p}")
    if p.is_dir():
        raise AudioError(f"{p} is a folder, not an audio or video file.")
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise AudioError(f"Cannot read {p}: {exc.strerror or exc}") from exc
    if size == 0:
        raise AudioError(f"{p.name} is empty (0 bytes); there is no audio to process.")
    if not os.access(p, os.R_OK):
        raise AudioError(f"Cannot read {p}: permission denied.")
    return p


def _open(p: Path) -> Any:
    import av

    try:
        return av.open(os.fspath(p), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise AudioError(
            f"{p.name} is not a readable audio or video file ({_why(exc)}). "
            "Use a common format such as WAV, MP3, M4A, FLAC, OGG, MP4 or MKV."
        ) from exc
    except OSError as exc:
        raise AudioError(f"Cannot read {p}: {exc.strerror or exc}") from exc


def _audio_stream(container: Any, p: Path) -> Any:
    if str(container.format.name) in _NOT_MEDIA:
        raise AudioError(
            f"{p.name} is not a readable audio or video file (it looks like text). "
            "Use a common format such as WAV, MP3, M4A, FLAC, OGG, MP4 or MKV."
        )
    streams = list(container.streams.audio)
    if not streams:
        what = "only video" if any(s.type == "video" for s in container.streams) else "no streams"
        raise AudioError(f"{p.name} has no audio track ({what}); choose a file with sound in it.")
    return streams[0]


# FFmpeg demuxers that accept almost any bytes (plain text renders as ANSI "video").
_NOT_MEDIA = frozenset({"tty"})


def _frames(container: Any, stream: Any, p: Path) -> Iterator[Any]:
    import av

    try:
        for packet in container.demux(stream):
            try:
                yield from packet.decode()
            except av.InvalidDataError as exc:
                # One bad packet should not lose the rest of a long recording.
                log.warning("skipping undecodable packet in %s: %s", p, _why(exc))
    except av.FFmpegError as exc:
        raise AudioError(
            f"{p.name} is damaged and cannot be decoded ({_why(exc)}). "
            "Try re-exporting it from the program that made it."
        ) from exc


def _duration(container: Any, stream: Any) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * Fraction(stream.time_base))
    if container.duration is not None:
        return float(container.duration) / 1_000_000.0
    # Streams without a header duration (raw ADTS, some WebM): add up the packets, no decoding.
    total = Fraction(0)
    try:
        for packet in container.demux(stream):
            if packet.duration is not None and packet.time_base is not None:
                total += packet.duration * Fraction(packet.time_base)
    except Exception:  # a damaged tail: report what was readable
        log.debug("stopped summing packet durations early", exc_info=True)
    return float(total)


def _mono(frame: Any) -> npt.NDArray[np.float32]:
    planes = frame.to_ndarray()  # (channels, samples) for planar float
    if planes.ndim == 2 and planes.shape[0] > 1:
        return planes.mean(axis=0, dtype=np.float32)
    return planes.reshape(-1).astype(np.float32, copy=False)


def _why(exc: BaseException) -> str:
    msg = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(msg).strip().rstrip(".").splitlines()[0]
