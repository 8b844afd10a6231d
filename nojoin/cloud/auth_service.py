"""Nojoin Cloud accounts: a thin, thread-safe wrapper over the supabase client's auth.

The session (access + refresh token) lives in the OS keyring through `KeyringSessionStorage`,
is restored at start-up, refreshed a little before it expires (a background timer and lazily
in `access_token()`), and deleted on sign-out. A refresh the server refuses (revoked,
expired, reused refresh token) signs the user out cleanly with a message; a refresh that
fails because the network is down keeps the session and retries with backoff.

Every method here may block on the network: the UI calls them from a worker thread
(`nojoin.cloud.manager.CloudManager`). Qt-free.
"""

from __future__ import annotations

import enum
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from nojoin.cloud import supabase_lazy as sb
from nojoin.cloud.errors import (
    AuthError,
    CloudError,
    NotSignedInError,
    OfflineError,
    RateLimitedError,
    ServerError,
    SessionExpiredError,
)
from nojoin.cloud.session_storage import KeyringSessionStorage
from nojoin.cloud.settings import CloudSettings, discover_anon_key, load_cloud_settings

if TYPE_CHECKING:
    from supabase import Client
    from supabase_auth import SyncSupportedStorage
    from supabase_auth.types import AuthChangeEvent, Session

log = logging.getLogger(__name__)

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 8
REFRESH_MARGIN_SECONDS = 120.0
"""Refresh this long before the access token expires (clock skew, slow networks)."""
RETRY_DELAYS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0)
"""Back-off between refresh attempts while offline."""


class AuthEventKind(enum.StrEnum):
    SIGNED_IN = "signed_in"
    TOKEN_REFRESHED = "token_refreshed"
    SIGNED_OUT = "signed_out"
    SESSION_EXPIRED = "session_expired"  # signed out because the server refused the session


@dataclass(frozen=True, slots=True)
class Account:
    user_id: str
    email: str


@dataclass(frozen=True, slots=True)
class AuthEvent:
    kind: AuthEventKind
    account: Account | None
    message: str = ""


AuthListener = Callable[[AuthEvent], None]


def validate_email(email: str) -> str:
    email = email.strip()
    if not EMAIL_RE.match(email):
        raise AuthError("Enter a valid email address, like name@example.com.")
    return email


def validate_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AuthError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")
    return password


