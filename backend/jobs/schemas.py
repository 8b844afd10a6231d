"""Request/response shapes of the jobs API (SPEC contract: job_id/status/progress/error/result)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from backend.jobs.repository import JobRow, JobState


class JobCreated(BaseModel):
    job_id: str


class JobStatus(BaseModel):
    """`result` is the `nojoin transcribe --format json` object once COMPLETED, else null."""

    job_id: str
    status: JobState = Field(description="QUEUED, PROCESSING, COMPLETED, FAILED or CANCELED")
    progress: float = Field(ge=0, le=1)
    error: str | None
    result: dict[str, Any] | None
    # Beyond the SPEC's five keys (clients that do not know it ignore it).
    stage: str | None = Field(
        description="What the worker is doing: starting, downloading, loading, decoding, "
        "transcribing, diarizing or merging; done once COMPLETED; null while queued or after "
        "the job failed or was canceled"
    )

    @classmethod
    def from_row(cls, job: JobRow) -> JobStatus:
        return cls(
            job_id=str(job.id),
            status=job.status,
            stage=job.stage,
            progress=1.0 if job.status is JobState.COMPLETED else round(float(job.progress), 4),
            error=job.error if job.status is not JobState.COMPLETED else None,
            result=job.result if job.status is JobState.COMPLETED else None,
        )


class JobSummary(BaseModel):
    job_id: str
    kind: str
    status: JobState
    progress: float
    stage: str | None
    error: str | None
    attempts: int
    audio_seconds: float | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_row(cls, job: JobRow) -> JobSummary:
        return cls(
            job_id=str(job.id),
            kind=job.kind,
            status=job.status,
            progress=round(float(job.progress), 4),
            stage=job.stage,
            error=job.error,
            attempts=job.attempts,
            audio_seconds=job.audio_seconds,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )
