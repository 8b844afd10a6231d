"""Process a file on the Nojoin backend's GPU workers through the jobs API (Qt-free).

Upload (with progress) -> `POST /api/v1/jobs` -> poll `GET /api/v1/jobs/{id}` with backoff ->
the same `Transcript` the local engine returns. Cancel stops the upload or asks the server to
cancel the job. A 403 (no subscription) or 429 (quota) raises an error carrying the server's
message, so the app can show it and offer local processing instead.

Where to connect and with which token comes from the `RemoteConnection` it is built with: the
composition root passes the Cloud Mode session's (`nojoin.cloud.connection.CloudConnection`)
into the pipeline's remote factory; tests and scripts pass a `StaticConnection`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol, cast, runtime_checkable

import httpx

from nojoin.errors import AudioError, CancelledError, ProcessingError
from nojoin.models import Transcript
from nojoin.processing.contract import (
    STAGE_DECODING,
    STAGE_DIARIZING,
    STAGE_DONE,
    STAGE_LOADING,
    STAGE_MERGING,
    STAGE_QUEUED,
    STAGE_STARTING,
    STAGE_TRANSCRIBING,
    STAGE_UPLOADING,
    CancelToken,
    ProcessingOptions,
    Progress,
    ProgressCallback,
)
from nojoin.processing.strategies.remote_errors import (
    SIGN_IN_FIRST,
    QuotaExceededError,
    RemoteAuthError,
    RemoteError,
    SubscriptionRequiredError,
)

__all__ = [
    "QuotaExceededError",
    "RemoteAuthError",
    "RemoteConnection",
    "RemoteError",
    "RemoteProcessingStrategy",
    "StaticConnection",
    "SubscriptionRequiredError",
    "job_params",
]

log = logging.getLogger(__name__)

JOBS_PATH = "/api/v1/jobs"
# Share of the overall progress bar spent uploading; the server's progress fills the rest.
UPLOAD_SHARE = 0.15
# How often the cancel watcher also checks whether the wait is over.
CANCEL_WATCH_SECONDS = 0.2
# The server's stages (`GET /api/v1/jobs/{id}` -> "stage") that are also the local engine's,
# reported as they are; the worker fetching the upload from storage counts as starting.
_SERVER_STAGES = {
    s: s
    for s in (
        STAGE_STARTING,
        STAGE_LOADING,
        STAGE_DECODING,
        STAGE_TRANSCRIBING,
        STAGE_DIARIZING,
        STAGE_MERGING,
    )
} | {"downloading": STAGE_STARTING}


@runtime_checkable
class RemoteConnection(Protocol):
    """Where the backend is and a currently valid access token (refreshed as needed)."""

    def base_url(self) -> str: ...

    def access_token(self) -> str:
        """Raise RemoteAuthError when nobody is signed in."""
        ...


class StaticConnection:
    """A fixed URL and token (tests, scripts)."""

    def __init__(self, base_url: str, token: str) -> None:
        self._base_url = base_url.rstrip("/")
        self._token = token

    def base_url(self) -> str:
        return self._base_url

    def access_token(self) -> str:
        return self._token


class _UploadCancelled(Exception):
    pass


class _ProgressReader:
    """A file wrapper httpx streams from: reports bytes sent and stops on cancel."""

    def __init__(
        self, fh: IO[bytes], size: int, on_bytes: Callable[[int], None], cancel: CancelToken
    ) -> None:
        self._fh = fh
        self._size = size
        self._on_bytes = on_bytes
        self._cancel = cancel
        self._sent = 0

    def read(self, n: int = -1) -> bytes:
        if self._cancel.cancelled:
            raise _UploadCancelled()
        chunk = self._fh.read(n)
        self._sent += len(chunk)
        self._on_bytes(self._sent)
        return chunk

    # httpx sizes the body from these, so the request carries a Content-Length.
    def fileno(self) -> int:
        return self._fh.fileno()

    def tell(self) -> int:
        return self._fh.tell()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if offset == 0 and whence == os.SEEK_SET:
            self._sent = 0
        return self._fh.seek(offset, whence)


class RemoteProcessingStrategy:
    """The backend's GPU workers, behind the same interface as LocalProcessingStrategy."""

    name = "remote"

    def __init__(
        self,
        connection: RemoteConnection | None = None,
        *,
        client: httpx.Client | None = None,
        poll_initial: float = 0.5,
        poll_max: float = 5.0,
        poll_factor: float = 1.5,
        long_poll: float = 3.0,
        offline_grace: float = 120.0,
        upload_attempts: int = 3,
        timeout: float = 30.0,
    ) -> None:
        self._connection = connection
        self._client = client or httpx.Client(timeout=httpx.Timeout(timeout, write=timeout))
        self._owns_client = client is None
        self.poll_initial = poll_initial
        self.poll_max = poll_max
        self.poll_factor = poll_factor
        # Seconds the server may hold a status request; also the longest process() may take
        # to return after a cancel (the server itself hears of the cancel at once).
        self.long_poll = long_poll
        self.offline_grace = offline_grace
        self.upload_attempts = upload_attempts
        self.last_job_id: str | None = None

    # --- ProcessingStrategy ---------------------------------------------------------

    def process(
        self,
        audio_path: Path,
        options: ProcessingOptions,
        progress: ProgressCallback,
        cancel: CancelToken,
    ) -> Transcript:
        audio_path = Path(audio_path)
        cancel.raise_if_cancelled()
        if not audio_path.is_file():
            raise AudioError(f"{audio_path} does not exist or is not a file.")
        params = job_params(options)
        conn = self._conn()
        job_id = self._submit(conn, audio_path, params, progress, cancel)
        self.last_job_id = job_id
        return self._wait(conn, job_id, progress, cancel)

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    # --- internals --------------------------------------------------------------------

    def _conn(self) -> RemoteConnection:
        if self._connection is None:
            raise RemoteAuthError(SIGN_IN_FIRST)
        return self._connection

    def _headers(self, conn: RemoteConnection) -> dict[str, str]:
        return {"Authorization": f"Bearer {conn.access_token()}"}

    def _submit(
        self,
        conn: RemoteConnection,
        audio_path: Path,
        params: dict[str, Any],
        progress: ProgressCallback,
        cancel: CancelToken,
    ) -> str:
        import json

        size = audio_path.stat().st_size
        # One key for every retry of this submission: the server creates one job at most.
        key = str(uuid.uuid4())
        progress(Progress(STAGE_UPLOADING, 0.0, None, "Uploading to the server"))
        last_report = [0.0]

        def on_bytes(sent: int) -> None:
            now = time.monotonic()
            if now - last_report[0] >= 0.2 or sent >= size:
                last_report[0] = now
                frac = sent / size if size else 1.0
                progress(
                    Progress(
                        STAGE_UPLOADING,
                        UPLOAD_SHARE * min(1.0, frac),
                        None,
                        f"Uploading {sent / 1e6:.1f} of {size / 1e6:.1f} MB",
                    )
                )

        url = conn.base_url().rstrip("/") + JOBS_PATH
        attempt = 0
        while True:
            attempt += 1
            try:
                with open(audio_path, "rb") as fh:
                    # httpx only needs read/seek/tell/fileno; it types the slot as IO[bytes].
                    reader = cast(IO[bytes], _ProgressReader(fh, size, on_bytes, cancel))
                    response = self._client.post(
                        url,
                        headers={**self._headers(conn), "Idempotency-Key": key},
                        files={"file": (audio_path.name, reader, "application/octet-stream")},
                        data={"params": json.dumps(params)},
                    )
            except _UploadCancelled:
                raise CancelledError("Processing was cancelled.") from None
            except httpx.TransportError as exc:
                if cancel.cancelled:
                    raise CancelledError("Processing was cancelled.") from None
                if attempt >= self.upload_attempts:
                    raise RemoteError(
                        f"Could not upload to the Nojoin server ({_why(exc)}). Check the "
                        "connection and try again, or process locally."
                    ) from exc
                log.warning("upload attempt %d failed (%s); retrying", attempt, _why(exc))
                if cancel.wait(min(2.0 * attempt, 10.0)):
                    raise CancelledError("Processing was cancelled.") from None
                continue
            if response.status_code == 202:
                job_id = str(response.json()["job_id"])
                log.info("submitted %s as remote job %s", audio_path.name, job_id)
                return job_id
            if response.status_code >= 500 and attempt < self.upload_attempts:
                log.warning("upload got %d; retrying", response.status_code)
                if cancel.wait(min(2.0 * attempt, 10.0)):
                    raise CancelledError("Processing was cancelled.") from None
                continue
            raise _error_for(response)

    def _wait(
        self, conn: RemoteConnection, job_id: str, progress: ProgressCallback, cancel: CancelToken
    ) -> Transcript:
        """Wait for the job's result. A cancel goes to the server the moment it is asked for,
        from a side thread, not after the long poll in flight comes back: the server can
        then stop the job (and its GPU time) within one worker heartbeat."""
        finished = threading.Event()

        def send_cancel_when_asked() -> None:
            while not finished.is_set():
                if cancel.wait(CANCEL_WATCH_SECONDS):
                    self._cancel_remote(conn, job_id)
                    return

        watcher = threading.Thread(
            target=send_cancel_when_asked, name="nojoin-remote-cancel", daemon=True
        )
        watcher.start()
        try:
            return self._poll(conn, job_id, progress, cancel)
        finally:
            finished.set()
            if cancel.cancelled:
                watcher.join(timeout=15.0)  # the cancel request is on its way; let it arrive

    def _poll(
        self, conn: RemoteConnection, job_id: str, progress: ProgressCallback, cancel: CancelToken
    ) -> Transcript:
        """Long-poll the job (the server holds each request up to `long_poll` s until
        something changes); back off when the server answers at once with no news.
        As with local processing, a cancel asked for before the result arrived wins."""
        url = f"{conn.base_url().rstrip('/')}{JOBS_PATH}/{job_id}"
        params = {"wait": self.long_poll} if self.long_poll > 0 else None
        delay = self.poll_initial
        offline_since: float | None = None
        seen: tuple[str, str, float] | None = None
        while True:
            if cancel.cancelled:
                raise CancelledError("Processing was cancelled.")  # the watcher tells the server
            asked = time.monotonic()
            changed = False
            try:
                response = self._client.get(url, headers=self._headers(conn), params=params)
            except httpx.TransportError as exc:
                response = None
                offline_since = offline_since or time.monotonic()
                if time.monotonic() - offline_since > self.offline_grace:
                    raise RemoteError(
                        f"Lost contact with the Nojoin server ({_why(exc)}). The job may still "
                        "finish there; try again later."
                    ) from exc
            if response is not None:
                if response.status_code == 200:
                    offline_since = None
                    body = response.json()
                    status = str(body.get("status"))
                    if status == "COMPLETED":
                        cancel.raise_if_cancelled()
                        progress(Progress(STAGE_DONE, 1.0, 0.0, "Done"))
                        return Transcript.from_dict(body.get("result") or {})
                    if status == "FAILED":
                        raise RemoteError(
                            body.get("error") or "The server could not process this file."
                        )
                    if status == "CANCELED":
                        raise CancelledError(body.get("error") or "The job was canceled.")
                    fraction = float(body.get("progress") or 0.0)
                    stage = _server_stage(body.get("stage"))
                    if status == "QUEUED":
                        progress(Progress(STAGE_QUEUED, UPLOAD_SHARE, None, "Waiting for a server"))
                    else:
                        progress(
                            Progress(
                                stage,
                                UPLOAD_SHARE + (1 - UPLOAD_SHARE) * fraction,
                                None,
                                f"Processing on the server ({fraction:.0%})",
                            )
                        )
                    now_seen = (status, stage, round(fraction, 2))
                    changed = now_seen != seen
                    seen = now_seen
                elif response.status_code >= 500:
                    offline_since = offline_since or time.monotonic()
                    if time.monotonic() - offline_since > self.offline_grace:
                        raise _error_for(response)
                else:
                    raise _error_for(response)
            held = params is not None and time.monotonic() - asked >= 0.5 * self.long_poll
            if changed or held:
                delay = self.poll_initial  # news, or the server already waited for us
                continue
            if cancel.wait(delay):
                continue  # the loop top sends the cancel
            delay = min(self.poll_max, delay * self.poll_factor)

    def _cancel_remote(self, conn: RemoteConnection, job_id: str) -> None:
        try:
            self._client.post(
                f"{conn.base_url().rstrip('/')}{JOBS_PATH}/{job_id}/cancel",
                headers=self._headers(conn),
                timeout=10.0,
            )
        except Exception:  # best effort: the user already chose to stop waiting
            log.warning("could not cancel remote job %s", job_id, exc_info=True)


