"""`nojoin library ...` and the CLI's error handling, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nojoin.library import Library
from nojoin.models import MeetingStatus, Segment, Transcript


def nojoin(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nojoin", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def meeting_id() -> int:
    with Library() as lib:  # NOJOIN_DATA_DIR is a temp dir (tests/conftest.py)
        m = lib.add_meeting("Roadmap review")
        lib.save_transcript(
            m.id,
            Transcript(
                segments=[
                    Segment(0.0, 1.5, "Let's look at the roadmap.", "SPEAKER_00"),
                    Segment(1.5, 3.0, "Sounds good.", "SPEAKER_01"),
                ],
                language="en",
                duration=3.0,
            ),
        )
        return m.id


def test_version() -> None:
    r = nojoin("--version")
    assert r.returncode == 0 and r.stdout.startswith("nojoin 0.")


def test_list_search_show_export(meeting_id: int, tmp_path: Path) -> None:
    r = nojoin("library", "list", "--json")
    assert r.returncode == 0, r.stderr
    listed = json.loads(r.stdout)
    assert listed[0]["title"] == "Roadmap review" and listed[0]["status"] == "processed"

    r = nojoin("library", "search", "roadmap", "--json")
    assert {h["meeting_id"] for h in json.loads(r.stdout)} == {meeting_id}

    assert nojoin("library", "rename-speaker", str(meeting_id), "SPEAKER_00", "Ana").returncode == 0
    r = nojoin("library", "show", str(meeting_id), "--format", "srt")
    assert "Ana: Let's look at the roadmap." in r.stdout

    out = tmp_path / "t.vtt"
    r = nojoin("library", "export", str(meeting_id), "--format", "vtt", "--output", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_text().startswith("WEBVTT")

    r = nojoin("library", "delete", str(meeting_id))
    assert r.returncode == 0
    assert json.loads(nojoin("library", "list", "--json").stdout) == []


def test_unknown_meeting_is_one_line_error(meeting_id: int) -> None:
    r = nojoin("library", "show", "999")
    assert r.returncode != 0
    assert r.stderr.strip() == "nojoin: error: No meeting with id 999."


def test_bad_format_is_one_line_error_and_loses_nothing(meeting_id: int, tmp_path: Path) -> None:
    out = tmp_path / "x.doc"
    r = nojoin("library", "export", str(meeting_id), "--format", "doc", "--output", str(out))
    assert r.returncode != 0
    assert r.stderr.count("\n") == 1 and "Unknown export format 'doc'" in r.stderr
    assert not out.exists()
    with Library() as lib:
        assert lib.get_meeting(meeting_id).status is MeetingStatus.PROCESSED


def test_unwritable_data_dir_is_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    r = nojoin("library", "list", env={"NOJOIN_DATA_DIR": str(blocker / "data")})
    assert r.returncode != 0
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("nojoin: error: Cannot create the folder")
    assert "NOJOIN_DATA_DIR" in lines[0]


def test_unusable_log_folder_is_one_warning_and_the_command_still_works(
    meeting_id: int, nojoin_dirs: Path
) -> None:
    (nojoin_dirs / "data" / "logs").write_text("a file where the log folder should be")
    r = nojoin("library", "list")
    assert r.returncode == 0 and "Roadmap review" in r.stdout
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("nojoin: warning: no log file was written: Cannot create the folder")


def test_corrupt_library_is_one_line_error(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    (data / "library.sqlite3").write_bytes(b"garbage" * 1000)
    r = nojoin("library", "list", env={"NOJOIN_DATA_DIR": str(data)})
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "damaged" in r.stderr


def test_interrupted_meeting_is_reported(meeting_id: int) -> None:
    with Library() as lib:
        lib.set_status(meeting_id, MeetingStatus.PROCESSING)
    r = nojoin("library", "list")
    assert r.returncode == 0
    assert f"meeting(s) {meeting_id} was interrupted" in r.stderr
