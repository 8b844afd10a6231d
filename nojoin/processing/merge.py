"""Combine Whisper's words with the diarizer's turns (pure functions, no I/O).

Each word goes to the speaker whose turn overlaps it most (the nearest turn if none overlaps);
a Whisper segment spoken by several people is split where the speaker changes; labels become
SPEAKER_00, SPEAKER_01, ... in order of first appearance.
"""

from __future__ import annotations

from collections.abc import Sequence

from nojoin.models import Segment, Word
from nojoin.processing.diarize import SpeakerTurn

# A word this far (seconds) from every turn is still given to the nearest one: VAD and the
# diarizer trim word edges differently, and an unlabelled word helps nobody.
NEAREST_TURN_LIMIT = 2.0


def overlap(a_start: float, a_end: float, b_start: float, b_end: float) -> float:
    return max(0.0, min(a_end, b_end) - max(a_start, b_start))


def speaker_for(start: float, end: float, turns: Sequence[SpeakerTurn]) -> str | None:
    """The speaker with most total overlap with [start, end], else the nearest turn's speaker."""
    if not turns:
        return None
    totals: dict[str, float] = {}
    for t in turns:
        if t.end <= start or t.start >= end:
            continue
        totals[t.speaker] = totals.get(t.speaker, 0.0) + overlap(start, end, t.start, t.end)
    if totals:
        return max(totals.items(), key=lambda kv: kv[1])[0]
    mid = (start + end) / 2
    best = min(
        turns,
        key=lambda t: 0.0 if t.start <= mid <= t.end else min(abs(mid - t.start), abs(mid - t.end)),
    )
    distance = min(abs(mid - best.start), abs(mid - best.end))
    return best.speaker if distance <= NEAREST_TURN_LIMIT else None


def assign_speakers(segments: Sequence[Segment], turns: Sequence[SpeakerTurn]) -> list[Segment]:
    """New segments with `speaker` set on segments and words, split at speaker changes.

    With no turns (diarization off or no speech found) the segments come back unlabelled.
    """
    if not turns:
        return [_copy(s) for s in segments]
    turns = sorted(turns, key=lambda t: (t.start, t.end))
    out: list[Segment] = []
    for seg in segments:
        if not seg.words:
            piece = _copy(seg)
            piece.speaker = speaker_for(seg.start, seg.end, turns)
            out.append(piece)
            continue
        words = [
            Word(w.start, w.end, w.text, w.probability, speaker_for(w.start, w.end, turns))
            for w in seg.words
        ]
        _fill_unlabelled(words, speaker_for(seg.start, seg.end, turns))
        groups: list[list[Word]] = []
        for w in words:
            if groups and groups[-1][-1].speaker == w.speaker:
                groups[-1].append(w)
            else:
                groups.append([w])
        for i, group in enumerate(groups):
            start = seg.start if i == 0 else group[0].start
            end = seg.end if i == len(groups) - 1 else group[-1].end
            text = "".join(w.text for w in group).strip() if len(groups) > 1 else seg.text.strip()
            out.append(
                Segment(
                    start=start,
                    end=max(end, start),
                    text=text,
                    speaker=group[0].speaker,
                    words=group,
                )
            )
    return relabel(out)


def relabel(segments: list[Segment]) -> list[Segment]:
    """Rename speakers to SPEAKER_00.. in order of first appearance (in place; returns the list)."""
    mapping: dict[str, str] = {}
    for seg in segments:
        for label in [seg.speaker, *(w.speaker for w in seg.words)]:
            if label is not None and label not in mapping:
                mapping[label] = f"SPEAKER_{len(mapping):02d}"
    for seg in segments:
        if seg.speaker is not None:
            seg.speaker = mapping[seg.speaker]
        for w in seg.words:
            if w.speaker is not None:
                w.speaker = mapping[w.speaker]
    return segments


def _fill_unlabelled(words: list[Word], fallback: str | None) -> None:
    """Words no turn reached take their neighbour's speaker (previous, else next, else fallback)."""
    last: str | None = None
    for w in words:
        if w.speaker is None:
            w.speaker = last
        last = w.speaker
    nxt: str | None = None
    for w in reversed(words):
        if w.speaker is None:
            w.speaker = nxt if nxt is not None else fallback
        nxt = w.speaker


def _copy(seg: Segment) -> Segment:
    return Segment(
        start=seg.start,
        end=seg.end,
        text=seg.text.strip(),
        speaker=seg.speaker,
        words=[Word(w.start, w.end, w.text, w.probability, w.speaker) for w in seg.words],
    )
