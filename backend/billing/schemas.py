"""Request/response bodies of the billing API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class SessionURL(BaseModel):
    """A hosted page (Stripe Checkout or the customer portal) to open in the browser."""

    url: str


class SubscriptionOut(BaseModel):
    tier: Literal["free", "pro"]
    status: Literal["active", "trialing", "past_due", "canceled"]
    # True when the plan currently includes cloud processing (Pro, active or trialing, or
    # past_due within the grace period after a failed renewal).
    entitled: bool
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    # A billing account exists, so "Manage subscription" (the portal) can open.
    can_manage: bool
    # The server requires a subscription for cloud processing.
    gate_enabled: bool
    provider: Literal["stripe", "offline"]
    # Daily job and file-size limits apply on this server (the embedded default has none).
    quotas_enforced: bool
    jobs_today: int
    jobs_per_day: int
    max_file_bytes: int
    # Set while a failed renewal is being retried and cloud processing still works: it stops
    # at this time unless the payment goes through (show a warning). None otherwise.
    grace_until: datetime | None = None


class WebhookAck(BaseModel):
    received: bool = True
    outcome: str


class UsageRow(BaseModel):
    user_id: uuid.UUID
    email: str | None
    tier: str
    period_start: datetime
    jobs: int
    gpu_seconds: float
    audio_seconds: float


class UsageReport(BaseModel):
    start: datetime
    end: datetime
    granularity: Literal["day", "week", "month"]
    rows: list[UsageRow] = Field(default_factory=list)
