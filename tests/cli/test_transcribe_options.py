"""`nojoin transcribe` takes the user's saved Settings as defaults; flags win."""

from __future__ import annotations

from nojoin.cli import build_parser
from nojoin.cli.transcribe_cmd import _options
from nojoin.config import LocalConfigRepository, Settings
from nojoin.processing.contract import ProcessingOptions


def parse(*argv: str) -> ProcessingOptions:
    return _options(build_parser().parse_args(["transcribe", "x.wav", *argv]))


def test_defaults_without_saved_settings() -> None:
    opts = parse()
    assert opts.model == "tiny.en" and opts.diarize and opts.engine == "senko"
    assert opts.language_code is None


def test_saved_settings_are_the_defaults() -> None:
    LocalConfigRepository().save(
        Settings(
            model="base", language="de", diarization_engine="none", min_speakers=3, max_speakers=3
        )
    )
    opts = parse()
    assert opts.model == "base" and opts.language_code == "de"
    assert opts.diarize is False
    assert opts.num_speakers == 3


def test_flags_override_saved_settings() -> None:
    LocalConfigRepository().save(
        Settings(
            model="base", language="de", diarization_engine="none", min_speakers=3, max_speakers=3
        )
    )
    opts = parse("--model", "tiny.en", "--language", "auto", "--diarize", "--max-speakers", "2")
    assert opts.model == "tiny.en" and opts.language_code is None
    assert opts.diarize is True
    assert (opts.num_speakers, opts.min_speakers, opts.max_speakers) == (None, None, 2)
