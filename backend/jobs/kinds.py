"""Pluggable job kinds: what a job's `params` may say and how a worker runs it.

A kind turns validated params into engine options and runs the engine. Both built-in kinds
run the same local engine the desktop app uses (LocalProcessingStrategy), so a remote result
equals a local one for the same file and options. Register more with `register()`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nojoin.models import Transcript
from nojoin.processing.contract import (
    CancelToken,
    ProcessingOptions,
    ProcessingStrategy,
    ProgressCallback,
)

TRANSCRIBE = "transcribe"
TRANSCRIBE_DIARIZE = "transcribe+diarize"


class InvalidParamsError(ValueError):
    """The job's params are not acceptable; the message says which and why."""


# Params a client may set. Everything about *where* it runs (device, threads, compute type,
# local folders) belongs to the worker host, never to the client.
_ALLOWED_PARAMS = {
    "kind",
    "model",
    "language",
    "diarize",
    "vad",
    "beam_size",
    "num_speakers",
    "min_speakers",
    "max_speakers",
}

Runner = Callable[
    [ProcessingStrategy, Path, ProcessingOptions, ProgressCallback, CancelToken], Transcript
]


def _run_engine(
    engine: ProcessingStrategy,
    audio: Path,
    options: ProcessingOptions,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> Transcript:
    return engine.process(audio, options, progress, cancel)


@dataclass(frozen=True)
class JobKind:
    name: str
    description: str
    diarize: bool
    run: Runner = _run_engine

    def options(
        self, params: Mapping[str, Any], *, allowed_models: list[str], device: str
    ) -> ProcessingOptions:
        """Engine options for validated `params` on a worker with `device`."""
        clean = validate_params(params, allowed_models=allowed_models)
        return ProcessingOptions(
            model=clean.get("model", "tiny.en"),
            language=clean.get("language"),
            device=device,
            vad=clean.get("vad", True),
            diarize=self.diarize,
            beam_size=clean.get("beam_size", 5),
            num_speakers=clean.get("num_speakers"),
            min_speakers=clean.get("min_speakers"),
            max_speakers=clean.get("max_speakers"),
        )


_REGISTRY: dict[str, JobKind] = {}


def register(kind: JobKind) -> None:
    _REGISTRY[kind.name] = kind


def get(name: str) -> JobKind:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InvalidParamsError(
            f"Unknown job kind {name!r}; use one of: {', '.join(sorted(_REGISTRY))}."
        ) from None


def names() -> list[str]:
    return sorted(_REGISTRY)


register(JobKind(TRANSCRIBE, "Transcription with word timestamps", diarize=False))
register(JobKind(TRANSCRIBE_DIARIZE, "Transcription and speaker diarization", diarize=True))


def kind_for(params: Mapping[str, Any]) -> str:
    """The kind named in params, else by `diarize` (default: with diarization, as locally)."""
    kind = params.get("kind")
    if kind is not None:
        if not isinstance(kind, str):
            raise InvalidParamsError("params.kind must be a string.")
        get(kind)
        return kind
    return TRANSCRIBE_DIARIZE if params.get("diarize", True) else TRANSCRIBE


def validate_params(params: Mapping[str, Any], *, allowed_models: list[str]) -> dict[str, Any]:
    """Check types and ranges; return the params with defaults removed for nothing."""
    unknown = sorted(set(params) - _ALLOWED_PARAMS)
    if unknown:
        raise InvalidParamsError(
            f"Unknown params {', '.join(unknown)}; allowed: {', '.join(sorted(_ALLOWED_PARAMS))}."
        )
    out = dict(params)
    model = out.get("model", "tiny.en")
    if not isinstance(model, str) or model not in allowed_models:
        raise InvalidParamsError(
            f"params.model must be one of: {', '.join(allowed_models)} (got {model!r})."
        )
    language = out.get("language")
    if language is not None and (
        not isinstance(language, str) or not (language == "auto" or 2 <= len(language) <= 8)
    ):
        raise InvalidParamsError("params.language must be a language code like 'en' or 'auto'.")
    for flag in ("diarize", "vad"):
        if flag in out and not isinstance(out[flag], bool):
            raise InvalidParamsError(f"params.{flag} must be true or false.")
    if "beam_size" in out and not _int_in(out["beam_size"], 1, 10):
        raise InvalidParamsError("params.beam_size must be an integer from 1 to 10.")
    for key in ("num_speakers", "min_speakers", "max_speakers"):
        if out.get(key) is not None and not _int_in(out[key], 1, 32):
            raise InvalidParamsError(f"params.{key} must be an integer from 1 to 32.")
    lo, hi = out.get("min_speakers"), out.get("max_speakers")
    if lo is not None and hi is not None and lo > hi:
        raise InvalidParamsError("params.min_speakers must not exceed params.max_speakers.")
    return out


def _int_in(value: object, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi
