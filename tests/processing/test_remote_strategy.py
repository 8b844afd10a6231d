"""RemoteProcessingStrategy without a server: what it sends and what it refuses up front.
(Its round trips against the real backend are in tests/backend/jobs/.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from nojoin.errors import AudioError, CancelledError, ProcessingError
from nojoin.processing.strategies.base import CancelToken, ProcessingOptions, ProcessingStrategy
from nojoin.processing.strategies.remote_strategy import (
    RemoteAuthError,
    RemoteProcessingStrategy,
    StaticConnection,
    default_connection,
    job_params,
    set_default_connection,
)


def test_is_a_processing_strategy() -> None:
    strategy = RemoteProcessingStrategy(StaticConnection("http://127.0.0.1:9", "t"))
    assert isinstance(strategy, ProcessingStrategy) and strategy.name == "remote"
    strategy.close()
    strategy.close()  # twice is fine


def test_job_params_carry_what_the_server_needs_only() -> None:
    options = ProcessingOptions(
        model="base", language="auto", device="cuda", threads=3, diarize=True, num_speakers=2
    )
    assert job_params(options) == {
        "model": "base",
        "diarize": True,
        "vad": True,
        "beam_size": 5,
        "num_speakers": 2,
    }
    assert job_params(ProcessingOptions(language="de"))["language"] == "de"


def test_model_folder_cannot_go_remote(tmp_path: Path) -> None:
    with pytest.raises(ProcessingError, match="choose a model name"):
        job_params(ProcessingOptions(model=str(tmp_path)))


def test_not_signed_in(tmp_path: Path) -> None:
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"RIFF")
    assert default_connection() is None
    strategy = RemoteProcessingStrategy()  # what pipeline.py builds in remote mode
    with pytest.raises(RemoteAuthError, match="Sign in"):
        strategy.process(audio, ProcessingOptions(), lambda p: None, CancelToken())
    set_default_connection(StaticConnection("http://127.0.0.1:9/", "tok"))
    try:
        conn = default_connection()
        assert conn is not None and conn.base_url() == "http://127.0.0.1:9"
    finally:
        set_default_connection(None)
    strategy.close()


def test_missing_file_and_cancel_before_start(tmp_path: Path) -> None:
    strategy = RemoteProcessingStrategy(StaticConnection("http://127.0.0.1:9", "t"))
    with pytest.raises(AudioError):
        strategy.process(tmp_path / "nope.wav", ProcessingOptions(), lambda p: None, CancelToken())
    token = CancelToken()
    token.cancel()
    with pytest.raises(CancelledError):
        strategy.process(tmp_path / "nope.wav", ProcessingOptions(), lambda p: None, token)
    strategy.close()


def test_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"RIFF" + b"\0" * 100)
    # Port 9 (discard) on loopback: connection refused at once.
    strategy = RemoteProcessingStrategy(
        StaticConnection("http://127.0.0.1:9", "t"), upload_attempts=1
    )
    with pytest.raises(ProcessingError, match="Could not upload"):
        strategy.process(audio, ProcessingOptions(), lambda p: None, CancelToken())
    strategy.close()
