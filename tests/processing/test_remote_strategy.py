"""RemoteProcessingStrategy without a server: what it sends and what it refuses up front.
(Its round trips against the real backend are in tests/backend/jobs/.)"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from nojoin.errors import AudioError, CancelledError, ProcessingError
from nojoin.processing.contract import (
    CancelToken,
    ProcessingOptions,
    ProcessingStrategy,
    Progress,
)
from nojoin.processing.pipeline import remote_factory
from nojoin.processing.strategies.remote_strategy import (
    RemoteAuthError,
    RemoteProcessingStrategy,
    StaticConnection,
    job_params,
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
    strategy = remote_factory(None)()  # what the pipeline builds with no session
    with pytest.raises(RemoteAuthError, match="Sign in"):
        strategy.process(audio, ProcessingOptions(), lambda p: None, CancelToken())
    strategy.close()
    # The connection the composition root passes in is the one the strategy uses.
    connected = remote_factory(StaticConnection("http://127.0.0.1:9/", "tok"))()
    assert isinstance(connected, RemoteProcessingStrategy)
    assert connected._conn().base_url() == "http://127.0.0.1:9"
    connected.close()


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


class _HeldPollServer:
    """Answers like the jobs API: 202 on submit; each status request is held (long poll)
    until the job changes; the job completes `finish_after` s after submission unless a
    cancel arrives first. Records when the cancel arrived."""

    def __init__(self, finish_after: float) -> None:
        self.finish_after = finish_after
        self.submitted = 0.0
        self.cancel_at: float | None = None
        self.changed = threading.Event()

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path == "/api/v1/jobs":
            request.read()
            self.submitted = time.monotonic()
            return httpx.Response(202, json={"job_id": "j1", "status": "QUEUED"})
        if request.method == "POST" and path == "/api/v1/jobs/j1/cancel":
            self.cancel_at = time.monotonic()
            self.changed.set()
            return httpx.Response(202, json={"job_id": "j1", "status": "PROCESSING"})
        if request.method == "GET" and path == "/api/v1/jobs/j1":
            wait = float(request.url.params.get("wait", "0"))
            done_in = self.finish_after - (time.monotonic() - self.submitted)
            self.changed.wait(max(0.0, min(wait, done_in)))
            if self.cancel_at is not None:
                return httpx.Response(200, json={"status": "CANCELED", "error": "Canceled."})
            if time.monotonic() - self.submitted >= self.finish_after:
                return httpx.Response(200, json={"status": "COMPLETED", "result": {}})
            return httpx.Response(200, json={"status": "PROCESSING", "progress": 0.3})
        return httpx.Response(404, json={"detail": "not found"})


def _cancel_after(token: CancelToken, seconds: float) -> None:
    threading.Timer(seconds, token.cancel).start()


def test_cancel_reaches_the_server_during_a_held_poll(tmp_path: Path) -> None:
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"RIFF" + b"\0" * 100)
    server = _HeldPollServer(finish_after=30.0)
    client = httpx.Client(transport=httpx.MockTransport(server.handle))
    strategy = RemoteProcessingStrategy(
        StaticConnection("http://nojoin.test", "t"), client=client, long_poll=20.0
    )
    token = CancelToken()
    _cancel_after(token, 0.5)
    started = time.monotonic()
    with pytest.raises(CancelledError):
        strategy.process(audio, ProcessingOptions(), lambda p: None, token)
    # The first poll is held for up to 20 s; the cancel must not wait for it. The bounds are
    # far below those 20 s (so they still prove it) but far above the 0.5 s timer, so a slow,
    # busy CI machine cannot trip them.
    assert server.cancel_at is not None
    assert server.cancel_at - started < 10.0
    assert time.monotonic() - started < 12.0
    client.close()


def test_a_result_arriving_after_cancel_is_not_returned(tmp_path: Path) -> None:
    """As with local processing: once the user cancelled, process() raises, even if the
    server finished in the meantime."""
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"RIFF" + b"\0" * 100)
    server = _HeldPollServer(finish_after=0.3)

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/cancel"):
            return httpx.Response(409, json={"detail": "The job has already finished."})
        response = server.handle(request)
        if request.method == "GET":
            token.cancel()  # cancelled while the (completed) answer is on its way
        return response

    client = httpx.Client(transport=httpx.MockTransport(handle))
    strategy = RemoteProcessingStrategy(
        StaticConnection("http://nojoin.test", "t"), client=client, long_poll=5.0
    )
    token = CancelToken()
    with pytest.raises(CancelledError):
        strategy.process(audio, ProcessingOptions(), lambda p: None, token)
    client.close()


class _StagedServer:
    """Answers like the jobs API: 202 on submit, then one status answer per poll from
    `answers` (the last one repeats)."""

    def __init__(self, answers: list[dict[str, object]]) -> None:
        self.answers = answers
        self.polls = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/api/v1/jobs":
            request.read()
            return httpx.Response(202, json={"job_id": "j1"})
        if request.method == "GET" and request.url.path == "/api/v1/jobs/j1":
            body = self.answers[min(self.polls, len(self.answers) - 1)]
            self.polls += 1
            return httpx.Response(200, json={"job_id": "j1", "error": None, **body})
        return httpx.Response(404, json={"detail": "not found"})


def _stages_reported(tmp_path: Path, answers: list[dict[str, object]]) -> list[Progress]:
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"RIFF" + b"\0" * 100)
    client = httpx.Client(transport=httpx.MockTransport(_StagedServer(answers).handle))
    strategy = RemoteProcessingStrategy(
        StaticConnection("http://nojoin.test", "t"), client=client, long_poll=0, poll_initial=0
    )
    reports: list[Progress] = []
    strategy.process(audio, ProcessingOptions(diarize=True), reports.append, CancelToken())
    client.close()
    return reports


def test_progress_names_the_servers_stage(tmp_path: Path) -> None:
    """The app shows the step the server is at (Loading model, Finding speakers, ...) as it
    does for local processing, not "Transcribing" from start to end."""

    def running(stage: str, progress: float) -> dict[str, object]:
        return {"status": "PROCESSING", "stage": stage, "progress": progress, "result": None}

    reports = _stages_reported(
        tmp_path,
        [
            {"status": "QUEUED", "stage": None, "progress": 0.0, "result": None},
            running("starting", 0.0),
            running("downloading", 0.0),
            running("loading", 0.02),
            running("decoding", 0.07),
            running("transcribing", 0.4),
            running("diarizing", 0.85),
            running("merging", 0.99),
            {"status": "COMPLETED", "stage": "done", "progress": 1.0, "result": {}},
        ],
    )
    stages = [p.stage for p in reports if p.stage != "uploading"]
    assert stages == [
        "queued",
        "starting",
        "starting",  # the worker fetching the upload is part of starting, for the user
        "loading",
        "decoding",
        "transcribing",
        "diarizing",
        "merging",
        "done",
    ]
    fractions = [p.fraction for p in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    diarizing = next(p for p in reports if p.stage == "diarizing")
    assert diarizing.fraction == pytest.approx(0.15 + 0.85 * 0.85)


def test_a_server_without_stages_reads_as_transcribing(tmp_path: Path) -> None:
    """An older server (no "stage" key) or a stage this app does not know."""
    reports = _stages_reported(
        tmp_path,
        [
            {"status": "PROCESSING", "progress": 0.5, "result": None},
            {"status": "PROCESSING", "stage": "defragmenting", "progress": 0.6, "result": None},
            {"status": "COMPLETED", "progress": 1.0, "result": {}},
        ],
    )
    assert [p.stage for p in reports if p.stage != "uploading"] == [
        "transcribing",
        "transcribing",
        "done",
    ]
