"""Keep several live audio sources on one timeline: gaps filled, clock drift corrected.

Each source (microphone, system loopback) runs on its own device clock and delivers blocks
whenever its driver likes. A common clock is the reference (the recorder passes recording time:
capture time on the monotonic clock minus pauses): after `restart(t0)`
a source should have delivered `(t - t0) * rate` frames by time `t`. The deficit is watched
over a sliding window so that blocks that merely arrive late (scheduling jitter) are not
mistaken for lost ones:

- persistently behind by more than `gap_threshold`  -> data was lost (buffer overrun, stalled
  device): that much silence is inserted and counted as a gap;
- persistently behind/ahead by more than `drift_tolerance` -> clock drift: silence inserted or
  the newest surplus frames dropped, counted as a drift correction.

So channels never drift apart by more than about `drift_tolerance` plus one block, however
long the recording. Pure numpy, no devices: unit-testable with synthetic clocks.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

Block = npt.NDArray[np.float32]


class _Buffer:
    """Frames waiting to be written, as a list of 1-D blocks."""

    def __init__(self) -> None:
        self.blocks: collections.deque[Block] = collections.deque()
        self.size = 0

    def append(self, block: Block) -> None:
        if block.size:
            self.blocks.append(block)
            self.size += block.size

    def pad(self, n: int) -> None:
        if n > 0:
            self.append(np.zeros(n, dtype=np.float32))

    def trim_tail(self, n: int) -> int:
        """Drop up to `n` of the newest frames; return how many were dropped."""
        dropped = 0
        while dropped < n and self.blocks:
            last = self.blocks[-1]
            cut = min(n - dropped, last.size)
            if cut == last.size:
                self.blocks.pop()
            else:
                self.blocks[-1] = last[: last.size - cut]
            dropped += cut
        self.size -= dropped
        return dropped

    def pop(self, n: int) -> Block:
        """The oldest `n` frames (n <= size)."""
        out = np.empty(n, dtype=np.float32)
        filled = 0
        while filled < n:
            head = self.blocks[0]
            take = min(n - filled, head.size)
            out[filled : filled + take] = head[:take]
            if take == head.size:
                self.blocks.popleft()
            else:
                self.blocks[0] = head[take:]
            filled += take
        self.size -= n
        return out

    def clear(self) -> None:
        self.blocks.clear()
        self.size = 0


@dataclass(slots=True)
class _Clock:
    received: int = 0
    last_arrival: float | None = None
    window: collections.deque[tuple[float, int]] = field(default_factory=collections.deque)


class Aligner:
    """Merges N mono sources into (frames, N) blocks that stay sample-aligned."""

    def __init__(
        self,
        samplerate: int,
        sources: int = 2,
        *,
        window: float = 2.0,
        drift_tolerance: float = 0.08,
        gap_threshold: float = 0.2,
        stall_timeout: float = 2.0,
    ) -> None:
        self.rate = samplerate
        self.n = sources
        self.window = window
        self.drift_frames = int(drift_tolerance * samplerate)
        self.gap_frames = int(gap_threshold * samplerate)
        self.stall_timeout = stall_timeout
        self.buffers = [_Buffer() for _ in range(sources)]
        self.clocks = [_Clock() for _ in range(sources)]
        self.alive = [True] * sources
        self.t0: float | None = None
        self.gaps = 0
        self.gap_seconds = 0.0
        self.drift_corrections = 0

    # ------------------------------------------------------------------ input

    def restart(self, t0: float) -> None:
        """Start (or resume after a pause) at wall time `t0`; blocks that arrived earlier are dropped."""
        self.t0 = t0
        for buf in self.buffers:
            buf.clear()
        self.clocks = [_Clock() for _ in range(self.n)]

    def push(self, source: int, block: Block, t: float) -> bool:
        """Add a block that arrived at wall time `t`; False if it was dropped (before t0 / dead)."""
        if self.t0 is None or t <= self.t0 or not self.alive[source]:
            return False
        clock = self.clocks[source]
        self.buffers[source].append(np.asarray(block, dtype=np.float32).reshape(-1))
        clock.received += int(block.shape[0])
        clock.last_arrival = t
        self._check(source, t)
        return True

    def mark_dead(self, source: int) -> None:
        """The device is gone: from now on this channel is filled with silence."""
        self.alive[source] = False

    def tick(self, t: float) -> None:
        """Called regularly: a live source silent for `stall_timeout` is padded to the present."""
        if self.t0 is None:
            return
        for i in range(self.n):
            if not self.alive[i]:
                continue
            clock = self.clocks[i]
            since = clock.last_arrival if clock.last_arrival is not None else self.t0
            if t - since < self.stall_timeout:
                continue
            missing = self._expected(t) - clock.received
            if missing > self.gap_frames:
                self._pad(i, missing, gap=True)
                clock.window.clear()
                clock.last_arrival = t

    # ------------------------------------------------------------------ output

    def take(self) -> npt.NDArray[np.float32]:
        """Frames every live source has delivered, as a (frames, N) array; dead ones are silent."""
        live = [self.buffers[i].size for i in range(self.n) if self.alive[i]]
        if not live:
            return self.drain()
        n = min(live)
        for i in range(self.n):
            if not self.alive[i] and self.buffers[i].size < n:
                self.buffers[i].pad(n - self.buffers[i].size)
        return self._pop(n)

    def drain(self) -> npt.NDArray[np.float32]:
        """Everything buffered (pause/stop): shorter channels are padded with silence."""
        n = max(b.size for b in self.buffers)
        for b in self.buffers:
            b.pad(n - b.size)
        return self._pop(n)

    # ------------------------------------------------------------------ internals

    def _pop(self, n: int) -> npt.NDArray[np.float32]:
        out = np.empty((n, self.n), dtype=np.float32)
        for i, buf in enumerate(self.buffers):
            if buf.size >= n:
                out[:, i] = buf.pop(n)
            else:  # only reachable for dead channels that were already padded
                out[:, i] = 0.0
        return out

    def _expected(self, t: float) -> int:
        assert self.t0 is not None
        return int((t - self.t0) * self.rate)

    def _check(self, source: int, t: float) -> None:
        clock = self.clocks[source]
        deficit = self._expected(t) - clock.received
        clock.window.append((t, deficit))
        while clock.window and clock.window[0][0] < t - self.window:
            clock.window.popleft()
        assert self.t0 is not None
        if t - self.t0 < self.window or clock.window[0][0] > t - self.window * 0.9:
            return  # not a full window of evidence yet
        low = min(d for _, d in clock.window)
        high = max(d for _, d in clock.window)
        if low > self.drift_frames:
            self._pad(source, low, gap=low > self.gap_frames)
        elif high < -self.drift_frames:
            dropped = self.buffers[source].trim_tail(-high)
            if dropped:
                clock.received -= dropped
                clock.window = collections.deque((tt, d + dropped) for tt, d in clock.window)
                self.drift_corrections += 1

    def _pad(self, source: int, frames: int, *, gap: bool) -> None:
        clock = self.clocks[source]
        self.buffers[source].pad(frames)
        clock.received += frames
        clock.window = collections.deque((tt, d - frames) for tt, d in clock.window)
        if gap:
            self.gaps += 1
            self.gap_seconds += frames / self.rate
        else:
            self.drift_corrections += 1