class AuthService:
    """Sign up / in / out, password reset and a fresh access token for API calls.

    Listeners (`add_listener`) are called with an `AuthEvent` from whichever thread caused
    it (a worker or the refresh timer), never while the service's lock is held.
    """

    def __init__(
        self,
        settings: CloudSettings | None = None,
        storage: SyncSupportedStorage | KeyringSessionStorage | None = None,
        *,
        refresh_margin: float = REFRESH_MARGIN_SECONDS,
        auto_refresh: bool = True,
        timeout: float = 15.0,
    ) -> None:
        self.settings = settings or load_cloud_settings()
        self.storage: SyncSupportedStorage | KeyringSessionStorage = (
            storage or KeyringSessionStorage(self.settings.server_id)
        )
        self.refresh_margin = refresh_margin
        self.auto_refresh = auto_refresh
        self._timeout = timeout
        self._lock = threading.RLock()
        self._client: Client | None = None
        self._http: httpx.Client | None = None
        self._listeners: list[AuthListener] = []
        self._queued: list[AuthEvent] = []
        self._timer: threading.Timer | None = None
        self._retry = 0
        self._closed = False
        self._account: Account | None = None
        self._depth = threading.local()

    # ------------------------------------------------------------------ listeners

    def add_listener(self, listener: AuthListener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: AuthListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the lock; deliver the events raised meanwhile after releasing it (also when
        the operation raised, e.g. SessionExpiredError after signing out)."""
        events: list[AuthEvent] = []
        try:
            with self._lock:
                depth = getattr(self._depth, "value", 0)
                self._depth.value = depth + 1
                try:
                    yield
                finally:
                    self._depth.value = depth
                    if depth == 0:
                        events, self._queued = self._queued, []
        finally:
            for event in events:
                for listener in list(self._listeners):
                    try:
                        listener(event)
                    except Exception:
                        log.exception("auth listener %r failed", listener)

    def _emit(self, kind: AuthEventKind, message: str = "") -> None:
        self._queued.append(AuthEvent(kind, self._account, message))

    # ------------------------------------------------------------------ state

    @property
    def account(self) -> Account | None:
        """The signed-in account (also while offline with a stored session), or None."""
        return self._account

    @property
    def signed_in(self) -> bool:
        return self._account is not None

    def stored_session(self) -> Session | None:
        """The session as stored in the keyring (no network)."""
        raw = self.storage.get_item(sb.STORAGE_KEY)
        if not raw:
            return None
        try:
            session = sb.session_type().model_validate_json(raw)
        except ValueError:
            log.warning("the stored Nojoin Cloud session is unreadable; ignoring it")
            return None
        return session if session.expires_at else None

    @property
    def expires_at(self) -> float | None:
        session = self.stored_session()
        return float(session.expires_at) if session and session.expires_at else None

    # ------------------------------------------------------------------ client

    def _supabase(self) -> Client:
        if self._closed:
            raise CloudError("Cloud Mode was shut down.")
        if self._client is None:
            self.settings.require()
            anon_key = self.settings.anon_key or discover_anon_key(self.settings.api_url)
            self._http = httpx.Client(timeout=self._timeout, follow_redirects=True)
            supabase = sb.supabase()
            options = supabase.ClientOptions(
                storage=sb.as_storage(self.storage),
                persist_session=True,
                # Refreshing is ours: supabase's timer silently gives up on a refused
                # refresh, and two refreshes racing on one rotating token revoke it.
                auto_refresh_token=False,
                httpx_client=self._http,
                # No browser redirects in a desktop app: PKCE would only leave a code
                # verifier behind in the keyring.
                flow_type="implicit",
            )
            client = supabase.create_client(self.settings.auth_url, anon_key, options)
            client.auth.on_auth_state_change(self._on_supabase_event)
            self._client = client
        return self._client

    def _on_supabase_event(self, event: AuthChangeEvent, session: Session | None) -> None:
        # Called by supabase inside our calls (we hold the lock): only record and queue.
        if (
            event in ("SIGNED_IN", "TOKEN_REFRESHED", "USER_UPDATED", "PASSWORD_RECOVERY")
            and session is not None
        ):
            self._account = _account(session)
            self._schedule(session)
            self._emit(
                AuthEventKind.SIGNED_IN
                if event in ("SIGNED_IN", "PASSWORD_RECOVERY")
                else AuthEventKind.TOKEN_REFRESHED
            )
        elif event == "SIGNED_OUT":
            self._cancel_timer()
            if self._account is not None:
                self._account = None
                self._emit(AuthEventKind.SIGNED_OUT)

    # ------------------------------------------------------------------ operations

    def restore(self) -> Account | None:
        """Start-up: resume the session kept in the keyring, if any.

        Refreshes it if it is close to expiry; checks it with the server otherwise (a
        revoked session signs out cleanly). Offline, the stored session is kept and used.
        """
        with self._locked():
            session = self.stored_session()
            if session is None:
                return None
            self._account = _account(session)
            try:
                client = self._supabase()
                if _remaining(session) <= self.refresh_margin:
                    client.auth.refresh_session(session.refresh_token)
                else:
                    client.auth.get_user(session.access_token)
                    self._schedule(session)
                self._emit(AuthEventKind.SIGNED_IN)
            except sb.errors().AuthError as exc:
                if _session_dead(exc):
                    self._expire()
                    return None
                log.info("cloud unreachable at start-up (%s); using the stored session", exc)
                self._emit(AuthEventKind.SIGNED_IN)
                self._schedule_retry()
            except (OfflineError, httpx.HTTPError) as exc:
                log.info("cloud unreachable at start-up (%s); using the stored session", exc)
                self._emit(AuthEventKind.SIGNED_IN)
                self._schedule_retry()
            except CloudError:
                self._account = None  # e.g. not configured: the session stays stored, unused
                raise
            return self._account

    def sign_up(self, email: str, password: str) -> Account | None:
        """Create an account. Returns the account when signed in straight away, or None when
        the server wants the email address confirmed first."""
        email = validate_email(email)
        validate_password(password)
        with self._locked():
            try:
                response = self._supabase().auth.sign_up({"email": email, "password": password})
            except sb.errors().AuthError as exc:
                raise _translate(exc, "create the account") from exc
            return _account(response.session) if response.session else None

    def sign_in(self, email: str, password: str) -> Account:
        email = validate_email(email)
        if not password:
            raise AuthError("Enter your password.")
        with self._locked():
            try:
                response = self._supabase().auth.sign_in_with_password(
                    {"email": email, "password": password}
                )
            except sb.errors().AuthError as exc:
                raise _translate(exc, "sign in") from exc
            if response.session is None:
                raise AuthError("Sign-in did not complete. Confirm your email address first.")
            self._retry = 0
            return _account(response.session)

    def reset_password(self, email: str) -> None:
        """Ask the server to email a password-reset link (it answers the same for unknown
        addresses, so this never reveals who has an account)."""
        email = validate_email(email)
        with self._locked():
            try:
                self._supabase().auth.reset_password_for_email(email)
            except sb.errors().AuthError as exc:
                raise _translate(exc, "send the reset email") from exc

    def complete_password_reset(self, email: str, code: str, new_password: str) -> Account:
        """Second step of a reset: the code from the email proves the address; then the new
        password is set and the user is signed in."""
        email = validate_email(email)
        code = code.strip()
        if not code:
            raise AuthError("Enter the code from the email.")
        validate_password(new_password)
        with self._locked():
            client = self._supabase()
            try:
                response = client.auth.verify_otp(
                    {"email": email, "token": code, "type": "recovery"}
                )
            except sb.errors().AuthError as exc:
                if getattr(exc, "status", 0) in (400, 401, 403, 404):
                    raise AuthError(
                        "This code is wrong or has expired. Check the latest email, or ask for "
                        "a new code."
                    ) from exc
                raise _translate(exc, "check the code") from exc
            if response.session is None:
                raise AuthError("The code was not accepted. Ask for a new one.")
            try:
                client.auth.update_user({"password": new_password})
            except sb.errors().AuthError as exc:
                raise _translate(exc, "set the new password") from exc
            self._retry = 0
            return _account(response.session)

    def sign_out(self) -> None:
        """End this device's session: removed from the keyring first, then revoked on the
        server (best effort: offline, the server-side session simply expires)."""
        with self._locked():
            self._cancel_timer()
            if self.stored_session() is None and self._account is None:
                return
            try:
                self._supabase().auth.sign_out({"scope": "local"})
            except (sb.errors().AuthError, CloudError, httpx.HTTPError) as exc:
                log.info("could not revoke the session on the server: %s", exc)
            self.storage.remove_item(sb.STORAGE_KEY)
            if self._account is not None:
                self._account = None
                self._emit(AuthEventKind.SIGNED_OUT)

    def refresh(self) -> Account:
        """Get a new access token now (rotates the refresh token)."""
        with self._locked():
            session = self.stored_session()
            if session is None:
                raise NotSignedInError()
            self._refresh_locked(session)
            assert self._account is not None
            return self._account

    def access_token(self, *, force_refresh: bool = False) -> str:
        """A valid access token for the API, refreshed first when it is about to expire.

        Raises NotSignedInError, SessionExpiredError (the user is now signed out) or
        OfflineError (cannot refresh and the token is no longer valid)."""
        with self._locked():
            session = self.stored_session()
            if session is None:
                if self._account is not None:
                    self._expire()
                    raise SessionExpiredError()
                raise NotSignedInError()
            if force_refresh or _remaining(session) <= self.refresh_margin:
                try:
                    session = self._refresh_locked(session)
                except OfflineError:
                    if _remaining(session) > 5 and not force_refresh:
                        return session.access_token
                    raise
            return session.access_token

    def session_rejected(self) -> None:
        """The API refused our token even after a refresh: sign out with a message."""
        with self._locked():
            if self._account is not None or self.stored_session() is not None:
                self._expire()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._cancel_timer()
            if self._http is not None:
                self._http.close()

    # ------------------------------------------------------------------ internals

    def _refresh_locked(self, session: Session) -> Session:
        try:
            response = self._supabase().auth.refresh_session(session.refresh_token)
        except sb.errors().AuthError as exc:
            if _session_dead(exc):
                self._expire()
                raise SessionExpiredError() from exc
            raise _translate(exc, "renew the session") from exc
        if response.session is None:  # pragma: no cover - supabase raises instead
            self._expire()
            raise SessionExpiredError()
        self._retry = 0
        return response.session

    def _expire(self, message: str = "") -> None:
        self._cancel_timer()
        self.storage.remove_item(sb.STORAGE_KEY)
        had_account = self._account is not None
        self._account = None
        if had_account:
            self._emit(AuthEventKind.SESSION_EXPIRED, message or str(SessionExpiredError()))

    def _schedule(self, session: Session) -> None:
        if not self.auto_refresh or self._closed:
            return
        delay = max(1.0, _remaining(session) - self.refresh_margin)
        self._start_timer(delay)

    def _schedule_retry(self) -> None:
        if not self.auto_refresh or self._closed:
            return
        delay = RETRY_DELAYS[min(self._retry, len(RETRY_DELAYS) - 1)]
        self._retry += 1
        self._start_timer(delay)

    def _start_timer(self, delay: float) -> None:
        self._cancel_timer()
        timer = threading.Timer(delay, self._timer_fired)
        timer.daemon = True
        timer.name = "nojoin-auth-refresh"
        self._timer = timer
        timer.start()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timer_fired(self) -> None:
        try:
            with self._locked():
                session = self.stored_session()
                if session is None or self._closed:
                    return
                try:
                    self._refresh_locked(session)
                except OfflineError:
                    self._schedule_retry()
                except SessionExpiredError:
                    pass  # already signed out, listeners told
                except CloudError as exc:
                    log.warning("session refresh failed: %s", exc)
                    self._schedule_retry()
        except Exception:
            log.exception("background session refresh crashed")


def _account(session: Session) -> Account:
    return Account(user_id=session.user.id, email=session.user.email or "")


def _remaining(session: Session) -> float:
    return float(session.expires_at or 0) - time.time()


def _session_dead(exc: Any) -> bool:
    """The server refused the session itself (not the network or a server fault)."""
    if isinstance(exc, sb.errors().AuthRetryableError):
        return False
    if isinstance(exc, sb.errors().AuthSessionMissingError):
        return True
    return isinstance(exc, sb.errors().AuthApiError) and exc.status in (400, 401, 403, 404)


_CODE_MESSAGES = {
    "invalid_credentials": "Wrong email or password. Check them and try again, or reset "
    "your password.",
    "invalid_grant": "Wrong email or password. Check them and try again, or reset your password.",
    "email_not_confirmed": "Confirm your email address first: open the link in the email we "
    "sent, then sign in.",
    "user_already_exists": "An account with this email already exists. Sign in, or reset the "
    "password if you forgot it.",
    "email_exists": "An account with this email already exists. Sign in, or reset the "
    "password if you forgot it.",
    "signup_disabled": "New accounts cannot be created right now. Try again later.",
    "user_banned": "This account is blocked. Contact support.",
}


def _translate(exc: Any, action: str) -> CloudError:
    """A supabase auth error as one of ours, with a message a user can act on."""
    if isinstance(exc, sb.errors().AuthRetryableError):
        return OfflineError(
            f"Cannot reach Nojoin Cloud to {action}. Check your internet connection and try again."
        )
    if isinstance(exc, sb.errors().AuthWeakPasswordError):
        reasons = ", ".join(str(r) for r in exc.reasons) if exc.reasons else ""
        return AuthError(
            "This password is too weak"
            + (f" ({reasons})" if reasons else "")
            + f". Use at least {MIN_PASSWORD_LENGTH} characters; a few unrelated words work well."
        )
    code = getattr(exc, "code", None)
    status = getattr(exc, "status", 0)
    if code in _CODE_MESSAGES:
        return AuthError(_CODE_MESSAGES[code])
    if status == 429 or code in ("over_request_rate_limit", "over_email_send_rate_limit"):
        return RateLimitedError(
            f"Too many attempts to {action}. Wait a few minutes, then try again."
        )
    if status >= 500 or not status:
        return ServerError(
            f"Nojoin Cloud could not {action} right now ({exc.message}). Try again in a few "
            "minutes."
        )
    if status == 400 and action == "sign in":
        return AuthError(_CODE_MESSAGES["invalid_credentials"])
    return AuthError(f"Could not {action}: {exc.message}")
