"""Orchestration: pick a processing strategy by mode, run it, store the result in the library.

Sits above both the engines (strategies) and storage (Library); neither imports the other.
Strategies are built by factories registered per mode, so the remote strategy (or a test
double) plugs in without touching this module:

    pipeline = Pipeline(library, remote_connection=connection)
    transcript = pipeline.process_meeting(meeting_id, options, progress, cancel, mode="remote")
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from nojoin.audio.decode import probe
from nojoin.errors import CancelledError, NojoinError, ProcessingError
from nojoin.models import MeetingStore, ProcessingMode, Transcript
from nojoin.processing.contract import (
    CancelToken,
    ProcessingOptions,
    ProcessingStrategy,
    Progress,
    ProgressCallback,
)

if TYPE_CHECKING:
    from nojoin.processing.strategies.remote_strategy import RemoteConnection

log = logging.getLogger(__name__)

StrategyFactory = Callable[[], ProcessingStrategy]


def _local_factory() -> ProcessingStrategy:
    from nojoin.processing.strategies.local_strategy import LocalProcessingStrategy

    return LocalProcessingStrategy()


def remote_factory(connection: RemoteConnection | None) -> StrategyFactory:
    """The factory of the strategy that runs meetings on Nojoin Cloud over `connection` (the
    composition root passes the signed-in session's; None: every run asks to sign in)."""

    def build() -> ProcessingStrategy:
        try:
            remote_strategy = importlib.import_module(
                "nojoin.processing.strategies.remote_strategy"
            )
        except ImportError as exc:
            raise ProcessingError(
                f"Remote processing is not available ({exc}); use Local Mode."
            ) from exc
        strategy: ProcessingStrategy = remote_strategy.RemoteProcessingStrategy(connection)
        return strategy

    return build


DEFAULT_FACTORIES: dict[str, StrategyFactory] = {ProcessingMode.LOCAL: _local_factory}
"""The strategy registry: mode -> factory. The remote mode's factory is made per pipeline
from the connection it is given (`remote_factory`)."""


class Pipeline:
    """Runs meetings through the strategy for the current mode and records the outcome.

    The meeting's status is the pipeline's to change: `processing` while a run goes, then
    `processed` (transcript stored), `error` (with the message), or, when the user cancelled,
    back to what it was (`MeetingStore.processing_cancelled`).
    """

    def __init__(
        self,
        library: MeetingStore,
        *,
        mode: str = ProcessingMode.LOCAL,
        factories: Mapping[str, StrategyFactory] | None = None,
        remote_connection: RemoteConnection | None = None,
    ) -> None:
        self.library = library
        self.mode = mode
        self._factories: dict[str, StrategyFactory] = {
            **DEFAULT_FACTORIES,
            ProcessingMode.REMOTE: remote_factory(remote_connection),
        }
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
        on a failure set status `error` with the message and re-raise; on a cancel put the
        meeting back as it was and re-raise. An earlier transcript of the meeting is kept unless
        the new run succeeds."""
        meeting = self.library.get_meeting(meeting_id)
        audio = meeting.audio_path
        cancel = cancel or CancelToken()
        self.library.start_processing(meeting_id)
        try:
            if not audio:
                raise ProcessingError("This meeting has no audio file to process.")
            transcript = self.strategy(mode).process(
                Path(audio), options, progress or _ignore, cancel
            )
        except CancelledError:
            self.library.processing_cancelled(meeting_id)  # the user's choice, not a failure
            raise
        except NojoinError as exc:
            self.library.processing_failed(meeting_id, exc.message)
            raise
        except Exception as exc:
            log.exception("processing meeting %s failed", meeting_id)
            err = ProcessingError(f"Processing failed: {type(exc).__name__}: {exc}")
            self.library.processing_failed(meeting_id, err.message)
            raise err from exc
        except BaseException:  # KeyboardInterrupt: never leave the meeting stuck in 'processing'
            self.library.processing_failed(meeting_id, "Processing was interrupted.")
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
