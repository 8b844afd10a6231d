"""Importing audio/video files: common formats accepted with their duration, bad files refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nojoin import paths
from nojoin.audio.importer import import_file
from nojoin.errors import AudioError
from nojoin.library import Library
from nojoin.models import MeetingStatus

SPEECH = "Welcome to the planning meeting. Let us look at the numbers for this quarter."


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same espeak-ng sentence in many containers/codecs, plus files that must be refused."""
    d = tmp_path_factory.mktemp("media")
    src = d / "speech.wav"
    _run("espeak-ng", "-v", "en-us", "-w", str(src), SPEECH)
    ff = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"]
    files = {"wav": src}
    for name, args in {
        "flac": ["-c:a", "flac"],
        "mp3": ["-c:a", "libmp3lame", "-b:a", "64k"],
        "opus": ["-c:a", "libopus", "-b:a", "32k"],
        "m4a": ["-c:a", "aac", "-b:a", "64k"],
    }.items():
        out = d / f"speech.{'ogg' if name == 'opus' else name}"
        _run(*ff, "-i", str(src), *args, str(out))
        files[name] = out
    mp4 = d / "screen recording.mp4"
    _run(
        *ff,
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=160x120:rate=10",
        "-i",
        str(src),
        "-shortest",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        str(mp4),
    )
    files["mp4"] = mp4
    silent_video = d / "no-sound.mp4"
    _run(
        *ff,
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=160x120:rate=10",
        "-t",
        "2",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        str(silent_video),
    )
    files["video_only"] = silent_video
    text = d / "notes.mp3"
    text.write_text("Agenda:\n1. budget\n2. hiring\n" * 20)
    files["text"] = text
    noise = d / "random.wav"
    noise.write_bytes(np.random.default_rng(1).bytes(50_000))
    files["random"] = noise
    # A real MP3's first bytes followed by garbage: a damaged download.
    mp3 = files["mp3"].read_bytes()
    damaged = d / "damaged.flac"
    flac = files["flac"].read_bytes()
    damaged.write_bytes(flac[:200] + np.random.default_rng(2).bytes(len(flac) - 200))
    files["damaged"] = damaged
    truncated = d / "truncated.mp3"
    truncated.write_bytes(mp3[:100])
    files["truncated"] = truncated
    empty = d / "empty.ogg"
    empty.write_bytes(b"")
    files["empty"] = empty
    return files


def _audio_files() -> list[Path]:
    return sorted(p for p in paths.audio_dir().iterdir())


@pytest.mark.parametrize("kind", ["wav", "flac", "mp3", "opus", "m4a", "mp4"])
def test_common_formats_are_copied_in_with_their_duration(
    media: dict[str, Path], kind: str
) -> None:
    from nojoin.audio import decode

    reference = decode.probe(media["wav"]).duration
    with Library() as lib:
        result = import_file(media[kind], store=lib)
        meeting = lib.get_meeting(result.meeting.id if result.meeting else -1)
    assert result.copied and result.path.parent == paths.audio_dir().resolve()
    assert result.path.read_bytes() == media[kind].read_bytes()
    assert _audio_files() == [result.path]
    # Lossy codecs add encoder padding of a few tens of milliseconds.
    assert result.duration == pytest.approx(reference, abs=0.08)
    assert meeting.status is MeetingStatus.RECORDED
    assert meeting.duration == pytest.approx(result.duration)
    assert Path(meeting.audio_path or "") == result.path
    assert result.info.has_video is (kind == "mp4")


def test_title_from_file_name_and_reference_mode(media: dict[str, Path]) -> None:
    with Library() as lib:
        result = import_file(media["mp4"], store=lib, copy=False)
    assert result.meeting is not None and result.meeting.title == "screen recording"
    assert not result.copied and result.path == media["mp4"].resolve()
    assert _audio_files() == []


def test_same_name_twice_gets_a_new_name(media: dict[str, Path]) -> None:
    a = import_file(media["mp3"])
    b = import_file(media["mp3"])
    assert a.path != b.path and a.path.exists() and b.path.exists()
    assert b.path.name == "speech-2.mp3"


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("video_only", "has no audio track"),
        ("text", "not a readable audio or video file"),
        ("random", "not a readable audio or video file"),
        ("damaged", "damaged|not a readable|no sound"),
        ("truncated", "damaged|not a readable|no sound|no audio"),
        ("empty", "is empty"),
    ],
)
def test_bad_files_are_refused_and_leave_nothing_behind(
    media: dict[str, Path], kind: str, message: str
) -> None:
    with Library() as lib:
        with pytest.raises(AudioError, match=message):
            import_file(media[kind], store=lib)
        assert lib.list_meetings() == []
    assert _audio_files() == []


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="File not found"):
        import_file(tmp_path / "nope.wav")


def test_import_command(media: dict[str, Path]) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "nojoin", "import", str(media["opus"]), "--title", "Standup"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert "as meeting 1 'Standup'" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "nojoin", "import", str(media["text"])],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1
    assert bad.stderr.startswith("nojoin: error: notes.mp3 is not a readable audio or video file")
    with Library() as lib:
        assert [m.title for m in lib.list_meetings()] == ["Standup"]


def test_progress_is_reported_and_cancel_leaves_nothing(media: dict[str, Path]) -> None:
    from nojoin.errors import CancelledError
    from nojoin.processing.contract import CancelToken, Progress

    reports: list[Progress] = []
    import_file(media["flac"], progress=reports.append)
    seen = [p.fraction for p in reports]
    assert seen and seen == sorted(seen) and seen[-1] == pytest.approx(1.0, abs=0.02)
    assert {p.stage for p in reports} == {"importing"}
    for f in _audio_files():
        f.unlink()

    cancel = CancelToken()
    cancel.cancel()
    with Library() as lib:
        with pytest.raises(CancelledError):
            import_file(media["mp4"], store=lib, cancel=cancel)
        assert lib.list_meetings() == []
    assert _audio_files() == []
