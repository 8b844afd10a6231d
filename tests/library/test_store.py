"""The meeting library against a real temporary SQLite file."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from nojoin import export
from nojoin.errors import LibraryError, NotFoundError
from nojoin.library import SCHEMA_VERSION, Library, fts_query
from nojoin.library.migrations import MIGRATIONS
from nojoin.library.store import _split_sql
from nojoin.models import MeetingStatus, Segment, Transcript, Word
from nojoin.testing.synth import make_silence


def transcript(*turns: tuple[str, str], seg_len: float = 2.0) -> Transcript:
    segs = []
    for i, (speaker, text) in enumerate(turns):
        start = i * seg_len
        words = [
            Word(start + j * 0.3, start + j * 0.3 + 0.25, w) for j, w in enumerate(text.split())
        ]
        segs.append(Segment(start, start + seg_len, text, speaker, words))
    return Transcript(segments=segs, language="en", duration=len(turns) * seg_len)


@pytest.fixture
def lib(tmp_path: Path) -> Library:
    library = Library(tmp_path / "lib.sqlite3")
    yield library
    library.close()


def test_new_library_is_at_current_schema_and_wal(lib: Library) -> None:
    assert lib.schema_version == SCHEMA_VERSION
    mode = sqlite3.connect(lib.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_transcript_round_trip_keeps_words_and_speakers(lib: Library) -> None:
    m = lib.add_meeting("Weekly sync", audio_path="/tmp/a.flac", duration=1.0)
    t = transcript(("SPEAKER_00", "good morning team"), ("SPEAKER_01", "morning to you"))
    lib.save_transcript(m.id, t)
    back = lib.get_transcript(m.id)
    assert [s.text for s in back.segments] == ["good morning team", "morning to you"]
    assert back.speakers == ["SPEAKER_00", "SPEAKER_01"]
    assert [w.text for w in back.segments[0].words] == ["good", "morning", "team"]
    meeting = lib.get_meeting(m.id)
    assert meeting.status is MeetingStatus.PROCESSED
    assert meeting.duration == pytest.approx(4.0)
    assert meeting.language == "en"


def test_migrates_version_1_database_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    for stmt in _split_sql(MIGRATIONS[0]):
        conn.execute(stmt)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO meetings (id, title, created_at, duration, status)"
        " VALUES (7, 'Quarterly planning', '2025-01-02T10:00:00+00:00', 60, 'processed')"
    )
    conn.execute("INSERT INTO speakers (id, meeting_id, label, name) VALUES (1, 7, 'S0', 'Dana')")
    conn.execute(
        "INSERT INTO segments (meeting_id, idx, start, end, speaker_id, text)"
        " VALUES (7, 0, 0, 5, 1, 'the roadmap for the next quarter')"
    )
    conn.commit()
    conn.close()

    with Library(path) as lib:
        assert lib.schema_version == SCHEMA_VERSION
        m = lib.get_meeting(7)
        assert m.title == "Quarterly planning" and m.speakers[0].name == "Dana"
        # Data from before the upgrade is searchable (FTS built from existing rows).
        assert lib.search_meetings("roadmap") == [7]
        assert lib.search_meetings("dana") == [7]
        assert lib.search_meetings("quarterly") == [7]
        lib.add_tag(7, "planning")  # tables from migration 2 work
        assert lib.get_meeting(7).tags == ["planning"]


def test_newer_schema_is_refused_with_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    sqlite3.connect(path).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    with pytest.raises(LibraryError, match="newer Nojoin"):
        Library(path)


def test_search_ranks_and_covers_titles_text_and_speakers(lib: Library) -> None:
    a = lib.add_meeting("Budget review")
    lib.save_transcript(a.id, transcript(("SPEAKER_00", "we discussed the budget at length")))
    b = lib.add_meeting("Hiring")
    lib.save_transcript(
        b.id,
        transcript(
            ("SPEAKER_00", "budget budget budget for hiring"),
            ("SPEAKER_01", "the hiring budget is approved"),
        ),
    )
    c = lib.add_meeting("Design critique")
    lib.save_transcript(c.id, transcript(("SPEAKER_00", "colours and typography")))
    lib.rename_speaker(c.id, "SPEAKER_00", "Budgeteer Bob")

    hits = lib.search("budget")
    assert {h.meeting_id for h in hits} == {a.id, b.id, c.id}  # prefix matches "Budgeteer"
    assert hits == sorted(hits, key=lambda h: h.rank)
    # The meeting titled "Budget review" outranks passing mentions elsewhere.
    assert lib.search_meetings("budget")[0] == a.id
    seg_hit = next(h for h in hits if h.segment_id is not None and h.meeting_id == b.id)
    assert "[budget]" in seg_hit.snippet.lower() and seg_hit.start is not None
    assert lib.search_meetings("typography") == [c.id]
    assert lib.search_meetings("nothing-like-this") == []


@pytest.mark.parametrize("query", ['"unbalanced', "AND OR NOT", "*", "a:b", "NEAR(", ""])
def test_search_never_fails_on_user_syntax(lib: Library, query: str) -> None:
    m = lib.add_meeting("a b notes")
    lib.save_transcript(m.id, transcript(("SPEAKER_00", "and or not near")))
    lib.search(query)  # no exception


def test_fts_query_quotes_tokens() -> None:
    assert fts_query('budget "q3') == '"budget" "q3"*'
    assert fts_query("  ") is None


def test_edits_keep_search_index_in_step(lib: Library) -> None:
    m = lib.add_meeting("Standup")
    lib.save_transcript(m.id, transcript(("SPEAKER_00", "deploy on friday")))
    seg = lib.segments(m.id)[0]
    lib.update_segment_text(seg.id or 0, "deploy on monday")
    assert lib.search_meetings("friday") == []
    assert lib.search_meetings("monday") == [m.id]
    lib.update_meeting(m.id, title="Daily standup")
    assert lib.search_meetings("daily") == [m.id]
    lib.delete_meeting(m.id)
    assert lib.search("monday") == []


def test_rename_merge_and_reassign_speakers(lib: Library) -> None:
    m = lib.add_meeting("Call")
    lib.save_transcript(
        m.id,
        transcript(("SPEAKER_00", "one"), ("SPEAKER_01", "two"), ("SPEAKER_02", "three")),
    )
    lib.rename_speaker(m.id, "SPEAKER_00", "Alice")
    assert lib.speaker_names(m.id)["SPEAKER_00"] == "Alice"

    lib.merge_speakers(m.id, "SPEAKER_02", "SPEAKER_00")
    assert [s.speaker for s in lib.segments(m.id)] == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_00"]
    assert [s.label for s in lib.speakers(m.id)] == ["SPEAKER_00", "SPEAKER_01"]

    second = lib.segments(m.id)[1]
    lib.reassign_segment(second.id or 0, "SPEAKER_00")
    assert {s.speaker for s in lib.segments(m.id)} == {"SPEAKER_00"}

    with pytest.raises(NotFoundError):
        lib.rename_speaker(m.id, "SPEAKER_09", "X")
    with pytest.raises(LibraryError):
        lib.merge_speakers(m.id, "SPEAKER_00", "SPEAKER_00")


def test_speaker_edits_relabel_the_words_in_the_export(lib: Library) -> None:
    """Words carry speaker labels too: after a merge or reassign, a JSON export's segments and
    their words must name the same speaker."""
    m = lib.add_meeting("Call")
    t = transcript(("SPEAKER_00", "one two"), ("SPEAKER_01", "three four"), ("SPEAKER_02", "five"))
    for seg in t.segments:
        for w in seg.words:
            w.speaker = seg.speaker  # as the engine's merge step labels them
    lib.save_transcript(m.id, t)
    lib.rename_speaker(m.id, "SPEAKER_00", "Alice")

    lib.merge_speakers(m.id, "SPEAKER_02", "SPEAKER_00")
    lib.reassign_segment(lib.segments(m.id)[1].id or 0, "SPEAKER_03")

    data = json.loads(
        export.render(lib.get_transcript(m.id), "json", speaker_names=lib.speaker_names(m.id))
    )
    labels = [
        (seg["speaker"], sorted({w["speaker"] for w in seg["words"]})) for seg in data["segments"]
    ]
    assert labels == [
        ("SPEAKER_00", ["SPEAKER_00"]),
        ("SPEAKER_03", ["SPEAKER_03"]),
        ("SPEAKER_00", ["SPEAKER_00"]),
    ]
    assert data["speaker_names"] == {"SPEAKER_00": "Alice", "SPEAKER_03": "SPEAKER_03"}


def test_names_survive_reprocessing_and_people_link(lib: Library) -> None:
    m = lib.add_meeting("1:1")
    lib.save_transcript(m.id, transcript(("SPEAKER_00", "hi"), ("SPEAKER_01", "hello")))
    person = lib.add_person("Priya Natarajan")
    lib.link_speaker(m.id, "SPEAKER_01", person.id)
    lib.rename_speaker(m.id, "SPEAKER_00", "Sam")
    lib.save_transcript(m.id, transcript(("SPEAKER_00", "hi again"), ("SPEAKER_01", "yes")))
    assert lib.speaker_names(m.id) == {"SPEAKER_00": "Sam", "SPEAKER_01": "Priya Natarajan"}
    assert [x.id for x in lib.meetings_with_person(person.id)] == [m.id]
    assert lib.add_person("priya natarajan").id == person.id  # case-insensitive


def test_tags_filter_and_cleanup(lib: Library) -> None:
    a = lib.add_meeting("A")
    b = lib.add_meeting("B")
    lib.add_tag(a.id, "sales")
    lib.add_tag(b.id, "eng")
    assert [m.id for m in lib.list_meetings(tag="sales")] == [a.id]
    lib.remove_tag(a.id, "sales")
    assert lib.all_tags() == ["eng"]


def test_a_processing_run_moves_the_status_and_a_cancel_puts_it_back(lib: Library) -> None:
    fresh = lib.add_meeting("Never processed")
    lib.start_processing(fresh.id)
    assert lib.get_meeting(fresh.id).status is MeetingStatus.PROCESSING
    assert lib.processing_cancelled(fresh.id) is MeetingStatus.RECORDED
    assert lib.get_meeting(fresh.id).status is MeetingStatus.RECORDED

    done = lib.add_meeting("Processed before")
    lib.save_transcript(done.id, transcript(("SPEAKER_00", "earlier words")))
    lib.start_processing(done.id)
    lib.processing_failed(done.id, "The model is missing.")
    failed = lib.get_meeting(done.id)
    assert (failed.status, failed.error) == (MeetingStatus.ERROR, "The model is missing.")
    lib.start_processing(done.id)
    assert lib.processing_cancelled(done.id) is MeetingStatus.PROCESSED
    again = lib.get_meeting(done.id)
    assert (again.status, again.error) == (MeetingStatus.PROCESSED, None)
    assert lib.get_transcript(done.id).text == "earlier words"  # kept
    with pytest.raises(NotFoundError):
        lib.processing_cancelled(404)


def test_speaker_and_tag_edits_are_one_operation_each(lib: Library) -> None:
    m = lib.add_meeting("Call")
    lib.save_transcript(m.id, transcript(("SPEAKER_00", "one"), ("SPEAKER_01", "two three")))
    second = lib.segments(m.id)[1]
    # A new speaker gets the next free label and its name in one step.
    assert lib.reassign_to_new_speaker(second.id or 0, " Carol ") == "SPEAKER_02"
    assert lib.speaker_names(m.id)["SPEAKER_02"] == "Carol"
    moved = lib.segments(m.id)[1]
    assert moved.speaker == "SPEAKER_02" and {w.speaker for w in moved.words} == {"SPEAKER_02"}
    assert lib.reassign_to_new_speaker(lib.segments(m.id)[0].id or 0) == "SPEAKER_03"
    assert lib.speaker_names(m.id)["SPEAKER_03"] == "SPEAKER_03"  # unnamed: the label
    with pytest.raises(NotFoundError):
        lib.reassign_to_new_speaker(99_999, "Nobody")
    assert "SPEAKER_04" not in lib.speaker_names(m.id)  # nothing half-done

    # Saying who a speaker is adds the person when new and links them.
    person = lib.link_speaker_to(m.id, "SPEAKER_01", "Priya")
    assert lib.speaker_names(m.id)["SPEAKER_01"] == "Priya"
    assert [x.id for x in lib.meetings_with_person(person.id)] == [m.id]
    assert lib.link_speaker_to(m.id, "SPEAKER_00", "priya").id == person.id
    with pytest.raises(NotFoundError):
        lib.link_speaker_to(m.id, "SPEAKER_09", "Someone new")
    assert [p.name for p in lib.people()] == ["Priya"]  # the failed link added no one

    assert lib.set_tags(m.id, ["sales", " eng ", "", "sales"]) == ["sales", "eng"]
    assert sorted(lib.get_meeting(m.id).tags) == ["eng", "sales"]
    assert lib.set_tags(m.id, ["eng"]) == ["eng"]
    assert lib.all_tags() == ["eng"]  # unused tags go


def test_interrupted_processing_is_reported_and_marked(lib: Library) -> None:
    m = lib.add_meeting("Crashed")
    lib.set_status(m.id, MeetingStatus.PROCESSING)
    assert [x.id for x in lib.interrupted()] == [m.id]
    lib.mark_interrupted()
    after = lib.get_meeting(m.id)
    assert after.status is MeetingStatus.ERROR and "interrupted" in (after.error or "")


def test_unknown_ids_raise_not_found(lib: Library) -> None:
    for call in (
        lambda: lib.get_meeting(404),
        lambda: lib.set_status(404, MeetingStatus.ERROR),
        lambda: lib.save_transcript(404, Transcript()),
        lambda: lib.delete_meeting(404),
        lambda: lib.update_segment_text(404, "x"),
    ):
        with pytest.raises(NotFoundError):
            call()


def test_delete_removes_audio_only_inside_audio_dir(lib: Library, tmp_path: Path) -> None:
    from nojoin import paths

    inside = paths.audio_dir() / "m1.flac"
    inside.write_bytes(b"x")
    outside = tmp_path / "users-own.wav"
    outside.write_bytes(b"x")
    a = lib.add_meeting("in", audio_path=inside)
    b = lib.add_meeting("out", audio_path=outside)
    lib.delete_meeting(a.id, delete_audio=True)
    lib.delete_meeting(b.id, delete_audio=True)
    assert not inside.exists()
    assert outside.exists()  # a file the user referenced in place is never deleted


def _wav(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return make_silence(path, 1.0, noise_level=0.05)


def test_delete_audio_spares_a_file_with_the_same_stem(lib: Library, tmp_path: Path) -> None:
    """Imports keep their names, so `call.wav` and `call.mp3` are two meetings' audio."""
    from nojoin import paths
    from nojoin.audio.importer import import_file

    wav = _wav(tmp_path / "src" / "call.wav")
    mp3 = tmp_path / "src" / "call.mp3"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(wav), str(mp3)],
        check=True,
        timeout=60,
    )
    first = import_file(wav, store=lib)
    second = import_file(mp3, store=lib)
    assert first.meeting is not None and second.meeting is not None
    audio = paths.audio_dir()
    assert {first.path.name, second.path.name} == {"call.wav", "call.mp3"}
    # What a crash can leave behind for call.wav, and a file the user put there.
    leftovers = [
        audio / "call.partial.wav",
        audio / "call.encoding.wav",
        audio / ".call.wav.importing",
    ]
    for p in leftovers:
        p.write_bytes(b"x")
    (audio / "call.txt").write_text("my notes")

    lib.delete_meeting(first.meeting.id, delete_audio=True)
    assert sorted(p.name for p in audio.iterdir()) == ["call.mp3", "call.txt"]
    assert lib.get_meeting(second.meeting.id).audio_path == str(second.path)
    lib.delete_meeting(second.meeting.id, delete_audio=True)
    assert sorted(p.name for p in audio.iterdir()) == ["call.txt"]


