"""One error base class for the desktop side; its message is what the user sees."""

from __future__ import annotations


class NojoinError(Exception):
    """An error with a message fit to show a user: what happened and what to do next."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class LibraryError(NojoinError):
    """The meeting library cannot be opened, read or written."""


class NotFoundError(NojoinError):
    """A meeting, speaker or other record does not exist, here or on Nojoin Cloud (a 404);
    the desktop side's one not-found error."""


class ProcessingError(NojoinError):
    """Transcription or diarization failed."""


class CancelledError(NojoinError):
    """The user cancelled a long operation."""

    def __init__(self, message: str = "Cancelled.") -> None:
        super().__init__(message)


class ModelNotFoundError(ProcessingError):
    """A speech model is not installed and cannot be downloaded."""


class AudioError(NojoinError):
    """Audio cannot be decoded, recorded or written."""
