"""Helpers for recorder tests: the test daemon handle, known speech, and signal checks."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE = 48_000

MIC_TEXT = "Good morning everyone, thank you for joining the meeting today."
SYSTEM_TEXT = "Please send the project report to everyone by Friday."


@dataclass(frozen=True)
class PulseEnv:
    server: str
    dir: Path
    speaker_sink: str = "nojoin_speaker"
    mic_feed_sink: str = "nojoin_micfeed"

    def pactl(self, *args: str) -> str:
        out = subprocess.run(
            ["pactl", *args],
            env={**os.environ, "PULSE_SERVER": self.server},
            check=True,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.strip()

    def play(self, sink: str, wav: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            ["paplay", "-d", sink, str(wav)], env={**os.environ, "PULSE_SERVER": self.server}
        )


@dataclass(frozen=True)
class Speech:
    path: Path  # 48 kHz mono 16-bit WAV
    text: str
    samples: np.ndarray  # float32 mono at RATE

    @property
    def duration(self) -> float:
        return len(self.samples) / RATE


def locate(recording: np.ndarray, reference: np.ndarray) -> tuple[int, float]:
    """(offset in samples, normalised correlation 0..1) of `reference` within `recording`."""
    n = len(recording) + len(reference) - 1
    size = 1 << (n - 1).bit_length()
    spec = np.fft.rfft(recording, size) * np.conj(np.fft.rfft(reference, size))
    corr = np.fft.irfft(spec, size)[: len(recording) - len(reference) + 1]
    # Energy of each recording window the reference could sit in.
    csum = np.concatenate([[0.0], np.cumsum(recording.astype(np.float64) ** 2)])
    win = csum[len(reference) :] - csum[: len(recording) - len(reference) + 1]
    denom = np.sqrt(np.maximum(win, 1e-12)) * np.sqrt(np.sum(reference.astype(np.float64) ** 2))
    ncc = corr / denom
    # Windows that are (nearly) silent give meaningless ratios.
    ncc[win < 1e-6 * np.max(win)] = 0.0
    best = int(np.argmax(ncc))
    return best, float(ncc[best])


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def sweep_frequencies(
    x: np.ndarray, rate: int, hop: float = 0.05, win: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """(times, dominant frequency) every `hop` seconds, for windows with sound in them."""
    n = int(win * rate)
    h = int(hop * rate)
    window = np.hanning(n)
    times, freqs = [], []
    for start in range(0, len(x) - n, h):
        seg = x[start : start + n]
        if rms(seg) < 0.01:
            continue
        spec = np.abs(np.fft.rfft(seg * window, rate))  # zero-padded: 1 Hz bins
        times.append((start + n / 2) / rate)
        freqs.append(float(np.argmax(spec)))
    return np.array(times), np.array(freqs)
