"""CLI test fixtures: the engine tests' generated meetings and warm engine process, so
`nojoin transcribe` is tested on real audio without loading models again per test (the
session gets its own engine here: one more warm-up when the whole suite runs)."""

from __future__ import annotations

from tests.processing.conftest import (  # noqa: F401  (fixtures)
    engine,
    meeting2,
    meeting3,
    synth_dir,
)
