"""A finished or rescued recording becomes a library meeting: the one save function.

The recorder (after Stop), `nojoin record` and the app's start-up (after a crash) all call
`save_recording`, so a meeting looks the same whichever saved it: the title the recorder gave
it, status `recorded`, and the time the recording started. The store is the `MeetingStore`
port (the library), passed in by the caller.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Protocol

from nojoin.models import Meeting, MeetingStatus, MeetingStore


class Recording(Protocol):
    """What is saved of a recording (`RecordingResult` and `RecoveredRecording` both are)."""

    @property
    def path(self) -> Path | None: ...

    @property
    def title(self) -> str: ...

    @property
    def duration(self) -> float: ...

    @property
    def started_at(self) -> datetime: ...


def save_recording(store: MeetingStore, recording: Recording) -> Meeting:
    """Add a recording to the library with status `recorded`, dated when it started."""
    if recording.path is None:
        raise ValueError("nothing was recorded, so there is no meeting to add")
    return store.add_meeting(
        recording.title,
        audio_path=recording.path,
        duration=recording.duration,
        status=MeetingStatus.RECORDED,
        created_at=recording.started_at,
    )
