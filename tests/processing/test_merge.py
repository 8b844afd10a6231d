"""Words to speakers, segment splitting and labels: pure functions on hand-made inputs."""

from __future__ import annotations

from nojoin.models import Segment, Word
from nojoin.processing.diarize import SpeakerTurn
from nojoin.processing.merge import assign_speakers, relabel, speaker_for


def seg(start: float, end: float, *words: tuple[float, float, str]) -> Segment:
    ws = [Word(a, b, t) for a, b, t in words]
    return Segment(start, end, "".join(w.text for w in ws).strip(), words=ws)


def test_word_goes_to_the_turn_it_overlaps_most() -> None:
    turns = [SpeakerTurn(0.0, 1.2, "a"), SpeakerTurn(1.2, 3.0, "b")]
    # 1.0-1.6 overlaps a for 0.2 s and b for 0.4 s.
    assert speaker_for(1.0, 1.6, turns) == "b"
    assert speaker_for(0.9, 1.3, turns) == "a"


def test_overlap_is_summed_over_several_turns_of_one_speaker() -> None:
    turns = [SpeakerTurn(0.0, 0.3, "a"), SpeakerTurn(0.3, 0.65, "b"), SpeakerTurn(0.65, 1.0, "a")]
    assert speaker_for(0.0, 1.0, turns) == "a"  # a: 0.65 s in total, b: 0.35 s


def test_a_segment_spoken_by_two_people_is_split_at_the_change() -> None:
    segment = seg(
        0.0, 4.0,
        (0.0, 0.5, " I"), (0.5, 1.0, " sent"), (1.0, 1.8, " it."),
        (2.0, 2.5, " Thanks,"), (2.5, 3.0, " I"), (3.0, 4.0, " agree."),
    )  # fmt: skip
    turns = [SpeakerTurn(0.0, 1.9, "spk7"), SpeakerTurn(1.9, 4.0, "spk3")]
    out = assign_speakers([segment], turns)
    assert [(s.speaker, s.text, s.start, s.end) for s in out] == [
        ("SPEAKER_00", "I sent it.", 0.0, 1.8),
        ("SPEAKER_01", "Thanks, I agree.", 2.0, 4.0),
    ]
    assert [w.speaker for w in out[1].words] == ["SPEAKER_01"] * 3


def test_labels_follow_first_appearance_not_engine_labels() -> None:
    segments = [seg(0, 1, (0, 1, " one")), seg(1, 2, (1, 2, " two")), seg(2, 3, (2, 3, " three"))]
    turns = [
        SpeakerTurn(0, 1, "SPEAKER_02"),
        SpeakerTurn(1, 2, "SPEAKER_01"),
        SpeakerTurn(2, 3, "SPEAKER_02"),
    ]
    out = assign_speakers(segments, turns)
    assert [s.speaker for s in out] == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_00"]


def test_no_turns_leaves_segments_unlabelled_and_unsplit() -> None:
    segments = [seg(0, 2, (0, 1, " hello"), (1, 2, " there"))]
    out = assign_speakers(segments, [])
    assert len(out) == 1 and out[0].speaker is None and out[0].text == "hello there"
    assert out[0] is not segments[0]  # the input is not modified


def test_words_outside_every_turn_take_a_neighbours_speaker() -> None:
    # The diarizer trimmed the edges: the first and last words fall outside any turn by > 2 s.
    segment = seg(
        0.0, 9.0, (0.0, 0.3, " Well"), (3.0, 4.0, " yes"), (4.0, 5.0, " indeed"), (8.8, 9.0, " so")
    )
    turns = [SpeakerTurn(3.0, 5.0, "x")]
    out = assign_speakers([segment], turns)
    assert len(out) == 1 and out[0].speaker == "SPEAKER_00"
    assert all(w.speaker == "SPEAKER_00" for w in out[0].words)


def test_a_word_near_a_turn_goes_to_it() -> None:
    turns = [SpeakerTurn(0.0, 1.0, "a"), SpeakerTurn(5.0, 6.0, "b")]
    assert speaker_for(1.2, 1.4, turns) == "a"
    assert speaker_for(4.5, 4.8, turns) == "b"
    assert speaker_for(20.0, 21.0, turns) is None  # too far from anyone


def test_segment_without_words_gets_the_overlapping_speaker() -> None:
    out = assign_speakers(
        [Segment(2.0, 3.0, "Okay.")], [SpeakerTurn(0, 1, "a"), SpeakerTurn(1.5, 3.5, "b")]
    )
    assert out[0].speaker == "SPEAKER_00" and out[0].text == "Okay."


def test_relabel_keeps_word_and_segment_labels_consistent() -> None:
    s = Segment(0, 1, "x", speaker="b", words=[Word(0, 1, "x", speaker="b")])
    t = Segment(1, 2, "y", speaker="a", words=[Word(1, 2, "y", speaker="a")])
    out = relabel([s, t])
    assert [(x.speaker, x.words[0].speaker) for x in out] == [
        ("SPEAKER_00", "SPEAKER_00"),
        ("SPEAKER_01", "SPEAKER_01"),
    ]
