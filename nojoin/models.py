"""Plain data types shared by storage, engines and UI, and the one `MeetingStore` port the
engines and the pipeline store meetings through; imports nothing of ours.

Times are seconds (float) from the start of the meeting's audio.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol


class ProcessingMode(enum.StrEnum):
    """Where a meeting is processed (the Settings choice, and the pipeline's strategy key)."""

    LOCAL = "local"  # this computer's engine
    REMOTE = "remote"  # Nojoin Cloud's GPU workers (needs sign-in and, if gated, Pro)


class MeetingStatus(enum.StrEnum):
    RECORDED = "recorded"
    PROCESSING = "processing"
    PROCESSED = "processed"
    ERROR = "error"


@dataclass(slots=True)
class Word:
    start: float
    end: float
    text: str
    probability: float = 1.0
    speaker: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "text": self.text,
            "probability": round(self.probability, 4),
        }
        if self.speaker is not None:
            d["speaker"] = self.speaker
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Word:
        return cls(
            start=float(d["start"]),
            end=float(d["end"]),
            text=str(d.get("text", d.get("word", ""))),
            probability=float(d.get("probability", 1.0)),
            speaker=d.get("speaker"),
        )


@dataclass(slots=True)
class Segment:
    start: float
    end: float
    text: str
    speaker: str | None = None
    words: list[Word] = field(default_factory=list)
    id: int | None = None  # library row id, when stored

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "speaker": self.speaker,
            "text": self.text,
            "words": [w.to_dict() for w in self.words],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Segment:
        return cls(
            start=float(d["start"]),
            end=float(d["end"]),
            text=str(d.get("text", "")),
            speaker=d.get("speaker"),
            words=[Word.from_dict(w) for w in d.get("words") or []],
        )


@dataclass(slots=True)
class Transcript:
    """Result of processing one audio file: what `nojoin transcribe --format json` prints."""

    segments: list[Segment] = field(default_factory=list)
    language: str | None = None
    duration: float = 0.0

    @property
    def speakers(self) -> list[str]:
        """Speaker labels in order of first appearance."""
        seen: dict[str, None] = {}
        for seg in self.segments:
            if seg.speaker is not None:
                seen.setdefault(seg.speaker, None)
        return list(seen)

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    def to_dict(self) -> dict[str, Any]:
        return {
            "duration": round(self.duration, 3),
            "language": self.language,
            "speakers": self.speakers,
            "segments": [s.to_dict() for s in self.segments],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Transcript:
        return cls(
            segments=[Segment.from_dict(s) for s in d.get("segments") or []],
            language=d.get("language"),
            duration=float(d.get("duration") or 0.0),
        )


@dataclass(slots=True)
class Speaker:
    """A speaker within one meeting; `label` is the engine's (SPEAKER_00), `name` the user's."""

    id: int
    meeting_id: int
    label: str
    name: str | None = None
    person_id: int | None = None

    @property
    def display_name(self) -> str:
        return self.name or self.label


@dataclass(slots=True)
class Person:
    """Someone known across meetings; speakers can be linked to a person."""

    id: int
    name: str


@dataclass(slots=True)
class Meeting:
    id: int
    title: str
    created_at: datetime
    duration: float = 0.0
    audio_path: str | None = None
    status: MeetingStatus = MeetingStatus.RECORDED
    error: str | None = None
    language: str | None = None
    tags: list[str] = field(default_factory=list)
    speakers: list[Speaker] = field(default_factory=list)


@dataclass(slots=True)
class SearchHit:
    meeting_id: int
    title: str
    snippet: str
    rank: float
    segment_id: int | None = None
    start: float | None = None


class MeetingStore(Protocol):
    """What the recorder, the importer and the pipeline need from the meeting library
    (`nojoin.library.Library` is the one implementation; engines never import it: the
    composition root passes it in)."""

    def get_meeting(self, meeting_id: int) -> Meeting: ...

    def add_meeting(
        self,
        title: str,
        *,
        audio_path: str | Path | None = ...,
        duration: float = ...,
        status: MeetingStatus = ...,
        created_at: datetime | None = ...,
        language: str | None = ...,
    ) -> Meeting: ...

    def start_processing(self, meeting_id: int) -> None: ...

    def processing_failed(self, meeting_id: int, error: str) -> None: ...

    def processing_cancelled(self, meeting_id: int) -> MeetingStatus: ...

    def save_transcript(self, meeting_id: int, transcript: Transcript) -> None: ...
