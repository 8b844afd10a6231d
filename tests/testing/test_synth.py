"""The test-meeting generator: ground truth matches the audio, output is deterministic and cached."""

from __future__ import annotations

import hashlib
import wave
from pathlib import Path

import numpy as np
import pytest

from nojoin.testing.synth import THREE_SPEAKERS, TWO_SPEAKERS, VOICES, make_meeting, make_silence


def read(path: Path) -> tuple[int, np.ndarray]:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        return w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if x.size else 0.0


def test_truth_matches_the_audio(tmp_path: Path) -> None:
    m = make_meeting(THREE_SPEAKERS, tmp_path)
    rate, pcm = read(m.path)
    assert rate == 16_000
    assert m.speakers == ["alice", "bob", "carol"]
    assert abs(pcm.size / rate - m.duration) < 0.01
    assert [t.text for t in m.turns] == [text for _, text in THREE_SPEAKERS]
    for prev, turn in zip(m.turns, m.turns[1:], strict=False):
        assert prev.end < turn.start  # ordered, no overlap, a gap between turns
        gap = pcm[int(prev.end * rate) + 80 : int(turn.start * rate) - 80]
        assert rms(gap) == 0.0  # the gap is digital silence
    for turn in m.turns:
        speech = pcm[int(turn.start * rate) : int(turn.end * rate)]
        assert rms(speech) > 500  # someone is talking for the whole turn...
        assert rms(speech[:800]) > 30 and rms(speech[-800:]) > 30  # ...from edge to edge


def test_deterministic_and_cached(tmp_path: Path) -> None:
    a = make_meeting(TWO_SPEAKERS, tmp_path / "one")
    b = make_meeting(TWO_SPEAKERS, tmp_path / "two")
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    assert digest(a.path) == digest(b.path)
    assert a.turns == b.turns
    mtime = a.path.stat().st_mtime_ns
    again = make_meeting(TWO_SPEAKERS, tmp_path / "one")
    assert again.path == a.path and again.path.stat().st_mtime_ns == mtime  # served from cache
    assert again.turns == a.turns
    assert not list((tmp_path / "one").glob("*.tmp")) and not list(
        (tmp_path / "one").glob("synth-*")
    )


def test_different_inputs_get_different_files(tmp_path: Path) -> None:
    a = make_meeting(TWO_SPEAKERS, tmp_path)
    b = make_meeting(TWO_SPEAKERS, tmp_path, gap=1.0)
    assert a.path != b.path
    assert b.duration > a.duration


def test_voices_differ(tmp_path: Path) -> None:
    """Same sentence, different speakers: different lengths and spectra, not just copies."""
    text = "We should meet again next week."
    spectra = []
    for name in ("alice", "bob", "carol"):
        m = make_meeting([(name, text)], tmp_path)
        _, pcm = read(m.path)
        spec = np.abs(np.fft.rfft(pcm.astype(np.float64)))
        freqs = np.fft.rfftfreq(pcm.size, 1 / 16_000)
        spectra.append(float((spec * freqs).sum() / spec.sum()))  # spectral centroid
    assert len({round(c, -1) for c in spectra}) == 3


def test_min_duration_repeats_the_script(tmp_path: Path) -> None:
    m = make_meeting(TWO_SPEAKERS, tmp_path, min_duration=60.0)
    assert m.duration >= 60.0
    assert len(m.turns) % len(TWO_SPEAKERS) == 0 and len(m.turns) > len(TWO_SPEAKERS)
    assert m.turns[len(TWO_SPEAKERS)].text == TWO_SPEAKERS[0][1]


def test_bad_script_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown speaker"):
        make_meeting([("zelda", "hello")], tmp_path)
    with pytest.raises(ValueError, match="at least one turn"):
        make_meeting([], tmp_path)
    assert set(VOICES) >= {"alice", "bob", "carol"}


def test_make_silence(tmp_path: Path) -> None:
    p = make_silence(tmp_path / "s.wav", 1.5)
    rate, pcm = read(p)
    assert pcm.size == int(1.5 * rate) and not pcm.any()
