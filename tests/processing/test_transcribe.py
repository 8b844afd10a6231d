"""faster-whisper wrapper in this process: device choice, windowing for long audio, accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from nojoin.processing.transcribe import WhisperTranscriber, iter_windows, pick_device, quiet_cut
from nojoin.testing.metrics import wer
from nojoin.testing.synth import SynthMeeting

SR = 16_000


def test_device_auto_is_cpu_int8_without_a_gpu() -> None:
    import ctranslate2

    if ctranslate2.get_cuda_device_count() > 0:
        assert pick_device() == ("cuda", "float16")
    else:
        assert pick_device() == ("cpu", "int8")
    assert pick_device("cpu", "float32") == ("cpu", "float32")


def test_quiet_cut_lands_in_the_silence() -> None:
    rng = np.random.default_rng(0)
    buf = rng.normal(0, 0.3, 10 * SR).astype(np.float32)
    buf[int(8.0 * SR) : int(8.3 * SR)] = 0.0
    cut = quiet_cut(buf, 4 * SR)
    assert 8.0 * SR <= cut <= 8.3 * SR


def test_windows_cover_everything_and_cut_between_turns(meeting2: SynthMeeting) -> None:
    windows = list(iter_windows(meeting2.path, window_seconds=7.0))
    assert len(windows) >= 3
    pos = 0
    for start, audio in windows:
        assert start == pos  # contiguous, nothing skipped or repeated
        pos += audio.size
    assert pos == round(meeting2.duration * SR)
    for start, _ in windows[1:]:
        t = start / SR
        assert not any(turn.start + 0.05 < t < turn.end - 0.05 for turn in meeting2.turns), t


def test_transcribe_words_and_language(whisper: WhisperTranscriber, meeting2: SynthMeeting) -> None:
    result = whisper.transcribe_wav(meeting2.path)
    assert result.language == "en"
    text = " ".join(s.text for s in result.segments)
    assert wer(meeting2.reference_text, text) < 0.15
    words = [w for s in result.segments for w in s.words]
    assert len(words) > 50
    assert all(0 <= w.start <= w.end <= meeting2.duration + 0.5 for w in words)
    assert all(a.start <= b.start for a, b in zip(words, words[1:], strict=False))


def test_windowed_long_audio_matches_whole(
    whisper: WhisperTranscriber, meeting2: SynthMeeting
) -> None:
    """Cutting into windows (as for hour-long files) keeps the text and shifts the times."""
    seen: list[float] = []
    result = whisper.transcribe_wav(meeting2.path, window_seconds=7.0, on_progress=seen.append)
    text = " ".join(s.text for s in result.segments)
    assert wer(meeting2.reference_text, text) < 0.2
    last_turn = meeting2.turns[-1]
    assert result.segments[-1].end == pytest.approx(last_turn.end, abs=1.0)
    assert seen == sorted(seen) and seen[-1] == pytest.approx(meeting2.duration, abs=0.01)


def test_batched_pipeline_gives_the_same_words(
    whisper: WhisperTranscriber, meeting2: SynthMeeting
) -> None:
    result = whisper.transcribe_wav(meeting2.path, batched=True)
    assert wer(meeting2.reference_text, " ".join(s.text for s in result.segments)) < 0.15
    assert any(s.words for s in result.segments)


def test_silence_and_tiny_audio_give_no_segments(whisper: WhisperTranscriber) -> None:
    assert whisper.transcribe_array(np.zeros(10 * SR, dtype=np.float32)).segments == []
    assert whisper.transcribe_array(np.zeros(SR // 20, dtype=np.float32)).segments == []


def test_language_the_model_cannot_do_is_refused(
    whisper: WhisperTranscriber, meeting2: SynthMeeting
) -> None:
    from nojoin.errors import ProcessingError

    with pytest.raises(ProcessingError, match="only understands English.*multilingual"):
        whisper.transcribe_wav(meeting2.path, language="de")
    assert whisper.transcribe_wav(meeting2.path, language="en").language == "en"


def test_unknown_language_code_is_refused(meeting2: SynthMeeting) -> None:
    from nojoin.errors import ProcessingError
    from nojoin.processing.models import resolve_model

    base = WhisperTranscriber(resolve_model("base"), threads=2)
    with pytest.raises(ProcessingError, match="Unknown language code 'klingon'"):
        base.transcribe_wav(meeting2.path, language="klingon")
