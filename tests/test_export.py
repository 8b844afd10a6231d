"""Exporters: every format parses back with well-formed, monotonic timestamps."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from nojoin import export
from nojoin.models import Segment, Transcript, Word

SRT_TIME = re.compile(r"^(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)$")
VTT_TIME = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> (\d\d):(\d\d):(\d\d)\.(\d\d\d)$")


def _secs(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


@pytest.fixture
def t() -> Transcript:
    return Transcript(
        segments=[
            Segment(0.0, 2.5, "Hello there.", "SPEAKER_00", [Word(0.0, 0.4, "Hello")]),
            Segment(2.4, 5.0, "Hi! --> arrows", "SPEAKER_01"),  # overlaps the previous one
            Segment(5.0, 5.0, "Zero length.", "SPEAKER_00"),
            Segment(6.0, 7.0, "   ", "SPEAKER_01"),  # empty text is skipped
            Segment(3725.25, 3727.0, "An hour later.", "SPEAKER_00"),
        ],
        language="en",
        duration=3727.0,
    )


def _parse_cues(text: str, pattern: re.Pattern[str]) -> list[tuple[float, float, str]]:
    cues = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = pattern.match(line)
        if m:
            g = m.groups()
            cues.append((_secs(*g[:4]), _secs(*g[4:]), lines[i + 1]))
    return cues


def test_srt_is_well_formed_and_monotonic(t: Transcript) -> None:
    text = export.render(t, "srt", speaker_names={"SPEAKER_00": "Alice"})
    blocks = text.strip().split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == ["1", "2", "3", "4"]
    cues = _parse_cues(text, SRT_TIME)
    assert len(cues) == 4
    for (s, e, _), (s2, _e2, _) in zip(cues, cues[1:], strict=False):
        assert s < e <= s2
    assert cues[0][2] == "Alice: Hello there."
    assert cues[1][2].startswith("SPEAKER_01: ")
    assert cues[3][0] == pytest.approx(3725.25)


def test_vtt_is_well_formed(t: Transcript) -> None:
    text = export.render(t, "vtt", speaker_names={"SPEAKER_01": "Bo"})
    assert text.startswith("WEBVTT\n\n")
    cues = _parse_cues(text, VTT_TIME)
    assert len(cues) == 4
    assert all(s < e for s, e, _ in cues)
    assert all(a[1] <= b[0] for a, b in zip(cues, cues[1:], strict=False))
    assert cues[1][2] == "<v Bo>Hi! -> arrows"  # "-->" cannot appear inside a cue
    body = text.split("\n\n", 1)[1]
    assert "-->" not in "".join(c[2] for c in cues) and body


def test_json_matches_cli_contract(t: Transcript) -> None:
    data = json.loads(export.render(t, "json"))
    assert set(data) >= {"duration", "language", "speakers", "segments"}
    assert data["speakers"] == ["SPEAKER_00", "SPEAKER_01"]
    seg = data["segments"][0]
    assert {"start", "end", "speaker", "text"} <= set(seg)
    assert Transcript.from_dict(data).segments[0].words[0].text == "Hello"


def test_txt_groups_speakers(t: Transcript) -> None:
    text = export.render(t, "txt", speaker_names={"SPEAKER_00": "Alice"}, title="Sync")
    assert text.startswith("Sync\n")
    assert "[00:00] Alice:\nHello there." in text
    assert "[1:02:05] Alice:" in text


def test_unknown_format_is_refused() -> None:
    with pytest.raises(export.ExportError, match="txt, srt, vtt, json"):
        export.render(Transcript(), "docx2")


def test_write_is_atomic_and_reports_unwritable(t: Transcript, tmp_path: Path) -> None:
    out = export.write(t, "srt", tmp_path / "out" / "a.srt")
    assert out.read_text().startswith("1\n")
    # A path below a regular file cannot be created, even by root.
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(export.ExportError, match="Cannot write"):
        export.write(t, "txt", blocker / "x.txt")