def test_delete_audio_takes_glob_characters_literally(lib: Library) -> None:
    from nojoin import paths

    audio = paths.audio_dir()
    bracketed = _wav(audio / "team [1].wav")
    plain = _wav(audio / "team 1.wav")  # what the pattern "team [1].*" would match
    partial = _wav(audio / "team [1].partial.wav")
    a = lib.add_meeting("bracketed", audio_path=bracketed)
    b = lib.add_meeting("plain", audio_path=plain)
    lib.delete_meeting(a.id, delete_audio=True)
    assert not bracketed.exists() and not partial.exists()
    assert plain.exists() and lib.get_meeting(b.id).audio_path == str(plain)


def test_delete_audio_keeps_a_file_another_meeting_uses(lib: Library) -> None:
    from nojoin import paths

    shared = _wav(paths.audio_dir() / "all-hands.wav")
    a = lib.add_meeting("first run", audio_path=shared)
    b = lib.add_meeting("second run", audio_path=shared)
    lib.delete_meeting(a.id, delete_audio=True)
    assert shared.exists()
    lib.delete_meeting(b.id, delete_audio=True)
    assert not shared.exists()


def test_delete_audio_never_touches_a_running_recording(lib: Library) -> None:
    """A recording to `call.wav` writes `call.partial.wav`, which is also `call.flac`'s sidecar
    name: while a journal names it (recording, or waiting for recovery) it is not a leftover."""
    from nojoin import paths
    from nojoin.audio.recorder import partial_path_for
    from nojoin.audio.recovery import JournalLock, new_entry

    audio = paths.audio_dir()
    flac = audio / "call.flac"
    subprocess.run(["sox", str(_wav(audio / "src.wav")), str(flac)], check=True, timeout=60)
    (audio / "src.wav").unlink()
    m = lib.add_meeting("earlier call", audio_path=flac)
    partial = _wav(partial_path_for(audio / "call.wav"))
    assert partial.name == "call.partial.wav"
    lock = JournalLock(
        new_entry(partial, audio / "call.wav", 16_000, 2, datetime.now().astimezone(), "call")
    )
    try:
        lib.delete_meeting(m.id, delete_audio=True)
        assert not flac.exists()
        assert partial.exists()
    finally:
        lock.release(delete=True)


