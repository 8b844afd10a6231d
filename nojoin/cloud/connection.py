"""Remote processing's connection to Nojoin Cloud, from the signed-in session (Qt-free).

The composition root builds one `CloudConnection` and passes it into the pipeline's remote
factory; it reads the `CloudManager` as it is at each call, so signing in or out needs no
global to be re-installed. Blocking: called on processing threads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from nojoin.cloud.errors import CloudError, NotSignedInError
from nojoin.processing.strategies.remote_errors import SIGN_IN_FIRST, RemoteAuthError, RemoteError


class Session(Protocol):
    """The part of `CloudManager` remote processing uses."""

    @property
    def signed_in(self) -> bool: ...

    def api_base_url(self) -> str: ...

    def access_token(self) -> str: ...


class CloudConnection:
    """`remote_strategy.RemoteConnection` over the app's Cloud Mode session. `session` returns
    the CloudManager, or None before Cloud Mode is set up."""

    def __init__(self, session: Callable[[], Session | None]) -> None:
        self._session = session

    def _signed_in(self) -> Session:
        session = self._session()
        if session is None or not session.signed_in:
            raise RemoteAuthError(SIGN_IN_FIRST)
        return session

    def base_url(self) -> str:
        return self._signed_in().api_base_url()

    def access_token(self) -> str:
        session = self._signed_in()
        try:
            return session.access_token()
        except NotSignedInError as exc:
            raise RemoteAuthError(str(exc)) from exc
        except CloudError as exc:  # offline, server trouble: the user may process locally
            raise RemoteError(str(exc)) from exc
