"""Record the microphone and the system audio (speaker loopback) together, crash-safely.

Qt-free: the GUI wraps a `Recorder` in a QObject adapter that implements `RecorderListener`
by emitting signals. The file on disk has two channels, 0 = microphone and 1 = system audio;
the transcription mix is their average (`nojoin.audio.decode` downmixes when it decodes).

Threads: one reader per source (blocking `soundcard` reads) and one writer that aligns the
sources (`Aligner`), writes and fsyncs the file at least every second, meters levels and sends
events. Listener methods are therefore called on the writer thread (and `state_changed` also on
the thread that calls start/pause/resume/stop); a Qt adapter's signals queue them to the UI.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from nojoin import paths, sidecars
from nojoin.audio.align import Aligner
from nojoin.audio.recovery import (
    JournalLock,
    finalize_file,
    new_entry,
    repair_wav,
    unique_path,
)
from nojoin.audio.saving import save_recording
from nojoin.audio.title import meeting_title
from nojoin.errors import AudioError
from nojoin.models import Meeting, MeetingStore

log = logging.getLogger(__name__)

DEFAULT_SAMPLERATE = 48_000
FLUSH_INTERVAL = 1.0  # seconds between fsyncs: a power cut loses at most this much
LEVEL_INTERVAL = 0.1  # ~10 Hz meters
START_TIMEOUT = 10.0
DEVICE_CHECK_INTERVAL = 1.0  # seconds between checks that a device is still plugged in


class Source(enum.IntEnum):
    """The two channels of a recording, in file order."""

    MIC = 0
    SYSTEM = 1

    @property
    def label(self) -> str:
        return "microphone" if self is Source.MIC else "system audio"


class RecorderState(enum.StrEnum):
    IDLE = "idle"
    STARTING = "starting"
    RECORDING = "recording"
    PAUSED = "paused"
    STOPPED = "stopped"
    FAILED = "failed"  # every device was lost; the audio so far is kept, call stop() to save it


@dataclass(frozen=True, slots=True)
class SourceLevel:
    """Linear levels (0..1) over the last metering interval."""

    rms: float
    peak: float

    @property
    def rms_db(self) -> float:
        return 20.0 * float(np.log10(max(self.rms, 1e-6)))


@dataclass(frozen=True, slots=True)
class Levels:
    mic: SourceLevel
    system: SourceLevel
    elapsed: float  # seconds recorded so far (pauses excluded)


@dataclass(frozen=True, slots=True)
class RecordingResult:
    """What `stop()` returns. `path` is None when the recording was discarded."""

    path: Path | None
    duration: float
    samplerate: int
    started_at: datetime
    ended_at: datetime
    title: str
    gaps: int
    gap_seconds: float
    drift_corrections: int
    lost_sources: tuple[Source, ...]
    discarded: bool
    meeting: Meeting | None = None


class RecorderListener(Protocol):
    """Events a recorder sends. Subclass `RecorderEvents` to implement only some of them.

    - `state_changed(state)`: every transition (IDLE -> STARTING -> RECORDING <-> PAUSED ->
      STOPPED, or -> FAILED when every device is gone).
    - `levels(levels)`: about 10 times a second while running (also while paused, so meters
      keep moving).
    - `device_lost(source, message)`: one device disappeared mid-recording; its channel is
      silent from then on and the rest keeps recording.
    - `error(message)`: something the user should know that did not stop the recording (or,
      with FAILED, did).
    - `finished(result)`: after `stop()` saved (or discarded) the recording.
    """

    def state_changed(self, state: RecorderState) -> None: ...

    def levels(self, levels: Levels) -> None: ...

    def device_lost(self, source: Source, message: str) -> None: ...

    def error(self, message: str) -> None: ...

    def finished(self, result: RecordingResult) -> None: ...


class RecorderEvents:
    """A listener that ignores everything; override what you need."""

    def state_changed(self, state: RecorderState) -> None:
        pass

    def levels(self, levels: Levels) -> None:
        pass

    def device_lost(self, source: Source, message: str) -> None:
        pass

    def error(self, message: str) -> None:
        pass

    def finished(self, result: RecordingResult) -> None:
        pass


SavedHook = Callable[[Meeting, RecordingResult], None]
"""Called after a recording became a library meeting, e.g. to start auto-processing."""


def _stream_backlog(rec: Any) -> float:
    """Seconds of captured audio not yet read (PulseAudio's record latency); 0 if unknown."""
    try:
        value = float(rec.latency)
    except Exception:  # only the PulseAudio backend of soundcard reports it
        return 0.0
    return value if 0.0 <= value < 30.0 else 0.0


def default_output_path(when: datetime | None = None) -> Path:
    moment = (when or datetime.now().astimezone()).astimezone()
    return unique_path(paths.audio_dir() / f"recording-{moment:%Y%m%d-%H%M%S}.wav")


def partial_path_for(final: Path) -> Path:
    return sidecars.partial_path(final)


def mix_to_mono(frames: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The transcription mix of (frames, channels) audio: the channel average."""
    if frames.ndim == 1:
        return frames.astype(np.float32, copy=False)
    mixed: npt.NDArray[np.float32] = frames.mean(axis=1, dtype=np.float32)
    return mixed


class Recorder:
    """Microphone + system-audio recorder.

    >>> rec = Recorder(mic=None, speaker=None, listener=my_listener, store=library)
    >>> rec.start()      # blocks until both devices deliver audio (about a second)
    >>> rec.pause(); rec.resume()
    >>> result = rec.stop()   # file closed, library meeting added (status recorded)

    `min_duration`: `stop()` discards recordings shorter than this (file and journal deleted,
    no meeting) unless called with `discard_short=False`.
    """

    def __init__(
        self,
        output: str | os.PathLike[str] | None = None,
        *,
        mic: str | None = None,
        speaker: str | None = None,
        record_mic: bool = True,
        record_system: bool = True,
        samplerate: int = DEFAULT_SAMPLERATE,
        block_seconds: float = 0.05,
        min_duration: float = 0.0,
        title: str | None = None,
        listener: RecorderListener | None = None,
        store: MeetingStore | None = None,
        on_saved: SavedHook | None = None,
    ) -> None:
        if not (record_mic or record_system):
            raise AudioError("Nothing to record: enable the microphone, the system audio or both.")
        self.output = Path(output).expanduser() if output is not None else None
        if self.output is not None and self.output.suffix.lower() not in (".wav", ".flac"):
            raise AudioError(f"Cannot record to {self.output.name}: use a .wav or .flac file name.")
        self.mic_name = mic
        self.speaker_name = speaker
        self.enabled = (record_mic, record_system)
        self.samplerate = samplerate
        self.blocksize = max(64, int(samplerate * block_seconds))
        self.min_duration = min_duration
        self.title = title
        self.listener: RecorderListener = listener or RecorderEvents()
        self.store = store
        self.on_saved = on_saved

        self._state = RecorderState.IDLE
        self._state_lock = threading.Lock()
        self._stopping = False
        self._t0: float | None = None  # wall time (monotonic) of recording time 0
        self._pauses: list[tuple[float, float | None]] = []  # (begin, end) wall times
        self._stop_at: float | None = None
        self._queue: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._stop_readers = threading.Event()
        self._first_block = [threading.Event(), threading.Event()]
        self._caught_up = [threading.Event(), threading.Event()]
        self._start_error: list[str] = []
        self._readers: list[threading.Thread] = []
        self._writer: threading.Thread | None = None
        self._aligner = Aligner(samplerate, 2)
        self._file: Any = None
        self._journal: JournalLock | None = None
        self._frames_written = 0
        self._lost: list[Source] = []
        self._started_at: datetime | None = None
        self._final: Path | None = None
        self._partial: Path | None = None
        self._writer_error: BaseException | None = None
        self.device_names: dict[Source, str] = {}

    # ------------------------------------------------------------------ public API

    @property
    def state(self) -> RecorderState:
        return self._state

    @property
    def elapsed(self) -> float:
        """Seconds written so far (pauses excluded)."""
        return self._frames_written / self.samplerate

    @property
    def gaps(self) -> int:
        """Blocks lost by a device or buffer overrun, filled with silence."""
        return self._aligner.gaps

    @property
    def drift_corrections(self) -> int:
        return self._aligner.drift_corrections

    @property
    def partial_path(self) -> Path | None:
        """The file being written (WAV, readable at any time; fixed up on stop or recovery)."""
        return self._partial

    def start(self) -> None:
        """Open the devices and the file; return once audio is flowing. Raises AudioError."""
        if self._state is not RecorderState.IDLE:
            raise AudioError("This recorder was already started; create a new one.")
        self._set_state(RecorderState.STARTING)
        try:
            self._start()
        except BaseException:
            self._abort_start()
            self._set_state(RecorderState.IDLE)
            raise
        self._set_state(RecorderState.RECORDING)

    def pause(self) -> None:
        with self._state_lock:
            if self._state is not RecorderState.RECORDING:
                return
            self._state = RecorderState.PAUSED
            self._pauses.append((time.monotonic(), None))
        self._emit("state_changed", RecorderState.PAUSED)

    def resume(self) -> None:
        with self._state_lock:
            if self._state is not RecorderState.PAUSED:
                return
            self._state = RecorderState.RECORDING
            begin, _ = self._pauses[-1]
            self._pauses[-1] = (begin, time.monotonic())
        self._emit("state_changed", RecorderState.RECORDING)

    def stop(self, *, discard_short: bool = True) -> RecordingResult:
        """Stop, close the file and (with a store) add the meeting. Safe to call once."""
        with self._state_lock:
            if self._stopping or self._state in (
                RecorderState.IDLE,
                RecorderState.STARTING,
                RecorderState.STOPPED,
            ):
                raise AudioError("The recorder is not running.")
            self._stopping = True
        # Readers finish reading what was captured up to now (they may lag under load), then
        # the writer writes it all.
        self._stop_at = time.monotonic()
        for t in self._readers:
            t.join(timeout=3.0)  # a hung driver must not hang stop(); readers are daemons
        self._stop_readers.set()
        self._queue.put(("stop", self._stop_at))
        if self._writer is not None:
            self._writer.join()
        ended = datetime.now().astimezone()
        result = self._finish(ended, discard_short)
        self._set_state(RecorderState.STOPPED)
        self._emit("finished", result)
        return result

    # ------------------------------------------------------------------ start-up

    def _start(self) -> None:
        from nojoin.audio import devices

        inputs: list[Any | None] = [None, None]
        if self.enabled[Source.MIC]:
            mic = devices.find_microphone(self.mic_name)
            inputs[Source.MIC] = mic
            self.device_names[Source.MIC] = str(mic.name)
        if self.enabled[Source.SYSTEM]:
            spk = devices.find_speaker(self.speaker_name)
            inputs[Source.SYSTEM] = devices.find_loopback(spk)
            self.device_names[Source.SYSTEM] = str(spk.name)

        self._started_at = datetime.now().astimezone()
        self.title = self.title or meeting_title(self._started_at)
        final = self.output or default_output_path(self._started_at)
        final.parent.mkdir(parents=True, exist_ok=True)
        self._final = final
        self._partial = unique_path(partial_path_for(final))
        self._open_file(self._partial)
        entry = new_entry(self._partial, final, self.samplerate, 2, self._started_at, self.title)
        self._journal = JournalLock(entry)

        for src in Source:
            dev = inputs[src]
            if dev is None:
                self._aligner.mark_dead(src)
                self._first_block[src].set()
                self._caught_up[src].set()
                continue
            t = threading.Thread(
                target=self._read,
                args=(src, dev),
                name=f"nojoin-rec-{src.name.lower()}",
                daemon=True,
            )
            self._readers.append(t)
            t.start()
        deadline = time.monotonic() + START_TIMEOUT
        # Recording time starts once both devices deliver live sound (not a start-up backlog,
        # whose blocks cannot be stamped reliably yet): those earlier blocks are dropped.
        for src in Source:
            while not self._caught_up[src].wait(0.05):
                if self._start_error:
                    raise AudioError(self._start_error[0])
                if time.monotonic() > deadline:
                    raise AudioError(
                        f"The {src.label} device '{self.device_names.get(src, '?')}' delivered no "
                        f"audio for {START_TIMEOUT:.0f} s. Check it in your sound settings."
                    )
        if self._start_error:
            raise AudioError(self._start_error[0])
        self._t0 = time.monotonic()
        self._writer = threading.Thread(
            target=self._write_loop, name="nojoin-rec-writer", daemon=True
        )
        self._writer.start()

    def _open_file(self, path: Path) -> None:
        import soundfile as sf

        try:
            self._file = sf.SoundFile(
                str(path),
                "w",
                samplerate=self.samplerate,
                channels=2,
                subtype="PCM_16",
                format="WAV",
            )
        except Exception as exc:
            raise AudioError(f"Cannot create {path}: {exc}. Check the folder is writable.") from exc

    def _abort_start(self) -> None:
        self._stop_readers.set()
        for t in self._readers:
            t.join(timeout=3.0)
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._partial is not None:
            self._partial.unlink(missing_ok=True)
        if self._journal is not None:
            self._journal.release(delete=True)
            self._journal = None

    # ------------------------------------------------------------------ threads

    def _read(self, src: Source, device: Any) -> None:
        """Reader thread: blocking reads from one device into the queue."""
        from nojoin.audio import devices

        try:
            with device.recorder(
                samplerate=self.samplerate, channels=[-1], blocksize=self.blocksize
            ) as rec:
                next_check = time.monotonic() + DEVICE_CHECK_INTERVAL
                half_block = 0.5 * self.blocksize / self.samplerate
                while not self._stop_readers.is_set():
                    asked = time.monotonic()
                    data = rec.record(numframes=self.blocksize)
                    now = time.monotonic()
                    if now - asked >= half_block:
                        # This read had to wait for new sound: any start-up backlog is gone.
                        self._caught_up[src].set()
                    # Stamp the block with when it was captured, not when we got to read it:
                    # under CPU load reads lag and then catch up in bursts, and pause/stop/
                    # gap decisions must follow the sound, not our scheduling.
                    captured = now - _stream_backlog(rec)
                    self._queue.put(("block", src, np.ascontiguousarray(data[:, 0]), captured))
                    self._first_block[src].set()
                    stop_at = self._stop_at
                    if stop_at is not None and captured >= stop_at:
                        return  # everything up to the stop has been read
                    if now >= next_check:
                        # PulseAudio >= 14 silently moves the stream of a removed device to
                        # another one (maybe the microphone into the system channel), so
                        # look for the device itself rather than waiting for an error.
                        next_check = now + DEVICE_CHECK_INTERVAL
                        if not devices.input_present(device):
                            raise AudioError("it was disconnected")
        except Exception as exc:
            name = self.device_names.get(src, "?")
            message = (
                f"The {src.label} device '{name}' stopped working ({exc}). "
                "What was recorded so far is kept."
            )
            if not self._caught_up[src].is_set():
                self._start_error.append(
                    f"Cannot record from the {src.label} device '{name}': {exc}. "
                    "Check it is connected, or choose another one (see `nojoin devices`)."
                )
                return
            if not self._stop_readers.is_set():
                log.warning("%s", message)
                self._queue.put(("lost", src, message, time.monotonic()))

    def _write_loop(self) -> None:
        try:
            self._write_loop_inner()
        except BaseException as exc:  # disk full, etc.: keep what is on disk, tell the user
            self._writer_error = exc
            log.exception("recorder writer failed")
            self._emit(
                "error",
                f"Recording stopped: cannot write {self._partial} ({exc}). Check there is free "
                "disk space; what was recorded so far is kept.",
            )
            self._set_state(RecorderState.FAILED)

    def _timeline(self, t: float) -> tuple[float, bool]:
        """Recording time (seconds since start, pauses removed) of wall time `t`, and whether
        `t` falls inside a pause (then the time is where that pause began)."""
        assert self._t0 is not None
        r = t - self._t0
        with self._state_lock:
            pauses = list(self._pauses)
        for begin, end in pauses:
            if t < begin:
                break
            if end is None or t < end:
                return r - (t - begin), True
            r -= end - begin
        return r, False

    def _write_loop_inner(self) -> None:
        aligner = self._aligner
        aligner.restart(0.0)  # the aligner works in recording time
        last_flush = last_level = time.monotonic()
        peaks = [0.0, 0.0]
        sq = [0.0, 0.0]
        counts = [0, 0]
        while True:
            try:
                item = self._queue.get(timeout=LEVEL_INTERVAL / 4)
            except queue.Empty:
                item = None
            if item is not None:
                kind = item[0]
                if kind == "block":
                    _, src, block, captured = item
                    if block.size:
                        peaks[src] = max(peaks[src], float(np.max(np.abs(block))))
                        sq[src] += float(np.dot(block, block))
                        counts[src] += block.size
                    r, paused = self._timeline(captured)
                    stop_at = self._stop_at
                    if not paused and (stop_at is None or captured <= stop_at):
                        aligner.push(src, block, r)
                elif kind == "lost":
                    _, src, message, _t = item
                    aligner.mark_dead(src)
                    self._lost.append(src)
                    self._emit("device_lost", src, message)
                    if all(not a for a in aligner.alive):
                        self._write(aligner.drain())
                        self._file.flush()
                        self._emit(
                            "error",
                            "Every recording device is gone, so the recording stopped. "
                            "What was recorded so far is kept.",
                        )
                        self._set_state(RecorderState.FAILED)
                        return
                elif kind == "stop":
                    self._write(aligner.drain())
                    return
            now = time.monotonic()
            r_now, _ = self._timeline(now)
            aligner.tick(r_now)
            self._write(aligner.take())
            if now - last_level >= LEVEL_INTERVAL:
                levels = [
                    SourceLevel(
                        rms=float(np.sqrt(sq[i] / counts[i])) if counts[i] else 0.0, peak=peaks[i]
                    )
                    for i in range(2)
                ]
                self._emit("levels", Levels(levels[0], levels[1], self.elapsed))
                peaks, sq, counts = [0.0, 0.0], [0.0, 0.0], [0, 0]
                # Keep a steady ~10 Hz rather than drifting late by one poll each time.
                last_level = max(last_level + LEVEL_INTERVAL, now - LEVEL_INTERVAL)
            if now - last_flush >= FLUSH_INTERVAL:
                self._file.flush()  # libsndfile: sf_write_sync -> fsync
                last_flush = now

    def _write(self, frames: npt.NDArray[np.float32]) -> None:
        if frames.size:
            np.clip(frames, -1.0, 1.0, out=frames)
            self._file.write(frames)
            self._frames_written += frames.shape[0]

    # ------------------------------------------------------------------ finishing

    def _finish(self, ended: datetime, discard_short: bool) -> RecordingResult:
        assert self._partial is not None and self._final is not None
        assert self._started_at is not None
        closed = False
        if self._file is not None:
            try:
                self._file.close()  # writes the final WAV sizes
                closed = True
            except Exception as exc:  # e.g. the disk filled up: fix the sizes ourselves
                log.warning("closing %s failed (%s); repairing its header", self._partial, exc)
            self._file = None
        if closed and self._writer_error is None:
            frames = self._frames_written
        else:  # a failed write may have left part of a block: trust the file, not our count
            frames = repair_wav(self._partial)
        duration = frames / self.samplerate
        result = RecordingResult(
            path=None,
            duration=duration,
            samplerate=self.samplerate,
            started_at=self._started_at,
            ended_at=ended,
            title=self.title or "",
            gaps=self._aligner.gaps,
            gap_seconds=self._aligner.gap_seconds,
            drift_corrections=self._aligner.drift_corrections,
            lost_sources=tuple(self._lost),
            discarded=True,
        )
        if duration <= 0 or (discard_short and duration < self.min_duration):
            log.info("discarding a %.1f s recording (minimum %.1f s)", duration, self.min_duration)
            self._partial.unlink(missing_ok=True)
            if self._journal is not None:
                self._journal.release(delete=True)
            return result
        final = finalize_file(self._partial, self._final)
        if self._journal is not None:
            self._journal.release(delete=True)
        result = dataclasses.replace(result, path=final, discarded=False)
        if self.store is not None:
            meeting = save_recording(self.store, result)
            result = dataclasses.replace(result, meeting=meeting)
            if self.on_saved is not None:
                try:
                    self.on_saved(meeting, result)
                except Exception as exc:  # the recording is safe; processing can be retried
                    log.exception("auto-processing hook failed")
                    self._emit("error", f"The recording was saved, but processing failed: {exc}")
        return result

    # ------------------------------------------------------------------ events

    def _set_state(self, state: RecorderState) -> None:
        with self._state_lock:
            self._state = state
        self._emit("state_changed", state)

    def _emit(self, event: str, *args: Any) -> None:
        try:
            getattr(self.listener, event)(*args)
        except Exception:  # a broken listener must not break the recording
            log.exception("recorder listener failed in %s", event)