def test_concurrent_reader_sees_consistent_snapshots(tmp_path: Path) -> None:
    path = tmp_path / "lib.sqlite3"
    writer = Library(path)
    reader = Library(path)
    m = writer.add_meeting("Live")
    errors: list[BaseException] = []
    counts: list[int] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                n = len(reader.segments(m.id))
                counts.append(n)
                assert n in (0, 50), f"reader saw a half-written transcript ({n} segments)"
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    t = threading.Thread(target=read)
    t.start()
    try:
        for i in range(30):
            writer.save_transcript(
                m.id, transcript(*[("SPEAKER_00", f"line {i} {j}") for j in range(50)])
            )
        # Let the reader finish at least one read begun after the last save, however the
        # threads were scheduled (a busy machine may starve it during the writes).
        done_writing = len(counts)
        deadline = time.monotonic() + 30
        while len(counts) < done_writing + 2 and not errors and t.is_alive():
            assert time.monotonic() < deadline, "the reader thread made no progress"
            time.sleep(0.01)
    finally:
        stop.set()
        t.join(timeout=30)
    assert not t.is_alive()
    assert not errors, errors
    assert counts and 50 in counts
    writer.close()
    reader.close()


def test_corrupt_database_gives_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "lib.sqlite3"
    path.write_bytes(b"this is not a sqlite database at all" * 200)
    with pytest.raises(LibraryError, match="damaged"):
        Library(path)
    assert path.read_bytes().startswith(b"this is not")  # nothing overwritten


def test_locked_database_gives_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nojoin.library.store as store

    monkeypatch.setattr(store, "BUSY_TIMEOUT_MS", 200)
    path = tmp_path / "lib.sqlite3"
    lib = Library(path)
    m = lib.add_meeting("x")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(LibraryError, match="busy"):
            lib.update_meeting(m.id, title="y")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert lib.update_meeting(m.id, title="y").title == "y"  # works once released
    lib.close()
