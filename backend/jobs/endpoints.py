"""HTTP endpoints of the jobs domain: submit (streamed multipart), status, list, cancel."""

from __future__ import annotations

import time
from typing import Annotated

import anyio
from fastapi import APIRouter, BackgroundTasks, Header, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from backend.auth.dependencies import CurrentUserId
from backend.db import SessionDep
from backend.errors import PayloadTooLargeError
from backend.jobs.dependencies import JobAdmissionDep, JobDispatcherDep, JobServiceDep
from backend.jobs.repository import FINISHED, JobRow, JobState
from backend.jobs.schemas import JobCreated, JobStatus, JobSummary
from backend.jobs.service import check_idempotency_key
from backend.jobs.upload import FILE_FIELD, PARAMS_FIELD, receive_multipart
from backend.jobs.worker import delete_input

ROUTE_PREFIX = "/api/v1/jobs"
MAX_WAIT_SECONDS = 30.0
LONG_POLL_STEP_SECONDS = 0.2
_MULTIPART_SLACK = 64 * 1024  # part headers, boundaries and the params field

router = APIRouter(prefix=ROUTE_PREFIX, tags=["jobs"])

_ERRORS = {
    400: {"description": "Malformed request"},
    401: {"description": "Not signed in"},
    403: {"description": "No subscription that includes remote processing"},
    404: {"description": "No such job (or not yours)"},
    409: {"description": "The job already finished"},
    413: {"description": "File too large or recording too long"},
    415: {"description": "Not an audio/video file"},
    422: {"description": "Invalid params"},
    429: {"description": "Quota exceeded"},
}


@router.post(
    "",
    status_code=202,
    response_model=JobCreated,
    responses={k: _ERRORS[k] for k in (400, 401, 403, 413, 415, 422, 429)},
    summary="Upload audio and queue a processing job",
    description=f"multipart/form-data: `{FILE_FIELD}` (the audio) and optional `{PARAMS_FIELD}`"
    " (JSON object: model, language, diarize, vad, beam_size, num_speakers, min_speakers,"
    " max_speakers, kind). A repeated `Idempotency-Key` returns the first job.",
)
async def submit_job(
    request: Request,
    user_id: CurrentUserId,
    jobs: JobServiceDep,
    dispatcher: JobDispatcherDep,
    admission: JobAdmissionDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    settings = jobs.settings
    key = check_idempotency_key(idempotency_key)
    if key is not None:
        existing = await run_in_threadpool(jobs.find_existing, user_id, key)
        if existing is not None:
            return _accepted(str(existing.id), replayed=True)

    declared = _content_length(request)
    if declared is not None and declared > settings.job_max_upload_bytes + _MULTIPART_SLACK:
        raise PayloadTooLargeError(
            f"The file is larger than the {settings.job_max_upload_bytes // (1024 * 1024)} "
            "MB limit for remote processing; process it locally instead."
        )
    # The declared body is the file plus a little multipart framing: close enough to refuse
    # a too-large file before it is uploaded; the exact size is checked again on admission.
    size_hint = None if declared is None else max(0, declared - _MULTIPART_SLACK)
    await run_in_threadpool(jobs.precheck, admission, user_id, size_hint)

    upload = await receive_multipart(
        request.headers.get("content-type"),
        request.stream(),
        dest_dir=dispatcher.upload_dir,
        max_bytes=settings.job_max_upload_bytes,
    )
    try:
        kind, params = jobs.parse_params(upload.fields.get(PARAMS_FIELD))
        assert upload.path is not None
        ext, seconds = await run_in_threadpool(jobs.inspect_audio, upload.path)
        job, created = await run_in_threadpool(
            jobs.create_job,
            admission,
            user_id=user_id,
            upload=upload,
            ext=ext,
            audio_seconds=seconds,
            kind=kind,
            params=params,
            idempotency_key=key,
        )
    finally:
        upload.discard()
    if created:
        await run_in_threadpool(dispatcher.dispatch, job.id)
    return _accepted(str(job.id), replayed=not created)


@router.get(
    "/{job_id}",
    response_model=JobStatus,
    responses={k: _ERRORS[k] for k in (401, 404)},
    summary="Status, stage, progress and (when completed) the transcript of a job",
    description="With `wait` (seconds, up to 30) the answer is held until the job finishes, "
    "its status, stage or progress changes, or the time is up (long polling).",
)
async def get_job(
    job_id: str,
    user_id: CurrentUserId,
    jobs: JobServiceDep,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_SECONDS)] = 0,
) -> JobStatus:
    job = await run_in_threadpool(jobs.read_job, user_id, job_id)
    if wait > 0 and job.status not in FINISHED:
        # A pool connection is only held for each short read, never across the wait.
        seen = _observed(job)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            await anyio.sleep(min(LONG_POLL_STEP_SECONDS, max(0.0, deadline - time.monotonic())))
            job = await run_in_threadpool(jobs.read_job, user_id, job_id)
            if job.status in FINISHED or _observed(job) != seen:
                break
    return JobStatus.from_row(job)


def _observed(job: JobRow) -> tuple[JobState, str | None, float]:
    return job.status, job.stage, round(float(job.progress), 2)


@router.get("", response_model=list[JobSummary], summary="The user's jobs, newest first")
def list_jobs(
    user_id: CurrentUserId,
    conn: SessionDep,
    jobs: JobServiceDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    status: Annotated[str | None, Query()] = None,
) -> list[JobSummary]:
    return [
        JobSummary.from_row(j) for j in jobs.list_jobs(conn, user_id, limit=limit, status=status)
    ]


@router.post(
    "/{job_id}/cancel",
    status_code=202,
    response_model=JobStatus,
    responses={k: _ERRORS[k] for k in (401, 404, 409)},
    summary="Cancel a queued job, or ask the worker to stop a running one",
)
def cancel_job(
    job_id: str,
    user_id: CurrentUserId,
    conn: SessionDep,
    jobs: JobServiceDep,
    dispatcher: JobDispatcherDep,
    background: BackgroundTasks,
) -> JobStatus:
    job = jobs.cancel_job(conn, user_id, job_id)
    if job.status is JobState.CANCELED and not jobs.settings.job_keep_inputs:
        # Canceled while queued: no worker will touch it; drop the audio after the commit.
        background.add_task(delete_input, dispatcher.queue, jobs.storage, job.id)
    return JobStatus.from_row(job)


def _accepted(job_id: str, *, replayed: bool) -> JSONResponse:
    headers = {"Location": f"{ROUTE_PREFIX}/{job_id}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse({"job_id": job_id}, status_code=202, headers=headers)


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
