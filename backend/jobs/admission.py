"""The admission seam: may this user submit a job of this size now?

`POST /api/v1/jobs` asks twice:
1. `check_can_submit(conn, user, declared_size)` before reading the body (size from
   Content-Length; reserves nothing), so a user without a subscription or over quota is
   refused before uploading hundreds of MB;
2. `admit(conn, user, exact_size)` inside the transaction that inserts the job: a quota slot
   taken here is atomic with the insert (a rollback gives it back), so parallel submissions
   cannot overshoot.
Both raise BackendErrors: ForbiddenError (403, no subscription), PayloadTooLargeError (413),
TooManyRequestsError (429 + Retry-After, over quota).

The check in force is `Runtime.job_admission`: the server-wide upload limit, then billing's
`BillingService`, which implements this protocol (`check_can_submit`: tier gate, file size
and today's quota without reserving; `admit`: its `admit_job`, which takes the quota slot).
Endpoints get it through `JobAdmissionDep` (backend/jobs/dependencies.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol

from backend.db import Connection
from backend.errors import PayloadTooLargeError
from backend.jobs.settings import JobSettings


class JobAdmission(Protocol):
    def check_can_submit(self, conn: Connection, user_id: uuid.UUID, size: int | None) -> None:
        """Cheap refusal before the upload; must not reserve anything."""
        ...

    def admit(self, conn: Connection, user_id: uuid.UUID, size: int) -> None:
        """Final check in the job-insert transaction; may reserve quota."""
        ...


class UploadLimitAdmission:
    """Everyone may submit files up to the server's upload limit."""

    def __init__(self, settings: JobSettings) -> None:
        self.max_bytes = settings.job_max_upload_bytes

    def check_can_submit(
        self,
        conn: Connection,  # noqa: ARG002 (JobAdmission API: one limit for everyone)
        user_id: uuid.UUID,  # noqa: ARG002
        size: int | None,
    ) -> None:
        if size is not None and size > self.max_bytes:
            raise PayloadTooLargeError(
                f"The file is larger than the {self.max_bytes // (1024 * 1024)} MB limit for "
                "remote processing; process it locally instead."
            )

    def admit(self, conn: Connection, user_id: uuid.UUID, size: int) -> None:
        self.check_can_submit(conn, user_id, size)


class AdmissionChain:
    """All checks must pass, in order."""

    def __init__(self, checks: Sequence[JobAdmission]) -> None:
        self.checks = list(checks)

    def check_can_submit(self, conn: Connection, user_id: uuid.UUID, size: int | None) -> None:
        for check in self.checks:
            check.check_can_submit(conn, user_id, size)

    def admit(self, conn: Connection, user_id: uuid.UUID, size: int) -> None:
        for check in self.checks:
            check.admit(conn, user_id, size)
