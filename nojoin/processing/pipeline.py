"""Orchestration: pick a processing strategy by mode, run it, store the result in the library.

Sits above both the engines (strategies) and storage (Library); neither imports the other.
Strategies are built by factories registered per mode, so the remote strategy (or a test
double) plugs in without touching this module:

    pipeline = Pipeline(library, mode="local")
    transcript = pipeline.process_meeting(meeting_id, options, progress, cancel)
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from nojoin.audio.decode import probe
from nojoin.errors import CancelledError, NojoinError, ProcessingError
from nojoin.models import Meeting, MeetingStatus, Transcript
from nojoin.processing.contract import (
    CancelToken,
    ProcessingOptions,
    ProcessingStrategy,
    Progress,
    ProgressCallback,
)

log = logging.getLogger(__name__)

MODE_LOCAL = "local"
MODE_REMOTE = "remote"

StrategyFactory = Callable[[], ProcessingStrategy]


class MeetingStore(Protocol):
    """The part of nojoin.library.Library the pipeline uses."""

    def get_meeting(self, meeting_id: int) -> Meeting: ...
    def add_meeting(
        self, title: str, *, audio_path: str | Path | None = ..., duration: float = ...
    ) -> Meeting: ...
    def set_status(
        self, meeting_id: int, status: MeetingStatus, error: str | None = None
    ) -> None: ...
    def save_transcript(self, meeting_id: int, transcript: Transcript) -> None: ...


def _local_factory() -> ProcessingStrategy:
    from nojoin.processing.strategies.local_strategy import LocalProcessingStrategy

    return LocalProcessingStrategy()


def _remote_factory() -> ProcessingStrategy:
    try:
        remote_strategy = importlib.import_module("nojoin.processing.strategies.remote_strategy")
    except ImportError as exc:
        raise ProcessingError(
            f"Remote processing is not available ({exc}); use Local Mode."
        ) from exc
    strategy: ProcessingStrategy = remote_strategy.RemoteProcessingStrategy()
    return strategy


DEFAULT_FACTORIES: dict[str, StrategyFactory] = {
    MODE_LOCAL: _local_factory,
    MODE_REMOTE: _remote_factory,
}


class Pipeline:
    """Runs meetings through the strategy for the current mode and records the outcome."""

    def __init__(
        self,
        library: MeetingStore,
        *,
        mode: str = MODE_LOCAL,
        factories: Mapping[str, StrategyFactory] | None = None,
    ) -> None:
        self.library = library
        self.mode = mode
        self._factories = dict(DEFAULT_FACTORIES)
        if factories:
            self._factories.update(factories)
        self._strategies: dict[str, ProcessingStrategy] = {}
        self._lock = threading.Lock()

    def strategy(self, mode: str | None = None) -> ProcessingStrategy:
        """The (cached) strategy for `mode` (default: the pipeline's mode)."""
        mode = mode or self.mode
        with self._lock:
            if mode not in self._strategies:
                factory = self._factories.get(mode)
                if factory is None:
                    raise ProcessingError(
                        f"Unknown processing mode {mode!r}; choose one of: {', '.join(sorted(self._factories))}."
                    )
                self._strategies[mode] = factory()
            return self._strategies[mode]

    def process_meeting(
        self,
        meeting_id: int,
        options: ProcessingOptions,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        *,
        mode: str | None = None,
    ) -> Transcript:
        """Process a library meeting's audio; on success store the transcript (status processed),
        on any failure or cancel set status `error` with the message and re-raise. An earlier
        transcript of the meeting is kept unless the new run succeeds."""
        meeting = self.library.get_meeting(meeting_id)
        audio = meeting.audio_path
        cancel = cancel or CancelToken()
        self.library.set_status(meeting_id, MeetingStatus.PROCESSING)
        try:
            if not audio:
                raise ProcessingError("This meeting has no audio file to process.")
            transcript = self.strategy(mode).process(
                Path(audio), options, progress or _ignore, cancel
            )
        except CancelledError as exc:
            self.library.set_status(meeting_id, MeetingStatus.ERROR, exc.message)
            raise
        except NojoinError as exc:
            self.library.set_status(meeting_id, MeetingStatus.ERROR, exc.message)
            raise
        except Exception as exc:
            log.exception("processing meeting %s failed", meeting_id)
            err = ProcessingError(f"Processing failed: {type(exc).__name__}: {exc}")
            self.library.set_status(meeting_id, MeetingStatus.ERROR, err.message)
            raise err from exc
        except BaseException:  # KeyboardInterrupt: never leave the meeting stuck in 'processing'
            self.library.set_status(meeting_id, MeetingStatus.ERROR, "Processing was interrupted.")
            raise
        self.library.save_transcript(meeting_id, transcript)
        return transcript

    def transcribe_file(
        self,
        path: Path,
        options: ProcessingOptions,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        *,
        save: bool = True,
        title: str | None = None,
        mode: str | None = None,
    ) -> tuple[Transcript, int | None]:
        """Transcribe a file; with `save`, add it to the library (referenced in place) first so
        the outcome, success or error, is recorded on a meeting. Returns (transcript, meeting id).

        A file that is not audio at all is refused before any meeting is created.
        """
        info = probe(path)  # AudioError for missing/empty/corrupt/non-audio: nothing stored
        if not save:
            strategy = self.strategy(mode)
            return strategy.process(
                Path(path), options, progress or _ignore, cancel or CancelToken()
            ), None
        meeting = self.library.add_meeting(
            title or Path(path).stem, audio_path=Path(path).resolve(), duration=info.duration
        )
        return self.process_meeting(meeting.id, options, progress, cancel, mode=mode), meeting.id

    def close(self) -> None:
        """Close every strategy built so far (stops the local engine process)."""
        with self._lock:
            strategies, self._strategies = self._strategies, {}
        for s in strategies.values():
            try:
                s.close()
            except Exception:
                log.warning(
                    "closing the %s strategy failed", getattr(s, "name", "?"), exc_info=True
                )

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ignore(_: Progress) -> None:
    return None
