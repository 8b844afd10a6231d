"""probe() and the streaming decoder (nojoin/audio/decode.py): formats, chunking, clear errors."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from nojoin.audio.decode import AudioInfo, decode, iter_chunks, probe, to_wav16
from nojoin.errors import AudioError
from nojoin.testing.synth import SynthMeeting


def ffmpeg(*args: str) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is needed (scripts/install-system-deps.sh)")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *args], check=True, timeout=60)


def put(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_probe_wav(meeting2: SynthMeeting) -> None:
    info = probe(meeting2.path)
    assert isinstance(info, AudioInfo)
    assert (info.sample_rate, info.channels, info.has_video, info.codec) == (
        16000,
        1,
        False,
        "pcm_s16le",
    )
    assert info.duration == pytest.approx(meeting2.duration, abs=0.01)


def test_stereo_mp3_decodes_to_16k_mono_without_clipping(
    meeting2: SynthMeeting, tmp_path: Path
) -> None:
    original = decode(meeting2.path)
    stereo = tmp_path / "stereo.wav"
    with wave.open(str(stereo), "wb") as w:  # the same signal, at full level, on both sides
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        pcm = np.round(original * 32767).astype("<i2")
        w.writeframes(np.repeat(pcm, 2).tobytes())
    mp3 = tmp_path / "m.mp3"
    ffmpeg("-i", str(stereo), "-ar", "44100", str(mp3))
    info = probe(mp3)
    assert (info.sample_rate, info.channels, info.has_video) == (44100, 2, False)
    audio = decode(mp3)
    assert audio.dtype == np.float32
    assert audio.size / 16000 == pytest.approx(meeting2.duration, abs=0.1)
    # Both channels carry the same signal, so the mono mix keeps the original level.
    assert np.abs(audio).max() == pytest.approx(np.abs(original).max(), rel=0.1)
    assert np.abs(audio).max() < 1.0


def test_video_file(video_file: Path, meeting2: SynthMeeting) -> None:
    info = probe(video_file)
    assert info.has_video and info.codec == "aac"
    assert decode(video_file).size / 16000 == pytest.approx(meeting2.duration, abs=0.2)


def test_chunks_are_bounded_and_complete(meeting2: SynthMeeting) -> None:
    chunks = list(iter_chunks(meeting2.path, chunk_seconds=3.0))
    assert all(c.size == 48000 for c in chunks[:-1]) and 0 < chunks[-1].size <= 48000
    assert np.array_equal(np.concatenate(chunks), decode(meeting2.path))


def test_to_wav16_round_trip(meeting2: SynthMeeting, tmp_path: Path) -> None:
    out = tmp_path / "o.wav"
    assert to_wav16(meeting2.path, out) == pytest.approx(meeting2.duration, abs=0.001)
    with wave.open(str(out)) as a, wave.open(str(meeting2.path)) as b:
        assert (a.getframerate(), a.getnchannels(), a.getsampwidth()) == (16000, 1, 2)
        assert a.readframes(a.getnframes()) == b.readframes(b.getnframes())  # lossless


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.wav", "File not found"),
        (lambda d: d, "is a folder"),
        (lambda d: put(d / "empty.wav", b""), "is empty"),
        (lambda d: put(d / "junk.wav", bytes(range(256)) * 40), "not a readable audio"),
        (lambda d: put(d / "notes.txt", b"meeting notes\n" * 50), "not a readable audio"),
    ],
    ids=["missing", "folder", "empty", "corrupt", "text"],
)
def test_bad_files_give_one_clear_line(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    path = make(tmp_path)
    with pytest.raises(AudioError, match=message) as err:
        probe(path)
    assert "\n" not in str(err.value)
    with pytest.raises(AudioError):
        list(iter_chunks(path))


def test_video_without_sound(tmp_path: Path) -> None:
    silent_video = tmp_path / "screen.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "color=c=red:size=64x64:rate=5:duration=1",
        "-c:v",
        "mpeg4",
        str(silent_video),
    )
    with pytest.raises(AudioError, match="has no audio track"):
        probe(silent_video)


def test_truncated_file_decodes_what_is_there(meeting2: SynthMeeting, tmp_path: Path) -> None:
    mp3 = tmp_path / "full.mp3"
    ffmpeg("-i", str(meeting2.path), str(mp3))
    cut = tmp_path / "cut.mp3"
    data = mp3.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    audio = decode(cut)
    assert 0.3 * meeting2.duration < audio.size / 16000 < 0.7 * meeting2.duration
