"""Job-queue settings (NOJOIN_* environment variables), owned by the jobs domain.

Same prefix and loading rules as backend/settings.py; kept here so the jobs domain owns its
knobs (as billing does).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MB = 1024 * 1024


class DispatchMode(StrEnum):
    """How the API hands committed jobs to workers (NOJOIN_JOB_DISPATCH)."""

    AUTO = "auto"  # celery when NOJOIN_REDIS_URL is set, else embedded
    EMBEDDED = "embedded"  # an in-process worker thread claims from the database (no Redis)
    CELERY = "celery"  # the API only enqueues job ids to Redis; `nojoin-worker` runs them
    NONE = "none"  # the API only records jobs; `nojoin-worker --mode pull` processes pull


class JobSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NOJOIN_", extra="ignore")

    job_dispatch: DispatchMode = DispatchMode.AUTO
    redis_url: str | None = None
    celery_queue: str = "nojoin-jobs"

    # Upload limits (billing's per-tier quotas may be stricter, never looser).
    job_max_upload_bytes: int = Field(default=2048 * MB, ge=1)
    job_max_audio_seconds: float = Field(default=6 * 3600.0, gt=0)

    # Leasing: a worker holds a job for `job_lease_seconds` and renews it every
    # `job_heartbeat_seconds`; a lease not renewed in time is reaped and the job retried.
    job_lease_seconds: float = Field(default=60.0, gt=0)
    job_heartbeat_seconds: float = Field(default=15.0, gt=0)
    job_max_attempts: int = Field(default=3, ge=1)
    job_backoff_base_seconds: float = Field(default=10.0, ge=0)
    job_backoff_max_seconds: float = Field(default=600.0, ge=0)
    # How often the API (and pull workers) reap expired leases and re-dispatch due jobs.
    job_reaper_interval_seconds: float = Field(default=5.0, gt=0)
    # A queued job whose broker message was sent this long ago and is still queued is sent
    # again (a lost message, a Redis restart); duplicates are harmless (the claim fences).
    job_redispatch_seconds: float = Field(default=300.0, gt=0)
    # Celery/Redis visibility timeout: must exceed the longest job, or Redis redelivers a
    # task whose worker is still busy (harmless, but wasteful).
    job_visibility_timeout_seconds: int = Field(default=12 * 3600, ge=60)
    # How long an idle pull worker sleeps between polls when nothing wakes it.
    job_poll_seconds: float = Field(default=2.0, gt=0)
    # Keep uploaded audio after its job finished (default: delete it, keep the transcript).
    job_keep_inputs: bool = False
    # Engine settings for workers.
    job_device: str = "auto"
    job_default_model: str = "tiny.en"
    job_allowed_models: str = "tiny.en,base,small,medium,large-v3,distil-large-v3"

    def dispatch_mode(self) -> DispatchMode:
        """The mode in effect: never AUTO."""
        if self.job_dispatch is DispatchMode.AUTO:
            return DispatchMode.CELERY if self.redis_url else DispatchMode.EMBEDDED
        return self.job_dispatch

    @property
    def allowed_models(self) -> list[str]:
        return [m.strip() for m in self.job_allowed_models.split(",") if m.strip()]
