"""SQL for the built-in auth server (auth.users + nojoin_auth.*). No commits here."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from backend.db import Repository

Row = dict[str, Any]

_USER_COLUMNS = (
    "id, email, encrypted_password, email_confirmed_at, recovery_sent_at, last_sign_in_at,"
    " raw_app_meta_data, raw_user_meta_data, created_at, updated_at"
)


class AuthRepository(Repository):
    # --- users ---
    def get_user(self, user_id: uuid.UUID) -> Row | None:
        return self.session.execute(
            f"SELECT {_USER_COLUMNS} FROM auth.users WHERE id = %s", (user_id,)
        ).fetchone()

    def get_user_by_email(self, email: str) -> Row | None:
        return self.session.execute(
            f"SELECT {_USER_COLUMNS} FROM auth.users WHERE lower(email) = lower(%s)", (email,)
        ).fetchone()

    def insert_user(
        self,
        *,
        user_id: uuid.UUID,
        email: str,
        password_hash: str,
        user_metadata: dict[str, Any],
    ) -> Row | None:
        """Insert a confirmed e-mail user; None when the e-mail is already registered."""
        from psycopg.types.json import Jsonb

        return self.session.execute(
            "INSERT INTO auth.users (id, aud, role, email, encrypted_password,"
            " email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)"
            " VALUES (%s, 'authenticated', 'authenticated', %s, %s, now(), %s, %s, now(), now())"
            f" ON CONFLICT DO NOTHING RETURNING {_USER_COLUMNS}",
            (
                user_id,
                email,
                password_hash,
                Jsonb({"provider": "email", "providers": ["email"]}),
                Jsonb(user_metadata),
            ),
        ).fetchone()

    def update_user(
        self,
        user_id: uuid.UUID,
        *,
        password_hash: str | None = None,
        user_metadata: dict[str, Any] | None = None,
    ) -> Row | None:
        from psycopg.types.json import Jsonb

        return self.session.execute(
            "UPDATE auth.users SET"
            " encrypted_password = coalesce(%s, encrypted_password),"
            " raw_user_meta_data = coalesce(raw_user_meta_data, '{}'::jsonb) || %s,"
            " updated_at = now()"
            f" WHERE id = %s RETURNING {_USER_COLUMNS}",
            (password_hash, Jsonb(user_metadata or {}), user_id),
        ).fetchone()

    def touch_sign_in(self, user_id: uuid.UUID) -> Row | None:
        return self.session.execute(
            f"UPDATE auth.users SET last_sign_in_at = now() WHERE id = %s RETURNING {_USER_COLUMNS}",
            (user_id,),
        ).fetchone()

    def set_recovery_sent(self, user_id: uuid.UUID) -> None:
        self.session.execute(
            "UPDATE auth.users SET recovery_sent_at = now() WHERE id = %s", (user_id,)
        )

    # --- sessions and refresh tokens ---
    def create_session(self, session_id: uuid.UUID, user_id: uuid.UUID) -> None:
        self.session.execute(
            "INSERT INTO nojoin_auth.sessions (id, user_id) VALUES (%s, %s)",
            (session_id, user_id),
        )

    def get_session(self, session_id: uuid.UUID) -> Row | None:
        return self.session.execute(
            "SELECT id, user_id, revoked_at FROM nojoin_auth.sessions WHERE id = %s",
            (session_id,),
        ).fetchone()

    def revoke_sessions(
        self,
        user_id: uuid.UUID,
        *,
        only: uuid.UUID | None = None,
        keep: uuid.UUID | None = None,
    ) -> None:
        """Revoke the user's sessions (all, only one, or all but one) and their tokens."""
        where = "user_id = %s AND revoked_at IS NULL"
        params: list[Any] = [user_id]
        if only is not None:
            where += " AND id = %s"
            params.append(only)
        if keep is not None:
            where += " AND id <> %s"
            params.append(keep)
        self.session.execute(
            f"WITH s AS (UPDATE nojoin_auth.sessions SET revoked_at = now() WHERE {where}"
            " RETURNING id)"
            " UPDATE nojoin_auth.refresh_tokens SET revoked = true"
            " WHERE session_id IN (SELECT id FROM s)",
            params,
        )

    def insert_refresh_token(
        self,
        *,
        token_hash: str,
        session_id: uuid.UUID,
        user_id: uuid.UUID,
        parent_hash: str | None,
        expires_at: datetime,
    ) -> None:
        self.session.execute(
            "INSERT INTO nojoin_auth.refresh_tokens"
            " (token_hash, session_id, user_id, parent_hash, expires_at)"
            " VALUES (%s, %s, %s, %s, %s)",
            (token_hash, session_id, user_id, parent_hash, expires_at),
        )

    def lock_refresh_token(self, token_hash: str) -> Row | None:
        """The token row joined with its session, locked against a concurrent refresh."""
        return self.session.execute(
            "SELECT t.token_hash, t.session_id, t.user_id, t.revoked, t.expires_at,"
            " extract(epoch FROM now() - t.revoked_at) AS revoked_seconds_ago,"
            " s.revoked_at AS session_revoked_at"
            " FROM nojoin_auth.refresh_tokens t JOIN nojoin_auth.sessions s ON s.id = t.session_id"
            " WHERE t.token_hash = %s FOR UPDATE OF t, s",
            (token_hash,),
        ).fetchone()

    def revoke_refresh_token(self, token_hash: str) -> None:
        self.session.execute(
            "UPDATE nojoin_auth.refresh_tokens SET revoked = true, revoked_at = now()"
            " WHERE token_hash = %s",
            (token_hash,),
        )

    def mark_session_refreshed(self, session_id: uuid.UUID) -> None:
        self.session.execute(
            "UPDATE nojoin_auth.sessions SET refreshed_at = now() WHERE id = %s", (session_id,)
        )

    # --- rate limiting ---
    def count_attempts(self, key: str, window_seconds: int) -> int:
        row = self.session.execute(
            "SELECT count(*) AS n FROM nojoin_auth.attempts"
            " WHERE key = %s AND attempted_at > now() - make_interval(secs => %s)",
            (key, window_seconds),
        ).fetchone()
        return int(row["n"]) if row else 0

    def oldest_attempt_age(self, key: str, window_seconds: int) -> float:
        row = self.session.execute(
            "SELECT extract(epoch FROM now() - min(attempted_at)) AS age"
            " FROM nojoin_auth.attempts"
            " WHERE key = %s AND attempted_at > now() - make_interval(secs => %s)",
            (key, window_seconds),
        ).fetchone()
        return float(row["age"]) if row and row["age"] is not None else 0.0

    def record_attempt(self, key: str, *, keep_seconds: int) -> None:
        """Count one attempt for `key`, and drop every attempt older than any rate-limit window
        (`keep_seconds`), so the table holds only what a limit can still count."""
        self.session.execute("INSERT INTO nojoin_auth.attempts (key) VALUES (%s)", (key,))
        self.session.execute(
            "DELETE FROM nojoin_auth.attempts"
            " WHERE attempted_at < now() - make_interval(secs => %s)",
            (keep_seconds,),
        )

    def clear_attempts(self, key: str) -> None:
        self.session.execute("DELETE FROM nojoin_auth.attempts WHERE key = %s", (key,))

    # --- password recovery ---
    def insert_recovery(
        self,
        *,
        user_id: uuid.UUID,
        otp_hash: str,
        link_hash: str,
        expires_at: datetime,
    ) -> None:
        # Only the newest recovery token of a user is valid.
        self.session.execute(
            "UPDATE nojoin_auth.recovery_tokens SET used_at = now()"
            " WHERE user_id = %s AND used_at IS NULL",
            (user_id,),
        )
        self.session.execute(
            "INSERT INTO nojoin_auth.recovery_tokens (user_id, otp_hash, link_hash, expires_at)"
            " VALUES (%s, %s, %s, %s)",
            (user_id, otp_hash, link_hash, expires_at),
        )

    def take_recovery(
        self,
        *,
        link_hash: str | None = None,
        user_id: uuid.UUID | None = None,
        otp_hash: str | None = None,
    ) -> Row | None:
        """Consume a valid (unused, unexpired) recovery token; return it or None."""
        params: list[Any]
        if link_hash is not None:
            where, params = "link_hash = %s", [link_hash]
        else:
            where, params = "user_id = %s AND otp_hash = %s", [user_id, otp_hash]
        return self.session.execute(
            "UPDATE nojoin_auth.recovery_tokens SET used_at = now()"
            f" WHERE {where} AND used_at IS NULL AND expires_at > now()"
            " RETURNING id, user_id",
            params,
        ).fetchone()

    # --- mail outbox (no mail server in embedded mode) ---
    def queue_mail(self, recipient: str, subject: str, body: str) -> None:
        self.session.execute(
            "INSERT INTO nojoin_auth.mail_outbox (recipient, subject, body) VALUES (%s, %s, %s)",
            (recipient, subject, body),
        )
