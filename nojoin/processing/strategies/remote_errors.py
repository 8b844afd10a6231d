"""Errors of remote (Nojoin Cloud) processing, apart from the HTTP client so the app can tell
them apart (and offer local processing or an upgrade) without importing httpx at start-up.

`remote_strategy` raises them and re-exports them; import them from either module.
"""

from __future__ import annotations

from nojoin.errors import ProcessingError

SIGN_IN_FIRST = "Sign in to Nojoin Cloud to process on the server, or switch to local processing."
"""What a remote run says when nobody is signed in."""


class RemoteError(ProcessingError):
    """The server refused or failed the job; `message` is the server's explanation."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class RemoteAuthError(RemoteError):
    """Not signed in, or the session expired (401)."""


class SubscriptionRequiredError(RemoteError):
    """403: the account has no subscription that includes remote processing.
    Offer local processing (and an upgrade)."""


class QuotaExceededError(RemoteError):
    """429: a remote-processing quota is used up; `retry_after` seconds until it resets."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, status_code=429)
        self.retry_after = retry_after
