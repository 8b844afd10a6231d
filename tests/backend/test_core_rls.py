"""Row Level Security as a Supabase project enforces it: the migrations on a real PostgreSQL
with the auth shim; requests run as role `authenticated` with request.jwt.claims set."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg.types.json import Jsonb


@pytest.fixture(scope="module")
def users(pg_url: str) -> tuple[uuid.UUID, uuid.UUID]:
    a, b = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(pg_url) as conn:
        for uid in (a, b):
            conn.execute(
                "INSERT INTO auth.users (id, email, created_at) VALUES (%s, %s, now())",
                (uid, f"{uid.hex[:8]}@example.test"),
            )
            conn.execute(
                "INSERT INTO public.profiles (user_id, config) VALUES (%s, %s)",
                (uid, Jsonb({"owner": str(uid)})),
            )
            conn.execute(
                "INSERT INTO public.backups (user_id, name, object_key, size, sha256, provider,"
                " status, expires_at) VALUES (%s, 'b', %s, 1, %s, 'local', 'completed', now())",
                (uid, f"{uid}/backups/{uuid.uuid4()}.sqlite3", "a" * 64),
            )
            conn.execute(
                "INSERT INTO storage.objects (bucket_id, name, owner) VALUES ('user-backups', %s, %s)",
                (f"{uid}/backups/x.sqlite3", uid),
            )
    return a, b


@contextmanager
def as_role(pg_url: str, role: str, sub: uuid.UUID | None = None) -> Iterator[psycopg.Connection]:
    """A transaction that behaves like a PostgREST request from `role` (rolled back after)."""
    with psycopg.connect(pg_url) as conn:
        conn.execute(f"SET LOCAL ROLE {role}")
        claims = {"role": role, **({"sub": str(sub)} if sub else {})}
        conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
        try:
            yield conn
        finally:
            conn.rollback()


def test_users_only_see_their_own_profile(pg_url: str, users: tuple[uuid.UUID, uuid.UUID]) -> None:
    a, b = users
    with as_role(pg_url, "authenticated", a) as conn:
        rows = conn.execute("SELECT user_id FROM public.profiles").fetchall()
        assert rows == [(a,)]
        assert conn.execute("SELECT auth.uid()").fetchone() == (a,)


def test_users_cannot_change_others_profile(
    pg_url: str, users: tuple[uuid.UUID, uuid.UUID]
) -> None:
    a, b = users
    with as_role(pg_url, "authenticated", a) as conn:
        cur = conn.execute(
            "UPDATE public.profiles SET config = '{\"pwned\": true}' WHERE user_id = %s", (b,)
        )
        assert cur.rowcount == 0  # B's row is invisible to A, so nothing matches
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT config FROM public.profiles WHERE user_id = %s", (b,)).fetchone()
        assert row == ({"owner": str(b)},)


def test_users_cannot_delete_or_reassign_rows(
    pg_url: str, users: tuple[uuid.UUID, uuid.UUID]
) -> None:
    a, b = users
    with as_role(pg_url, "authenticated", a) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM public.profiles WHERE user_id = %s", (a,))
    with as_role(pg_url, "authenticated", a) as conn:
        # Moving one's own row onto another user does not happen: the trigger pins user_id
        # (and the policy's WITH CHECK would refuse it anyway).
        conn.execute("UPDATE public.profiles SET user_id = %s WHERE user_id = %s", (b, a))
        assert conn.execute("SELECT user_id FROM public.profiles").fetchall() == [(a,)]
    with as_role(pg_url, "authenticated", a) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO public.profiles (user_id, config) VALUES (%s, '{}')", (uuid.uuid4(),)
            )


def test_own_profile_update_bumps_version(pg_url: str, users: tuple[uuid.UUID, uuid.UUID]) -> None:
    a, _ = users
    with as_role(pg_url, "authenticated", a) as conn:
        before = conn.execute("SELECT version FROM public.profiles").fetchone()
        assert before is not None
        conn.execute("UPDATE public.profiles SET config = '{\"k\": 1}', version = 1000")
        after = conn.execute("SELECT version FROM public.profiles").fetchone()
        assert after == (before[0] + 1,)  # the trigger owns the version, not the client


def test_backups_are_read_only_and_private(pg_url: str, users: tuple[uuid.UUID, uuid.UUID]) -> None:
    a, b = users
    with as_role(pg_url, "authenticated", a) as conn:
        rows = conn.execute("SELECT user_id FROM public.backups").fetchall()
        assert rows == [(a,)]
    with as_role(pg_url, "authenticated", a) as conn:
        # Only the service writes backup metadata (size and checksum cannot be forged).
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE public.backups SET size = 2")
    with as_role(pg_url, "authenticated", a) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO public.backups (user_id, name, object_key, size, sha256, provider,"
                " expires_at) VALUES (%s, 'x', %s, 1, %s, 'local', now())",
                (a, f"{a}/x", "b" * 64),
            )


def test_storage_objects_per_user_folder(pg_url: str, users: tuple[uuid.UUID, uuid.UUID]) -> None:
    a, b = users
    with as_role(pg_url, "authenticated", a) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM storage.objects").fetchall()]
        assert names == [f"{a}/backups/x.sqlite3"]
        conn.execute(
            "INSERT INTO storage.objects (bucket_id, name) VALUES ('user-backups', %s)",
            (f"{a}/backups/new.sqlite3",),
        )
    with as_role(pg_url, "authenticated", a) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO storage.objects (bucket_id, name) VALUES ('user-backups', %s)",
                (f"{b}/backups/evil.sqlite3",),
            )
    with as_role(pg_url, "authenticated", a) as conn:
        cur = conn.execute("DELETE FROM storage.objects WHERE name LIKE %s", (f"{b}/%",))
        assert cur.rowcount == 0


def test_anon_sees_nothing_and_service_role_sees_all(
    pg_url: str, users: tuple[uuid.UUID, uuid.UUID]
) -> None:
    a, b = users
    with as_role(pg_url, "anon") as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM public.profiles")
    with as_role(pg_url, "anon") as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM nojoin_auth.refresh_tokens")
    with as_role(pg_url, "authenticated", a) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM nojoin_auth.sessions")
    with as_role(pg_url, "service_role") as conn:
        ids = {r[0] for r in conn.execute("SELECT user_id FROM public.profiles").fetchall()}
        assert {a, b} <= ids
