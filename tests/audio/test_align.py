"""The aligner on simulated device clocks: gaps filled, jitter tolerated, drift bounded.

Each simulated source delivers blocks whose samples hold their own capture index (1, 2, 3...),
i.e. the capture time in device frames, so comparing the columns shows how far apart in time
the two channels are at every point of the output.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from nojoin.audio.align import Aligner

RATE = 48_000
BLOCK = 2400  # 50 ms


def source(
    seconds: float,
    *,
    rate_factor: float = 1.0,
    lose: tuple[float, float] | None = None,
    late: tuple[float, float] | None = None,
    stop_at: float | None = None,
) -> Iterator[tuple[float, np.ndarray]]:
    """(arrival time, block) for a device whose clock runs `rate_factor` times nominal.

    lose=(at, span): blocks captured in that span never arrive (overrun).
    late=(at, span): blocks captured in that span arrive together at its end (scheduling stall).
    """
    period = BLOCK / (RATE * rate_factor)
    index = 1
    t = period
    while t <= seconds:
        block = np.arange(index, index + BLOCK, dtype=np.float32)
        index += BLOCK
        arrival = t
        if stop_at is not None and t >= stop_at:
            return
        if lose and lose[0] <= t < lose[0] + lose[1]:
            t += period
            continue
        if late and late[0] <= t < late[0] + late[1]:
            arrival = late[0] + late[1]
        yield arrival, block
        t += period


def run(aligner: Aligner, *streams: Iterator[tuple[float, np.ndarray]]) -> np.ndarray:
    events = sorted(
        ((t, i, b) for i, s in enumerate(streams) for t, b in s), key=lambda e: (e[0], e[1])
    )
    aligner.restart(0.0)
    out = []
    next_take = 0.1
    for t, i, b in events:
        while t >= next_take:
            aligner.tick(next_take)
            out.append(aligner.take())
            next_take += 0.1
        aligner.push(i, b, t)
    out.append(aligner.drain())
    return np.concatenate(out)


def offsets(frames: np.ndarray, rate_factor: float = 1.0) -> np.ndarray:
    """Capture-time difference (in nominal frames) between the channels where both hold real
    (non-padded) samples; channel 1's clock runs `rate_factor` times nominal."""
    both = (frames[:, 0] > 0) & (frames[:, 1] > 0)
    t1 = frames[both, 1].astype(np.float64) / rate_factor
    return np.round(t1 - frames[both, 0]).astype(np.int64)


def test_steady_sources_stay_aligned_without_corrections() -> None:
    al = Aligner(RATE)
    out = run(al, source(60), source(60))
    assert al.gaps == 0 and al.drift_corrections == 0
    assert abs(len(out) - 60 * RATE) <= BLOCK
    assert np.all(offsets(out) == 0)


def test_lost_blocks_are_counted_and_filled_so_channels_realign() -> None:
    al = Aligner(RATE)
    out = run(al, source(20), source(20, lose=(5.0, 0.5)))
    assert al.gaps == 1
    assert al.gap_seconds == pytest.approx(0.5, abs=0.06)
    # Until the gap is confirmed (one window later) channel 1 runs early by the lost span;
    # then the silence put in brings it back in step for good.
    off = offsets(out)
    assert np.max(np.abs(off)) <= 0.5 * RATE + BLOCK
    assert np.all(np.abs(offsets(out[int(8 * RATE) :])) <= 2)
    assert np.all(offsets(out[: int(5 * RATE)]) == 0)
    assert abs(len(out) - 20 * RATE) <= 2 * BLOCK


def test_late_bursts_are_not_gaps() -> None:
    al = Aligner(RATE)
    out = run(al, source(20), source(20, late=(5.0, 0.6)))
    assert al.gaps == 0 and al.drift_corrections == 0
    assert np.all(offsets(out) == 0)


def test_clock_drift_never_lets_channels_drift_apart() -> None:
    al = Aligner(RATE)
    # 1500 ppm fast: 0.3 s of extra audio over 200 s if nothing corrected it.
    out = run(al, source(200), source(200, rate_factor=1.0015))
    assert al.gaps == 0
    assert al.drift_corrections >= 2
    off = offsets(out, rate_factor=1.0015)
    assert np.max(np.abs(off)) <= al.drift_frames + 2 * BLOCK
    # Uncorrected, the offset would have reached 0.3 s by the end.
    assert np.max(np.abs(off[-RATE:])) <= al.drift_frames + 2 * BLOCK
    assert abs(len(out) - 200 * RATE) <= al.drift_frames + 2 * BLOCK


def test_a_stalled_source_is_padded_and_the_other_keeps_flowing() -> None:
    al = Aligner(RATE, stall_timeout=1.0)
    out = run(al, source(10), source(10, stop_at=4.0))
    assert al.gaps >= 1
    assert abs(len(out) - 10 * RATE) <= 2 * BLOCK
    assert np.all(out[int(5.5 * RATE) : int(9 * RATE), 1] == 0)
    assert np.all(out[int(5.5 * RATE) : int(9 * RATE), 0] > 0)


def test_dead_source_is_silent_and_restart_drops_old_blocks() -> None:
    al = Aligner(RATE)
    al.restart(0.0)
    al.mark_dead(1)
    assert al.push(0, np.ones(BLOCK, dtype=np.float32), 0.05)
    assert not al.push(1, np.ones(BLOCK, dtype=np.float32), 0.05)
    frames = al.take()
    assert frames.shape == (BLOCK, 2) and np.all(frames[:, 0] == 1) and np.all(frames[:, 1] == 0)
    al.restart(1.0)
    assert not al.push(0, np.ones(BLOCK, dtype=np.float32), 0.9)
    assert al.take().shape == (0, 2)
