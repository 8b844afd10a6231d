"""Pipeline: runs the strategy for the mode and records the outcome on the library meeting."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_support import Interruption, Shared, engine_children, is_gone

from nojoin.errors import AudioError, CancelledError, ProcessingError
from nojoin.library import Library
from nojoin.models import MeetingStatus, Segment, Transcript
from nojoin.processing.contract import CancelToken, ProcessingOptions, Progress
from nojoin.processing.pipeline import Pipeline
from nojoin.processing.strategies.local_strategy import LocalProcessingStrategy
from nojoin.processing.strategies.remote_strategy import RemoteAuthError
from nojoin.testing.metrics import wer
from nojoin.testing.synth import SynthMeeting


@pytest.fixture
def library(tmp_path: Path) -> Library:
    lib = Library(tmp_path / "library.sqlite3")
    yield lib
    lib.close()


@pytest.fixture
def pipeline(library: Library, engine: LocalProcessingStrategy) -> Pipeline:
    with Pipeline(library, factories={"local": lambda: Shared(engine)}) as p:
        yield p


def test_process_meeting_stores_the_transcript(
    pipeline: Pipeline, library: Library, meeting2: SynthMeeting
) -> None:
    m = library.add_meeting("Planning", audio_path=meeting2.path)
    reports: list[Progress] = []
    t = pipeline.process_meeting(m.id, ProcessingOptions(), reports.append, CancelToken())
    stored = library.get_meeting(m.id)
    assert stored.status is MeetingStatus.PROCESSED and stored.error is None
    assert stored.language == "en" and stored.duration == pytest.approx(meeting2.duration, abs=0.01)
    again = library.get_transcript(m.id)
    assert [s.text for s in again.segments] == [s.text for s in t.segments]
    assert [s.label for s in library.speakers(m.id)] == ["SPEAKER_00", "SPEAKER_01"]
    assert wer(meeting2.reference_text, again.text) < 0.15
    assert reports[-1].stage == "done"
    assert library.search("website")  # searchable right away


def test_failure_marks_the_meeting_error_and_keeps_the_old_transcript(
    pipeline: Pipeline, library: Library, tmp_path: Path
) -> None:
    audio = tmp_path / "talk.wav"
    audio.write_bytes(b"RIFF....WAVEfmt " + b"\x01" * 200)  # damaged after the header
    m = library.add_meeting("Broken", audio_path=audio)
    earlier = Transcript([Segment(0, 1, "Earlier text", "SPEAKER_00")], "en", 1.0)
    library.save_transcript(m.id, earlier)
    with pytest.raises(AudioError) as err:
        pipeline.process_meeting(m.id, ProcessingOptions(), None, CancelToken())
    stored = library.get_meeting(m.id)
    assert stored.status is MeetingStatus.ERROR
    assert stored.error == str(err.value) and "talk.wav" in stored.error
    assert library.get_transcript(m.id).text == "Earlier text"  # nothing lost
    assert library.integrity_check() == "ok"


def test_cancel_puts_the_meeting_back_as_it_was(
    pipeline: Pipeline, library: Library, meeting2: SynthMeeting
) -> None:
    """A cancel is the user's choice, not a failure (the pipeline owns the status: the window
    used to undo an `error` it had set)."""
    m = library.add_meeting("Cancelled", audio_path=meeting2.path)
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(CancelledError):
        pipeline.process_meeting(m.id, ProcessingOptions(), None, cancel)
    stored = library.get_meeting(m.id)
    assert stored.status is MeetingStatus.RECORDED and stored.error is None


@pytest.mark.parametrize("how", ["cancel", "kill"])
def test_run_stopped_midway_keeps_the_library_and_says_why(
    library: Library, meeting2: SynthMeeting, how: str
) -> None:
    """Cancel, or SIGKILL the engine, while it transcribes: through the real local strategy
    (its own engine process, so the session's warm one is not disturbed)."""
    other = library.add_meeting("Last week", audio_path=meeting2.path)
    library.save_transcript(
        other.id, Transcript([Segment(0, 1, "Last week's notes", "SPEAKER_00")], "en", 1.0)
    )
    m = library.add_meeting("Planning", audio_path=meeting2.path)
    library.save_transcript(
        m.id, Transcript([Segment(0, 1, "Earlier text", "SPEAKER_00")], "en", 1.0)
    )
    engines_before = {p.pid for p in engine_children()}
    cancel = CancelToken()
    if how == "cancel":
        expected: tuple[type[Exception], str] = (CancelledError, "Processing was cancelled")
    else:
        expected = (
            ProcessingError,
            r"stopped unexpectedly \(killed by SIGKILL\) while transcribing",
        )
    with Pipeline(library) as pipeline:
        strategy = pipeline.strategy()
        assert isinstance(strategy, LocalProcessingStrategy)
        stop = Interruption(strategy, cancel=cancel if how == "cancel" else None)
        # The run is stopped where transcription starts, so the meeting's length costs nothing.
        with pytest.raises(expected[0], match=expected[1]) as err:
            pipeline.process_meeting(
                m.id, ProcessingOptions(model="tiny.en", diarize=False), stop, cancel
            )
        # The engine went with the run, not only when the pipeline closes.
        assert stop.pids and is_gone(stop.pids[0]) and strategy.worker_pid is None
    assert {p.pid for p in engine_children()} <= engines_before

    stored = library.get_meeting(m.id)
    if how == "cancel":  # back to its earlier transcript, not a failure
        assert stored.status is MeetingStatus.PROCESSED and stored.error is None
    else:
        assert stored.status is MeetingStatus.ERROR and stored.error == str(err.value)
    assert library.get_transcript(m.id).text == "Earlier text"
    untouched = library.get_meeting(other.id)
    assert untouched.status is MeetingStatus.PROCESSED and untouched.error is None
    assert library.get_transcript(other.id).text == "Last week's notes"
    assert {x.id for x in library.list_meetings()} == {m.id, other.id}
    assert library.integrity_check() == "ok"


def test_meeting_without_audio(pipeline: Pipeline, library: Library) -> None:
    m = library.add_meeting("No audio")
    with pytest.raises(ProcessingError, match="no audio file"):
        pipeline.process_meeting(m.id, ProcessingOptions())
    assert library.get_meeting(m.id).status is MeetingStatus.ERROR


def test_an_unexpected_strategy_crash_is_recorded(library: Library, meeting2: SynthMeeting) -> None:
    class Exploding:
        name = "boom"

        def process(self, *args: object) -> Transcript:
            raise RuntimeError("native code fell over")

        def close(self) -> None:
            pass

    m = library.add_meeting("x", audio_path=meeting2.path)
    with Pipeline(library, mode="boom", factories={"boom": Exploding}) as p:
        with pytest.raises(ProcessingError, match="native code fell over"):
            p.process_meeting(m.id, ProcessingOptions())
    assert library.get_meeting(m.id).status is MeetingStatus.ERROR


def test_remote_mode_signed_out_says_sign_in_or_go_local(library: Library, tmp_path: Path) -> None:
    # The default factories: "remote" is the real RemoteProcessingStrategy, and with nobody
    # signed in (no connection installed by Cloud Mode) nothing is uploaded.
    audio = tmp_path / "call.wav"
    audio.write_bytes(b"RIFF" + b"\0" * 100)
    m = library.add_meeting("Call", audio_path=audio)
    with Pipeline(library) as p:
        with pytest.raises(RemoteAuthError) as err:
            p.process_meeting(m.id, ProcessingOptions(), mode="remote")
        assert p.strategy("remote").name == "remote"
    stored = library.get_meeting(m.id)
    assert stored.status is MeetingStatus.ERROR and stored.error == err.value.message
    assert "Sign in to Nojoin Cloud" in stored.error and "local processing" in stored.error


def test_unknown_mode(library: Library) -> None:
    with (
        Pipeline(library, mode="quantum") as p,
        pytest.raises(ProcessingError, match="Unknown processing mode"),
    ):
        p.strategy()


def test_transcribe_file_refuses_non_audio_without_storing_anything(
    pipeline: Pipeline, library: Library, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not audio\n" * 100)
    with pytest.raises(AudioError):
        pipeline.transcribe_file(notes, ProcessingOptions())
    assert library.list_meetings() == []


def test_transcribe_file_without_saving(
    pipeline: Pipeline, library: Library, meeting2: SynthMeeting
) -> None:
    t, meeting_id = pipeline.transcribe_file(
        meeting2.path, ProcessingOptions(diarize=False), save=False
    )
    assert meeting_id is None and t.segments
    assert library.list_meetings() == []
