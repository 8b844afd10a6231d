"""`nojoin transcribe`: the SPEC contract (flags, JSON shape, stdout/stderr), storage, exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from nojoin.cli import main
from nojoin.library import Library
from nojoin.models import MeetingStatus
from nojoin.processing import pipeline
from nojoin.processing.strategies.local_strategy import LocalProcessingStrategy
from nojoin.testing.metrics import wer
from nojoin.testing.synth import SynthMeeting
from tests.processing.engine_support import Shared

VTT_CLOCK = r"(\d\d):([0-5]\d):([0-5]\d)\.(\d{3})"
STAGES = ("starting", "loading", "decoding", "transcribing", "done")


@pytest.fixture
def warm_engine(engine: LocalProcessingStrategy, monkeypatch: pytest.MonkeyPatch) -> None:
    """`nojoin transcribe` runs on the session's warm engine instead of starting its own."""
    monkeypatch.setitem(pipeline.DEFAULT_FACTORIES, "local", lambda: Shared(engine))


def _seconds(match: re.Match[str], first_group: int) -> float:
    h, m, s, ms = (int(match.group(first_group + i)) for i in range(4))
    return h * 3600 + m * 60 + s + ms / 1000


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
    warm_engine: None, meeting3: SynthMeeting, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    written = {}
    for fmt in ("srt", "vtt"):
        target = tmp_path / "out" / f"meeting.{fmt}"
        argv = ["transcribe", str(meeting3.path), "--no-diarize", "--format", fmt]
        assert main([*argv, "-o", str(target), "--no-save"]) == 0
        out, err = capsys.readouterr()
        assert out == "" and f"Wrote {target}" in err
        written[fmt] = target.read_text()

    blocks = written["srt"].strip().split("\n\n")
    assert len(blocks) >= 3
    for i, block in enumerate(blocks, 1):
        lines = block.splitlines()
        assert lines[0] == str(i)
        assert re.fullmatch(r"\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}", lines[1])
        assert lines[2].strip()

    header, *cues = written["vtt"].strip().split("\n\n")
    assert header == "WEBVTT"
    assert len(cues) >= 3
    last_end = 0.0
    texts = []
    for cue in cues:
        timing, *text = cue.splitlines()
        m = re.fullmatch(f"{VTT_CLOCK} --> {VTT_CLOCK}", timing)
        assert m, timing
        start, end = _seconds(m, 1), _seconds(m, 5)
        assert last_end <= start < end <= meeting3.duration + 0.5, timing
        last_end = end
        assert text and all(line.strip() and "-->" not in line for line in text)
        texts.append(" ".join(text))
    assert wer(meeting3.reference_text, " ".join(texts)) < 0.2
    with Library() as lib:
        assert lib.list_meetings() == []


def test_default_is_txt_on_stdout_with_progress_on_stderr(
    warm_engine: None, meeting2: SynthMeeting, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["transcribe", str(meeting2.path), "--no-diarize"]) == 0
    out, err = capsys.readouterr()
    stages = [line.split(":", 1)[0] for line in err.splitlines() if line.startswith(STAGES)]
    assert set(stages) == set(STAGES) and stages.index("transcribing") < stages.index("done")
    assert "Saved as meeting" in err
    # stdout is the transcript alone: paragraphs under "[mm:ss]" headers, nothing else.
    paragraphs = out.strip().split("\n\n")
    for para in paragraphs:
        header, *body = para.splitlines()
        assert re.fullmatch(r"\[\d\d:[0-5]\d\]", header) and body, para
    text = " ".join(line for para in paragraphs for line in para.splitlines()[1:])
    assert wer(meeting2.reference_text, text) < 0.15
    assert not any(line.startswith(f"{stage}:") for stage in STAGES for line in out.splitlines())


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
