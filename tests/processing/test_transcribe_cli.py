"""`nojoin transcribe`: the SPEC contract (flags, JSON shape, stdout/stderr), storage, exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from nojoin.cli import main
from nojoin.library import Library
from nojoin.models import MeetingStatus
from nojoin.testing.metrics import wer
from nojoin.testing.synth import SynthMeeting


def test_json_output_has_the_spec_shape_and_is_saved(
    meeting2: SynthMeeting, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "transcribe",
                str(meeting2.path),
                "--format",
                "json",
                "--model",
                "tiny.en",
                "--language",
                "en",
            ]
        )
        == 0
    )
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert list(data)[:4] == ["duration", "language", "speakers", "segments"]
    assert data["language"] == "en" and data["duration"] == pytest.approx(
        meeting2.duration, abs=0.01
    )
    assert data["speakers"] == ["SPEAKER_00", "SPEAKER_01"]
    for seg in data["segments"]:
        assert {"start", "end", "speaker", "text"} <= set(seg)
        assert isinstance(seg["start"], float | int) and seg["end"] >= seg["start"]
        assert seg["speaker"] in data["speakers"]
    assert wer(meeting2.reference_text, " ".join(s["text"] for s in data["segments"])) < 0.15
    assert "Saved as meeting" in err
    with Library() as lib:  # NOJOIN_DATA_DIR from the test fixture
        (m,) = lib.list_meetings()
        assert m.status is MeetingStatus.PROCESSED and m.audio_path == str(meeting2.path.resolve())


def test_srt_and_vtt_to_files_without_saving(
    meeting3: SynthMeeting, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    srt = tmp_path / "out" / "meeting.srt"
    assert (
        main(
            [
                "transcribe",
                str(meeting3.path),
                "--no-diarize",
                "--format",
                "srt",
                "-o",
                str(srt),
                "--no-save",
            ]
        )
        == 0
    )
    out, err = capsys.readouterr()
    assert out == "" and f"Wrote {srt}" in err
    blocks = srt.read_text().strip().split("\n\n")
    assert len(blocks) >= 3
    for i, block in enumerate(blocks, 1):
        lines = block.splitlines()
        assert lines[0] == str(i)
        assert re.fullmatch(r"\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}", lines[1])
        assert lines[2].strip()
    with Library() as lib:
        assert lib.list_meetings() == []


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "is empty"), (b"\x13\x37" * 3000, "not a readable audio")],
    ids=["empty", "corrupt"],
)
def test_bad_file_exits_1_with_one_line_and_stores_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    bad = tmp_path / "call.mp3"
    bad.write_bytes(content)
    assert main(["transcribe", str(bad)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("nojoin: error: ") and message in err and err.count("\n") == 1
    with Library() as lib:
        assert lib.list_meetings() == []


def test_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["transcribe", str(tmp_path / "nope.wav")]) == 1
    assert "File not found" in capsys.readouterr().err


def test_bad_flags(capsys: pytest.CaptureFixture[str], meeting2: SynthMeeting) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["transcribe", str(meeting2.path), "--format", "docx"])
    assert exit_.value.code == 2
    assert (
        main(["transcribe", str(meeting2.path), "--min-speakers", "3", "--max-speakers", "2"]) == 2
    )
    assert "--min-speakers" in capsys.readouterr().err
