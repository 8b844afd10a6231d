"""Crash recovery without devices: journal entries, WAV header repair, titles."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import wave
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from nojoin.audio import decode
from nojoin.audio.recovery import (
    JournalLock,
    find_interrupted,
    journal_dir,
    new_entry,
    recover,
    repair_wav,
)
from nojoin.audio.title import meeting_title
from nojoin.errors import AudioError

RATE = 48_000


def crashed_recording(folder: Path, seconds: float, final_name: str = "meeting.wav") -> Path:
    """Run a child that writes `seconds` of a 440 Hz tone as the recorder does, then dies hard
    (os._exit: no close, so the WAV header still says 0 bytes)."""
    partial = folder / "meeting.partial.wav"
    code = textwrap.dedent(
        f"""
        import os, numpy as np, soundfile as sf
        from datetime import datetime, timezone
        from pathlib import Path
        from nojoin.audio.recovery import JournalLock, new_entry
        partial, final = Path({str(partial)!r}), Path({str(folder / final_name)!r})
        f = sf.SoundFile(str(partial), "w", samplerate={RATE}, channels=2, subtype="PCM_16",
                         format="WAV")
        JournalLock(new_entry(partial, final, {RATE}, 2,
                              datetime(2026, 11, 18, 14, 5, tzinfo=timezone.utc),
                              "Wednesday afternoon meeting"))
        t = np.arange(int({seconds} * {RATE})) / {RATE}
        tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype("float32")
        f.write(np.stack([tone, np.zeros_like(tone)], axis=1))
        f.flush()
        os._exit(9)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], env=os.environ.copy(), timeout=60)
    assert proc.returncode == 9
    return partial


def test_interrupted_recording_is_found_and_recovered_with_its_real_duration(
    tmp_path: Path,
) -> None:
    partial = crashed_recording(tmp_path, 2.5)
    # Strict readers believe the header, which says "no data" until the repair.
    with pytest.raises(wave.Error):
        wave.open(str(partial)).close()
    (entry,) = find_interrupted()
    assert entry.title == "Wednesday afternoon meeting"
    rec = recover(entry)
    assert rec.path == tmp_path / "meeting.wav" and not partial.exists()
    assert rec.duration == pytest.approx(2.5, abs=1e-3)
    assert rec.started_at == datetime.fromisoformat("2026-11-18T14:05:00+00:00")
    data, rate = sf.read(str(rec.path), dtype="float32")
    assert rate == RATE and data.shape == (int(2.5 * RATE), 2)
    assert np.max(np.abs(data[:, 0])) == pytest.approx(0.5, abs=0.01)
    assert decode.probe(rec.path).duration == pytest.approx(2.5, abs=0.01)
    with wave.open(str(rec.path)) as w:
        assert w.getnframes() == int(2.5 * RATE)
    assert find_interrupted() == [] and list(journal_dir().iterdir()) == []


def test_recovery_to_flac_and_name_collisions(tmp_path: Path) -> None:
    (tmp_path / "meeting.flac").write_bytes(b"someone else's file")
    crashed_recording(tmp_path, 1.0, final_name="meeting.flac")
    (entry,) = find_interrupted()
    rec = recover(entry)
    assert rec.path == tmp_path / "meeting-2.flac"
    assert sf.info(str(rec.path)).format == "FLAC"
    assert rec.duration == pytest.approx(1.0, abs=1e-3)
    assert (tmp_path / "meeting.flac").read_bytes() == b"someone else's file"


def test_a_running_recorder_is_not_reported_as_interrupted(tmp_path: Path) -> None:
    partial = tmp_path / "live.partial.wav"
    partial.write_bytes(b"")
    lock = JournalLock(
        new_entry(partial, tmp_path / "live.wav", RATE, 2, datetime.now().astimezone(), "t")
    )
    try:
        assert find_interrupted() == []
    finally:
        lock.release(delete=True)
    assert list(journal_dir().iterdir()) == []


def test_repair_handles_a_torn_last_frame_and_rejects_non_wav(tmp_path: Path) -> None:
    path = tmp_path / "torn.wav"
    with sf.SoundFile(str(path), "w", RATE, 2, "PCM_16", format="WAV") as f:
        f.write(np.full((1000, 2), 0.25, dtype=np.float32))
    with open(path, "ab") as fh:
        fh.write(b"\x01\x02\x03")  # half a frame written when the process died
    assert repair_wav(path) == 1000
    assert sf.info(str(path)).frames == 1000

    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(AudioError, match="not a WAV file"):
        repair_wav(junk)


def test_recovery_with_no_audio_cleans_up(tmp_path: Path) -> None:
    crashed_recording(tmp_path, 0.0)
    (entry,) = find_interrupted()
    rec = recover(entry)
    assert rec.path is None and rec.duration == 0.0
    assert list(tmp_path.glob("meeting*")) == [] and find_interrupted() == []


def test_cli_recovers_into_the_library(tmp_path: Path) -> None:
    crashed_recording(tmp_path, 1.5)
    from nojoin.cli.record_cmd import recover_interrupted
    from nojoin.library import Library

    assert recover_interrupted() == 1
    with Library() as lib:
        (meeting,) = lib.list_meetings()
    assert meeting.title == "Wednesday afternoon meeting"
    assert meeting.duration == pytest.approx(1.5, abs=1e-3)
    assert Path(meeting.audio_path or "") == tmp_path / "meeting.wav"
    assert recover_interrupted() == 0


@pytest.mark.parametrize(
    ("when", "title"),
    [
        ("2026-11-18T14:30:00", "Wednesday afternoon meeting"),
        ("2026-11-16T09:00:00", "Monday morning meeting"),
        ("2026-11-20T19:45:00", "Friday evening meeting"),
        ("2026-11-22T02:10:00", "Sunday night meeting"),
    ],
)
def test_human_titles(when: str, title: str) -> None:
    local = datetime.fromisoformat(when).astimezone()  # naive = local time
    assert meeting_title(local) == title
