"""Errors of the Cloud Mode client; each message says what happened and what to do next.

A 404 from the API is the desktop's one `nojoin.errors.NotFoundError` (as for a missing
meeting): what is missing matters to the user, not where it was looked for."""

from __future__ import annotations

from nojoin.errors import NojoinError


class CloudError(NojoinError):
    """Something in Cloud Mode failed (network, account, server)."""


class CloudNotConfiguredError(CloudError):
    """This build has no Nojoin Cloud address (developer builds without NOJOIN_CLOUD_URL)."""


class OfflineError(CloudError):
    """The cloud cannot be reached (no network, DNS, server down, timeout)."""

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message
            or "Cannot reach Nojoin Cloud. Check your internet connection; Nojoin keeps "
            "working offline and retries when the connection is back."
        )


class AuthError(CloudError):
    """Sign-in, sign-up or password reset was refused (wrong password, weak password, ...)."""


class NotSignedInError(AuthError):
    def __init__(self, message: str = "") -> None:
        super().__init__(message or "You are not signed in. Sign in from the Cloud menu.")


class SessionExpiredError(NotSignedInError):
    """The session expired or was revoked; the user has been signed out."""

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message
            or "Your Nojoin Cloud session expired or was ended on another device. "
            "Sign in again from the Cloud menu."
        )


class UnauthorizedError(CloudError):
    """401 from the API."""


class ForbiddenError(CloudError):
    """403 from the API (e.g. no subscription for a paid feature)."""


class ConflictError(CloudError):
    """409: the resource changed elsewhere since it was read."""


class PayloadTooLargeError(CloudError):
    """413: the upload is larger than the server accepts."""


class RateLimitedError(CloudError):
    """429: too many requests."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServerError(CloudError):
    """5xx or an unexpected answer from the server (after retries)."""


class BackupError(CloudError):
    """A backup could not be made, uploaded, downloaded, verified or restored."""
