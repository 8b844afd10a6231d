"""Job submission and queries (`JobService`): validation, storing the upload, inserting the row.

Services never commit on their own: `create_job` runs its insert in one explicit transaction
(and the admission check inside it) because the job must be committed *before* it is
dispatched.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any

from backend.db import Connection, Database
from backend.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from backend.jobs import kinds
from backend.jobs.admission import JobAdmission
from backend.jobs.repository import FINISHED, JobRepository, JobRow, JobState
from backend.jobs.settings import JobSettings
from backend.jobs.upload import ReceivedUpload, sniff_audio
from backend.storage.base import StorageProvider
from nojoin.processing.contract import AudioError

logger = logging.getLogger(__name__)

_IDEMPOTENCY_MAX = 200


def check_idempotency_key(key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > _IDEMPOTENCY_MAX or not key.isprintable():
        raise BadRequestError(
            f"Idempotency-Key must be 1 to {_IDEMPOTENCY_MAX} printable characters."
        )
    return key


def parse_params(raw: str | None, settings: JobSettings) -> tuple[str, dict[str, Any]]:
    """(kind, params) from the optional `params` form field (a JSON object)."""
    params: Any = {}
    if raw is not None and raw.strip():
        try:
            params = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValidationFailedError(f"params is not valid JSON: {exc.msg}.") from exc
    if not isinstance(params, dict):
        raise ValidationFailedError("params must be a JSON object.")
    try:
        kind = kinds.kind_for(params)
        kinds.validate_params(params, allowed_models=settings.allowed_models)
    except kinds.InvalidParamsError as exc:
        raise ValidationFailedError(str(exc)) from exc
    params.pop("kind", None)
    return kind, params


def inspect_audio(path: Path, settings: JobSettings) -> tuple[str, float]:
    """(extension, duration in seconds). 415 for non-audio, 413 when longer than allowed."""
    from nojoin.audio.decode import probe

    ext = sniff_audio(path)
    try:
        info = probe(path)
    except AudioError as exc:
        raise UnsupportedMediaTypeError(
            f"The file could not be read as audio: {exc.message}"
        ) from exc
    if info.duration <= 0:
        raise ValidationFailedError("The file contains no audio samples.")
    if info.duration > settings.job_max_audio_seconds:
        raise PayloadTooLargeError(
            f"The recording is {info.duration / 3600:.1f} h long; remote processing takes at "
            f"most {settings.job_max_audio_seconds / 3600:.1f} h. Process it locally instead."
        )
    return ext, float(info.duration)


class JobService:
    """Submission and queries of jobs; one per Runtime (`runtime.jobs`, `JobServiceDep`).

    Methods that take a `Connection` run in the caller's session; those that take none open
    their own short transactions (the upload and the long poll must not hold a connection)."""

    def __init__(self, settings: JobSettings, db: Database, storage: StorageProvider) -> None:
        self.settings = settings
        self.db = db
        self.storage = storage

    def parse_params(self, raw: str | None) -> tuple[str, dict[str, Any]]:
        return parse_params(raw, self.settings)

    def inspect_audio(self, path: Path) -> tuple[str, float]:
        return inspect_audio(path, self.settings)

    def find_existing(self, user_id: uuid.UUID, key: str) -> JobRow | None:
        with self.db.transaction() as conn:
            return JobRepository.from_session(conn).find_by_idempotency_key(user_id, key)

    def precheck(self, admission: JobAdmission, user_id: uuid.UUID, size: int | None) -> None:
        with self.db.transaction() as conn:
            admission.check_can_submit(conn, user_id, size)

    def create_job(
        self,
        admission: JobAdmission,
        *,
        user_id: uuid.UUID,
        upload: ReceivedUpload,
        ext: str,
        audio_seconds: float,
        kind: str,
        params: dict[str, Any],
        idempotency_key: str | None,
    ) -> tuple[JobRow, bool]:
        """Store the upload, then insert the job and its input file in one transaction.

        The object is written first so no worker ever sees a job without its file; if the
        insert fails (or an idempotent duplicate wins) the object is deleted again. Returns
        (job, created)."""
        assert upload.path is not None
        job_id = uuid.uuid4()
        key = f"{user_id}/jobs/{job_id}/input{ext}"
        with open(upload.path, "rb") as fh:
            self.storage.put(key, fh)
        created = False
        try:
            with self.db.transaction() as conn:
                admission.admit(conn, user_id, upload.size)
                jobs = JobRepository.from_session(conn)
                job, created = jobs.insert_job(
                    job_id=job_id,
                    user_id=user_id,
                    kind=kind,
                    params=params,
                    idempotency_key=idempotency_key,
                    priority=100,
                    max_attempts=self.settings.job_max_attempts,
                    audio_seconds=audio_seconds,
                    input_size=upload.size,
                )
                if created:
                    jobs.add_file(
                        job_id, "input", key, size=upload.size, content_type=_content_type(ext)
                    )
        finally:
            if not created:
                _delete_quietly(self.storage, key)
        return job, created

    def read_job(self, user_id: uuid.UUID, job_id: str) -> JobRow:
        with self.db.transaction() as conn:
            return self.get_job(conn, user_id, job_id)

    def get_job(self, conn: Connection, user_id: uuid.UUID, job_id: str) -> JobRow:
        job = JobRepository.from_session(conn).get_user_job(user_id, _parse_id(job_id))
        if job is None:
            raise NotFoundError("Job not found.", code="job_not_found")
        return job

    def list_jobs(
        self, conn: Connection, user_id: uuid.UUID, *, limit: int, status: str | None
    ) -> list[JobRow]:
        state: JobState | None = None
        if status is not None:
            try:
                state = JobState(status)
            except ValueError:
                raise ValidationFailedError(
                    f"status must be one of: {', '.join(JobState)}."
                ) from None
        return JobRepository.from_session(conn).list_user_jobs(user_id, limit=limit, status=state)

    def cancel_job(self, conn: Connection, user_id: uuid.UUID, job_id: str) -> JobRow:
        parsed = _parse_id(job_id)
        jobs = JobRepository.from_session(conn)
        job = jobs.request_cancel(user_id, parsed)
        if job is not None:
            return job
        existing = jobs.get_user_job(user_id, parsed)
        if existing is None:
            raise NotFoundError("Job not found.", code="job_not_found")
        assert existing.status in FINISHED
        raise ConflictError(
            f"The job is already {existing.status.lower()}; it cannot be canceled.",
            code="job_finished",
        )


def _parse_id(job_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(job_id)
    except ValueError:
        # A malformed id names no job: same answer as an unknown one.
        raise NotFoundError("Job not found.", code="job_not_found") from None


def _content_type(ext: str) -> str:
    return {
        ".wav": "audio/wav",
        ".mp3": "audio/mpeg",
        ".flac": "audio/flac",
        ".ogg": "audio/ogg",
        ".m4a": "audio/mp4",
        ".webm": "video/webm",
        ".aac": "audio/aac",
    }.get(ext, "application/octet-stream")


def _delete_quietly(storage: StorageProvider, key: str) -> None:
    try:
        storage.delete(key)
    except Exception:
        logger.warning("could not delete orphaned upload %s", key, exc_info=True)
