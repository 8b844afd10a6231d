"""The built-in, Supabase-compatible auth server: sign-up, password and refresh-token grants
(rotation with reuse detection), password recovery, user, logout.

Responses have GoTrue's JSON shapes so the real supabase client parses them unchanged.
Business rules only; SQL is in `AuthRepository`, commits happen in the request session.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from backend.auth.keys import SigningKeys
from backend.auth.mailer import Mailer
from backend.auth.repository import AuthRepository, Row
from backend.auth.verifier import AuthUser
from backend.db import Connection
from backend.errors import (
    BackendError,
    BadRequestError,
    ForbiddenError,
    TooManyRequestsError,
    ValidationFailedError,
)
from backend.settings import Settings

logger = logging.getLogger(__name__)

_EMAIL_RE = re.compile(r"^[^@\s\x00-\x1f]{1,64}@[^@\s\x00-\x1f]{1,255}\.[^@\s\x00-\x1f]{1,63}$")
LogoutScope = Literal["global", "local", "others"]


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


class AuthService:
    """The built-in auth server's rules; one per Runtime (`runtime.auth`, `AuthServiceDep`)."""

    def __init__(
        self,
        settings: Settings,
        keys: SigningKeys,
        mailer: Mailer,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.settings = settings
        self.keys = keys
        self.mailer = mailer
        self.hasher = hasher or PasswordHasher()
        # Verified against when the e-mail is unknown, so timing does not reveal accounts.
        self._dummy_hash = self.hasher.hash(secrets.token_hex(16))

    # --- validation ---
    @staticmethod
    def normalise_email(email: str | None) -> str:
        email = (email or "").strip().lower()
        if not _EMAIL_RE.match(email):
            raise ValidationFailedError(
                "Unable to validate email address: invalid format", code="validation_failed"
            )
        return email

    def _check_password_strength(self, password: str | None) -> str:
        if not password or len(password) < self.settings.password_min_length:
            raise ValidationFailedError(
                f"Password should be at least {self.settings.password_min_length} characters.",
                code="weak_password",
                extra={"weak_password": {"reasons": ["length"]}},
            )
        if len(password) > 1024 or "\x00" in password:
            raise ValidationFailedError(
                "Password is not valid.",
                code="weak_password",
                extra={"weak_password": {"reasons": ["characters"]}},
            )
        return password

    # --- JSON shapes ---
    def user_json(self, row: Row) -> dict[str, Any]:
        user_id = str(row["id"])
        confirmed = _iso(row["email_confirmed_at"])
        identity = {
            "identity_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"email:{user_id}")),
            "id": user_id,
            "user_id": user_id,
            "identity_data": {"email": row["email"], "email_verified": True, "sub": user_id},
            "provider": "email",
            "last_sign_in_at": _iso(row["last_sign_in_at"]),
            "created_at": _iso(row["created_at"]),
            "updated_at": _iso(row["updated_at"]),
            "email": row["email"],
        }
        return {
            "id": user_id,
            "aud": "authenticated",
            "role": "authenticated",
            "email": row["email"],
            "email_confirmed_at": confirmed,
            "phone": "",
            "confirmed_at": confirmed,
            "recovery_sent_at": _iso(row["recovery_sent_at"]),
            "last_sign_in_at": _iso(row["last_sign_in_at"]),
            "app_metadata": row["raw_app_meta_data"]
            or {"provider": "email", "providers": ["email"]},
            "user_metadata": row["raw_user_meta_data"] or {},
            "identities": [identity],
            "created_at": _iso(row["created_at"]),
            "updated_at": _iso(row["updated_at"]),
            "is_anonymous": False,
        }

    def _issue_session(
        self,
        conn: Connection,
        user: Row,
        *,
        session_id: uuid.UUID | None = None,
        parent_hash: str | None = None,
        amr_method: str = "password",
    ) -> dict[str, Any]:
        """Create (or continue) a session and return GoTrue's session JSON."""
        repo = AuthRepository.from_session(conn)
        if session_id is None:
            session_id = uuid.uuid4()
            repo.create_session(session_id, user["id"])
        now = int(time.time())
        ttl = self.settings.access_token_ttl_seconds
        refresh_token = secrets.token_urlsafe(32)
        repo.insert_refresh_token(
            token_hash=_hash_token(refresh_token),
            session_id=session_id,
            user_id=user["id"],
            parent_hash=parent_hash,
            expires_at=datetime.now(UTC) + timedelta(days=self.settings.refresh_token_ttl_days),
        )
        claims = {
            "iss": self.settings.issuer,
            "aud": "authenticated",
            "sub": str(user["id"]),
            "exp": now + ttl,
            "iat": now,
            "email": user["email"],
            "phone": "",
            "app_metadata": user["raw_app_meta_data"] or {},
            "user_metadata": user["raw_user_meta_data"] or {},
            "role": "authenticated",
            "aal": "aal1",
            "amr": [{"method": amr_method, "timestamp": now}],
            "session_id": str(session_id),
            "is_anonymous": False,
        }
        return {
            "access_token": self.keys.sign(claims),
            "token_type": "bearer",
            "expires_in": ttl,
            "expires_at": now + ttl,
            "refresh_token": refresh_token,
            "user": self.user_json(user),
        }

    # --- rate limiting ---
    def _check_rate(
        self,
        conn: Connection,
        keys: list[tuple[str, int]],
        *,
        window: int | None = None,
        what: str = "attempts",
        code: str | None = None,
    ) -> None:
        """429 once any key has `limit` attempts in the last `window` seconds (default: the
        sign-in window); Retry-After says when its oldest attempt leaves the window."""
        repo = AuthRepository.from_session(conn)
        window = window or self.settings.signin_window_seconds
        for key, limit in keys:
            if repo.count_attempts(key, window) >= limit:
                age = repo.oldest_attempt_age(key, window)
                retry_after = int(window - age) + 1
                minutes = -(-retry_after // 60)
                wait = "a minute" if minutes <= 1 else f"{minutes} minutes"
                raise TooManyRequestsError(
                    f"Too many {what}. Try again in {wait}.", retry_after=retry_after, code=code
                )

    def _record(self, conn: Connection, key: str) -> None:
        s = self.settings
        keep = max(s.signin_window_seconds, s.signup_window_seconds, s.recover_window_seconds)
        AuthRepository.from_session(conn).record_attempt(key, keep_seconds=keep)

    def _fail(self, conn: Connection, keys: list[str], error: BackendError) -> BackendError:
        for key in keys:
            self._record(conn, key)
        error.keep_changes = True  # the attempt must survive the request's rollback
        return error

    # --- grants ---
    def signup(
        self,
        conn: Connection,
        email: str | None,
        password: str | None,
        data: dict[str, Any],
        client_ip: str,
    ) -> dict[str, Any]:
        repo = AuthRepository.from_session(conn)
        email = self.normalise_email(email)
        password = self._check_password_strength(password)
        # Before the (deliberately slow) hash: mass sign-ups from one address are refused
        # cheaply, and so is probing which e-mail addresses have accounts.
        ip_key = f"signup:ip:{client_ip}"
        self._check_rate(
            conn,
            [(ip_key, self.settings.signup_max_per_ip)],
            window=self.settings.signup_window_seconds,
            what="sign-ups from this network",
        )
        self._record(conn, ip_key)
        row = repo.insert_user(
            user_id=uuid.uuid4(),
            email=email,
            password_hash=self.hasher.hash(password),
            user_metadata=data,
        )
        if row is None:
            raise ValidationFailedError(
                "User already registered", code="user_already_exists", keep_changes=True
            )
        # No mail server: e-mail addresses are auto-confirmed (GoTrue's MAILER_AUTOCONFIRM).
        row = repo.touch_sign_in(row["id"]) or row
        logger.info("New user %s signed up", row["id"])
        return self._issue_session(conn, row)

    def password_grant(
        self, conn: Connection, email: str | None, password: str | None, client_ip: str
    ) -> dict[str, Any]:
        repo = AuthRepository.from_session(conn)
        if not email or not password:
            raise BadRequestError(
                "You must provide either an email or phone number and a password",
                code="validation_failed",
            )
        email = email.strip().lower()
        email_key, ip_key = f"signin:email:{email}", f"signin:ip:{client_ip}"
        limit = self.settings.signin_max_attempts
        self._check_rate(conn, [(email_key, limit), (ip_key, limit * 5)])
        user = repo.get_user_by_email(email)
        stored = user["encrypted_password"] if user else None
        ok = False
        try:
            ok = self.hasher.verify(stored or self._dummy_hash, password) and stored is not None
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok or user is None:
            raise self._fail(
                conn,
                [email_key, ip_key],
                BadRequestError("Invalid login credentials", code="invalid_credentials"),
            )
        repo.clear_attempts(email_key)
        if self.hasher.check_needs_rehash(stored or ""):
            repo.update_user(user["id"], password_hash=self.hasher.hash(password))
        user = repo.touch_sign_in(user["id"]) or user
        return self._issue_session(conn, user)

    def refresh_grant(self, conn: Connection, refresh_token: str | None) -> dict[str, Any]:
        repo = AuthRepository.from_session(conn)
        if not refresh_token:
            raise BadRequestError("Refresh Token Not Found", code="refresh_token_not_found")
        token_hash = _hash_token(refresh_token)
        row = repo.lock_refresh_token(token_hash)
        if row is None or row["session_revoked_at"] is not None:
            raise BadRequestError(
                "Invalid Refresh Token: Refresh Token Not Found", code="refresh_token_not_found"
            )
        ago = row["revoked_seconds_ago"]
        if (
            row["revoked"]
            and ago is not None
            and float(ago) <= self.settings.refresh_token_reuse_interval_seconds
        ):
            # Two refreshes raced (e.g. the auto-refresh timer and a manual refresh): the
            # loser gets its own new token in the same session rather than a sign-out.
            user = repo.get_user(row["user_id"])
            if user is not None:
                return self._issue_session(
                    conn, user, session_id=row["session_id"], parent_hash=token_hash
                )
        if row["revoked"]:
            # A used token came back: it was stolen or replayed. Kill the whole family.
            logger.warning("Refresh token reuse detected; revoking session %s", row["session_id"])
            repo.revoke_sessions(row["user_id"], only=row["session_id"])
            error = BadRequestError(
                "Invalid Refresh Token: Already Used", code="refresh_token_already_used"
            )
            error.keep_changes = True
            raise error
        if row["expires_at"] <= datetime.now(UTC):
            raise BadRequestError(
                "Invalid Refresh Token: Refresh Token Expired", code="refresh_token_not_found"
            )
        user = repo.get_user(row["user_id"])
        if user is None:
            raise BadRequestError("User not found", code="user_not_found")
        repo.revoke_refresh_token(token_hash)
        repo.mark_session_refreshed(row["session_id"])
        return self._issue_session(conn, user, session_id=row["session_id"], parent_hash=token_hash)

    # --- recovery ---
    def recover(self, conn: Connection, email: str | None, base_url: str, client_ip: str) -> None:
        """Queue a recovery mail if the account exists; always looks the same to the caller."""
        repo = AuthRepository.from_session(conn)
        email = self.normalise_email(email)
        keys = [
            (f"recover:email:{email}", self.settings.recover_max_per_email),
            (f"recover:ip:{client_ip}", self.settings.recover_max_per_ip),
        ]
        # Counted for unknown addresses too, so the limit reveals no more than the answer.
        self._check_rate(
            conn,
            keys,
            window=self.settings.recover_window_seconds,
            what="password-reset e-mails",
            code="over_email_send_rate_limit",
        )
        for key, _limit in keys:
            self._record(conn, key)
        user = repo.get_user_by_email(email)
        if user is None:
            return
        otp = f"{secrets.randbelow(10**6):06d}"
        link_token = secrets.token_urlsafe(32)
        repo.insert_recovery(
            user_id=user["id"],
            otp_hash=_hash_token(f"{user['id']}:{otp}"),
            link_hash=_hash_token(link_token),
            expires_at=datetime.now(UTC)
            + timedelta(seconds=self.settings.recovery_token_ttl_seconds),
        )
        repo.set_recovery_sent(user["id"])
        minutes = self.settings.recovery_token_ttl_seconds // 60
        body = (
            "Someone asked to reset the password of your Nojoin account.\n\n"
            f"Your code: {otp}\n"
            f"Or paste this token into the app: {link_token}\n"
            f"(Server: {base_url.rstrip('/')})\n\n"
            f"The code expires in {minutes} minutes. If this was not you, ignore this mail."
        )
        self.mailer.send(
            conn, recipient=user["email"], subject="Reset your Nojoin password", body=body
        )

    def verify(
        self,
        conn: Connection,
        *,
        type_: str,
        token_hash: str | None,
        email: str | None,
        token: str | None,
    ) -> dict[str, Any]:
        repo = AuthRepository.from_session(conn)
        if type_ != "recovery":
            raise BadRequestError(
                f"Verification type {type_!r} is not supported here; use 'recovery'.",
                code="validation_failed",
            )
        invalid = ForbiddenError("Token has expired or is invalid", code="otp_expired")
        if token_hash:
            taken = repo.take_recovery(link_hash=_hash_token(token_hash))
        elif email and token:
            email = self.normalise_email(email)
            key = f"verify:email:{email}"
            self._check_rate(conn, [(key, self.settings.signin_max_attempts)])
            user = repo.get_user_by_email(email)
            taken = (
                repo.take_recovery(
                    user_id=user["id"], otp_hash=_hash_token(f"{user['id']}:{token.strip()}")
                )
                if user
                else None
            )
            if taken is None:
                raise self._fail(conn, [key], invalid)
        else:
            raise BadRequestError(
                "Provide token_hash, or email and token.", code="validation_failed"
            )
        if taken is None:
            raise invalid
        user = repo.touch_sign_in(taken["user_id"])
        if user is None:
            raise invalid
        return self._issue_session(conn, user, amr_method="recovery")

    # --- signed-in user ---
    def require_active_session(self, conn: Connection, caller: AuthUser) -> Row:
        repo = AuthRepository.from_session(conn)
        if caller.session_id is not None:
            session = repo.get_session(caller.session_id)
            if session is None or session["revoked_at"] is not None:
                raise ForbiddenError(
                    "Session from session_id claim in JWT does not exist",
                    code="session_not_found",
                )
        user = repo.get_user(caller.id)
        if user is None:
            raise ForbiddenError("User from sub claim in JWT does not exist", code="user_not_found")
        return user

    def get_user(self, conn: Connection, caller: AuthUser) -> dict[str, Any]:
        return self.user_json(self.require_active_session(conn, caller))

    def update_user(
        self,
        conn: Connection,
        caller: AuthUser,
        *,
        password: str | None,
        data: dict[str, Any] | None,
        email: str | None,
    ) -> dict[str, Any]:
        repo = AuthRepository.from_session(conn)
        user = self.require_active_session(conn, caller)
        if email is not None and email.strip().lower() != (user["email"] or "").lower():
            raise ValidationFailedError(
                "Changing the e-mail address is not supported by the built-in auth server.",
                code="validation_failed",
            )
        password_hash = None
        if password is not None:
            password_hash = self.hasher.hash(self._check_password_strength(password))
        row = repo.update_user(caller.id, password_hash=password_hash, user_metadata=data)
        if row is None:
            raise ForbiddenError("User from sub claim in JWT does not exist", code="user_not_found")
        if password_hash is not None:
            # A new password signs out every other session (stolen refresh tokens die too).
            repo.revoke_sessions(caller.id, keep=caller.session_id)
        return self.user_json(row)

    def logout(self, conn: Connection, caller: AuthUser, scope: LogoutScope) -> None:
        repo = AuthRepository.from_session(conn)
        if scope == "global" or caller.session_id is None:
            repo.revoke_sessions(caller.id)
        elif scope == "local":
            repo.revoke_sessions(caller.id, only=caller.session_id)
        else:
            repo.revoke_sessions(caller.id, keep=caller.session_id)
