"""The seam other domains call before queuing remote work: tier gate + per-tier quotas.

    from backend.billing.gate import admit_job
    admit_job(conn, runtime, user_id, file_size)   # in the job insert's transaction

Raises ForbiddenError (403, no subscription while the gate is on), PayloadTooLargeError (413,
file above the plan's limit) or TooManyRequestsError (429 + Retry-After, daily jobs used up).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from fastapi import FastAPI

from backend.billing.dependencies import billing_service
from backend.billing.service import Admission
from backend.billing.settings import BillingSettings
from backend.db import Connection
from backend.runtime import Runtime

if TYPE_CHECKING:
    from backend.jobs.admission import JobAdmission


__all__ = [
    "Admission",
    "BillingAdmission",
    "admit_job",
    "check_entitlement",
    "install_billing_admission",
]


def check_entitlement(
    conn: Connection, runtime: Runtime, user_id: uuid.UUID, file_size: int | None = None
) -> str:
    """Gate and size check only (nothing reserved): cheap, before an upload is streamed."""
    return billing_service(runtime).check_entitlement(conn, user_id, file_size)


def admit_job(
    conn: Connection, runtime: Runtime, user_id: uuid.UUID, file_size: int | None = None
) -> Admission:
    """Gate, size and one slot of today's job quota, in the caller's transaction (right
    before the job row is inserted, so a rollback gives the slot back)."""
    return billing_service(runtime).admit_job(conn, user_id, file_size)


class BillingAdmission:
    """The jobs domain's `JobAdmission` (backend/jobs/admission.py) backed by billing: the
    server-wide upload limit first, then the tier gate and per-tier quotas.

    Resolves the runtime and the job settings at call time: the lifespan may start them after
    the app is built."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def _runtime(self) -> Runtime:
        runtime: Runtime = self._app.state.runtime
        return runtime

    def _upload_limit(self) -> JobAdmission:
        from backend.jobs.admission import default_admission
        from backend.jobs.settings import JobSettings

        settings = getattr(self._app.state, "job_settings", None) or JobSettings()
        return default_admission(settings)

    def check_can_submit(self, conn: Connection, user_id: uuid.UUID, size: int | None) -> None:
        self._upload_limit().check_can_submit(conn, user_id, size)
        billing_service(self._runtime()).precheck(conn, user_id, size)

    def admit(self, conn: Connection, user_id: uuid.UUID, size: int) -> None:
        self._upload_limit().admit(conn, user_id, size)
        admit_job(conn, self._runtime(), user_id, size)


def install_billing_admission(app: FastAPI) -> None:
    """Put the tier gate and quotas on every job submission (the app factory calls this).

    Reads the billing settings once here so a misconfiguration stops start-up with a clear
    message instead of failing the first request."""
    from backend.jobs.admission import install_admission

    check_billing_settings(BillingSettings())

    install_admission(app, BillingAdmission(app))


def check_billing_settings(settings: BillingSettings) -> None:
    """Raise ValueError for settings that cannot work together."""
    if settings.provider_name == "stripe" and settings.stripe_api_key is None:
        raise ValueError("NOJOIN_BILLING_PROVIDER=stripe needs NOJOIN_STRIPE_API_KEY.")
    if settings.stripe_configured and not settings.stripe_price_id:
        raise ValueError("NOJOIN_STRIPE_API_KEY is set but NOJOIN_STRIPE_PRICE_ID is not.")
    if settings.stripe_configured and settings.stripe_webhook_secret is None:
        raise ValueError(
            "NOJOIN_STRIPE_API_KEY is set but NOJOIN_STRIPE_WEBHOOK_SECRET is not: "
            "subscriptions could never be activated."
        )