def job_params(options: ProcessingOptions) -> dict[str, Any]:
    """What the server needs from `options`; device and threads are the server's business."""
    model = options.model
    if Path(model).expanduser().is_dir() or os.sep in model:
        raise ProcessingError(
            f"Remote processing uses the server's models; choose a model name (tiny.en, base, "
            f"small, ...) instead of the folder {model}."
        )
    params: dict[str, Any] = {
        "model": model,
        "diarize": options.diarize,
        "vad": options.vad,
        "beam_size": options.beam_size,
    }
    if options.language_code is not None:
        params["language"] = options.language_code
    for key in ("num_speakers", "min_speakers", "max_speakers"):
        value = getattr(options, key)
        if value is not None:
            params[key] = value
    return params


def _server_stage(stage: object) -> str:
    """The Progress stage for a running job's server-side `stage`. A server too old to say
    (or a stage this app does not know) reads as transcribing, the bulk of any job."""
    if isinstance(stage, str) and stage in _SERVER_STAGES:
        return _SERVER_STAGES[stage]
    return STAGE_TRANSCRIBING


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return str(body["detail"])
    return f"The server answered {response.status_code} {response.reason_phrase}."


def _error_for(response: httpx.Response) -> RemoteError:
    detail = _detail(response)
    code = response.status_code
    if code == 401:
        return RemoteAuthError(f"{detail} Sign in again.", status_code=code)
    if code == 403:
        return SubscriptionRequiredError(detail, status_code=code)
    if code == 429:
        retry = response.headers.get("Retry-After")
        try:
            retry_after = float(retry) if retry else None
        except ValueError:
            retry_after = None
        return QuotaExceededError(detail, retry_after=retry_after)
    return RemoteError(detail, status_code=code)


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
