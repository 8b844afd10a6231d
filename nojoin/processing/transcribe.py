"""faster-whisper transcription of a 16 kHz mono WAV, window by window so memory stays flat.

faster-whisper computes the log-mel features of everything it is given at once (about 0.6 GB
per hour of audio for the STFT alone), so long files are fed in windows of a few minutes cut at
the quietest moment near each window's end, never mid-word.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nojoin.errors import ProcessingError
from nojoin.models import Segment, Word

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
WINDOW_SECONDS = 600.0  # audio per Whisper call; bounds feature memory (~100 MB)
CUT_SEARCH_SECONDS = 30.0  # look this far back from a window's end for a quiet cut point

# Measured with benchmarks/bench_engine.py on a 2-core CPU (2-minute generated meeting, int8):
# batched was 1.0-1.5x faster (tiny.en) and 1.3-1.5x faster (base) but less accurate
# (WER 0.046 vs 0.027 for tiny.en, 0.049 vs 0.041 for base: it decodes VAD chunks without
# the previous text as context). Accuracy wins by default on CPU; `--batched` trades it for
# speed. On CUDA, where batching is what keeps the GPU busy, it is the default.
BATCHED_DEFAULT_CPU = False
BATCHED_DEFAULT_CUDA = True
BATCH_SIZE = 8


def pick_device(device: str = "auto", compute_type: str = "auto") -> tuple[str, str]:
    """(device, compute_type): CUDA float16 when CTranslate2 sees a GPU, else CPU int8."""
    dev = (device or "auto").lower()
    if dev == "auto":
        try:
            import ctranslate2

            dev = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        except Exception:  # a broken CUDA install must not stop CPU transcription
            log.debug("CUDA probe failed; using CPU", exc_info=True)
            dev = "cpu"
    if dev not in ("cpu", "cuda"):
        raise ProcessingError(f"Unknown device {device!r}; use auto, cpu or cuda.")
    ct = (compute_type or "auto").lower()
    if ct == "auto":
        ct = "float16" if dev == "cuda" else "int8"
    return dev, ct


def default_threads(threads: int) -> int:
    return threads if threads and threads > 0 else (os.cpu_count() or 1)


@dataclass(slots=True)
class TranscribeResult:
    segments: list[Segment]
    language: str | None


class WhisperTranscriber:
    """One loaded faster-whisper model; `transcribe_wav` may be called many times."""

    def __init__(
        self, model_dir: Path, *, device: str = "auto", compute_type: str = "auto", threads: int = 0
    ) -> None:
        from faster_whisper import WhisperModel

        self.device, self.compute_type = pick_device(device, compute_type)
        self.threads = default_threads(threads)
        try:
            self.model = WhisperModel(
                os.fspath(model_dir),
                device=self.device,
                compute_type=self.compute_type,
                cpu_threads=self.threads,
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ProcessingError(
                f"Cannot load the speech model in {model_dir} on {self.device} "
                f"({self.compute_type}): {exc}. Try --device cpu or another model."
            ) from exc
        self.multilingual = bool(self.model.model.is_multilingual)
        self._batched: Any = None

    def check_language(self, language: str | None) -> None:
        """Refuse a language the model cannot transcribe, before any work is done."""
        if language is None:
            return
        if not self.multilingual and language != "en":
            raise ProcessingError(
                f"This model only understands English, but language {language!r} was chosen. "
                "Choose a multilingual model (base, small, ...) or language 'en'."
            )
        from faster_whisper.tokenizer import _LANGUAGE_CODES

        if language not in _LANGUAGE_CODES:
            raise ProcessingError(
                f"Unknown language code {language!r}. Use a code such as en, de, fr or es, "
                "or 'auto' to detect the language."
            )

    def batched_default(self) -> bool:
        return BATCHED_DEFAULT_CUDA if self.device == "cuda" else BATCHED_DEFAULT_CPU

    def transcribe_array(
        self,
        audio: npt.NDArray[np.float32],
        *,
        language: str | None = None,
        vad: bool = True,
        batched: bool | None = None,
        beam_size: int = 5,
        offset: float = 0.0,
        on_progress: Callable[[float], None] | None = None,
    ) -> TranscribeResult:
        """Transcribe one window; times in the result are shifted by `offset` seconds."""
        if audio.size < SAMPLE_RATE // 10:  # under 0.1 s: nothing Whisper can decode
            return TranscribeResult([], language)
        if not self.multilingual:
            language = "en"
        use_batched = self.batched_default() if batched is None else batched
        kwargs: dict[str, Any] = {
            "language": language,
            "beam_size": beam_size,
            "word_timestamps": True,
            "vad_filter": vad,
        }
        if use_batched:
            from faster_whisper import BatchedInferencePipeline

            if self._batched is None:
                self._batched = BatchedInferencePipeline(self.model)
            if not vad:
                # The batched pipeline needs chunk boundaries; plain 30 s clips without VAD.
                step = 30 * SAMPLE_RATE
                kwargs["clip_timestamps"] = [
                    {"start": s / SAMPLE_RATE, "end": min(s + step, audio.size) / SAMPLE_RATE}
                    for s in range(0, audio.size, step)
                ]
            gen, info = self._batched.transcribe(audio, batch_size=BATCH_SIZE, **kwargs)
        else:
            gen, info = self.model.transcribe(audio, **kwargs)
        segments: list[Segment] = []
        for s in gen:
            words = [
                Word(
                    start=float(w.start) + offset,
                    end=float(w.end) + offset,
                    text=w.word,
                    probability=float(w.probability),
                )
                for w in (s.words or [])
            ]
            text = s.text.strip()
            if not text and not words:
                continue
            segments.append(
                Segment(
                    start=float(s.start) + offset, end=float(s.end) + offset, text=text, words=words
                )
            )
            if on_progress is not None:
                on_progress(float(s.end))
        return TranscribeResult(segments, info.language or language)

    def transcribe_wav(
        self,
        wav_path: Path,
        *,
        language: str | None = None,
        vad: bool = True,
        batched: bool | None = None,
        beam_size: int = 5,
        window_seconds: float = WINDOW_SECONDS,
        on_progress: Callable[[float], None] | None = None,
    ) -> TranscribeResult:
        """Transcribe a 16 kHz mono WAV window by window; `on_progress(seconds_done)`."""
        self.check_language(language)
        segments: list[Segment] = []
        detected = language
        for start, audio in iter_windows(wav_path, window_seconds):
            offset = start / SAMPLE_RATE

            def _window_progress(t: float, _offset: float = offset) -> None:
                if on_progress is not None:
                    on_progress(_offset + t)

            result = self.transcribe_array(
                audio,
                language=detected,
                vad=vad,
                batched=batched,
                beam_size=beam_size,
                offset=offset,
                on_progress=_window_progress,
            )
            segments.extend(result.segments)
            # Detect once, on the first window with speech, then keep it for the rest.
            if detected is None and result.segments:
                detected = result.language
            if on_progress is not None:
                on_progress(offset + audio.size / SAMPLE_RATE)
        if detected is None and not self.multilingual:
            detected = "en"
        return TranscribeResult(segments, detected)


def iter_windows(
    wav_path: Path, window_seconds: float = WINDOW_SECONDS
) -> Iterator[tuple[int, npt.NDArray[np.float32]]]:
    """Yield (start_sample, float32 audio) windows of a 16 kHz mono WAV, cut in quiet spots."""
    import soundfile as sf

    window = max(int(window_seconds * SAMPLE_RATE), SAMPLE_RATE)
    search = min(int(CUT_SEARCH_SECONDS * SAMPLE_RATE), window // 2)
    with sf.SoundFile(os.fspath(wav_path)) as f:
        if f.samplerate != SAMPLE_RATE or f.channels != 1:
            raise ProcessingError(f"internal: {wav_path} is not 16 kHz mono")
        total = f.frames
        pos = 0
        while pos < total:
            f.seek(pos)
            buf = f.read(min(window, total - pos), dtype="float32", always_2d=False)
            if buf.size == 0:
                break
            cut = buf.size if pos + buf.size >= total else quiet_cut(buf, search)
            yield pos, np.ascontiguousarray(buf[:cut])
            pos += cut


def quiet_cut(buf: npt.NDArray[np.float32], search: int) -> int:
    """Index of the quietest 100 ms frame in the last `search` samples of `buf` (its middle)."""
    frame = SAMPLE_RATE // 10
    tail_start = max(0, buf.size - search)
    tail = buf[tail_start:]
    n = tail.size // frame
    if n < 2:
        return buf.size
    energy = (tail[: n * frame].reshape(n, frame) ** 2).mean(axis=1)
    best = int(np.argmin(energy))
    return tail_start + best * frame + frame // 2
