"""SQL for public.profiles."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg.types.json import Jsonb

from backend.db import Repository

Row = dict[str, Any]


class ProfileRepository(Repository):
    def get(self, user_id: uuid.UUID) -> Row | None:
        return self.session.execute(
            "SELECT config, version, updated_at FROM public.profiles WHERE user_id = %s",
            (user_id,),
        ).fetchone()

    def insert(self, user_id: uuid.UUID, config: dict[str, Any]) -> Row | None:
        """Create the first version; None if a row already exists (a concurrent writer)."""
        return self.session.execute(
            "INSERT INTO public.profiles (user_id, config, version) VALUES (%s, %s, 1)"
            " ON CONFLICT (user_id) DO NOTHING RETURNING config, version, updated_at",
            (user_id, Jsonb(config)),
        ).fetchone()

    def update_if_version(
        self, user_id: uuid.UUID, config: dict[str, Any], expected: int
    ) -> Row | None:
        """Compare-and-set: None when the stored version is not `expected`."""
        return self.session.execute(
            "UPDATE public.profiles SET config = %s WHERE user_id = %s AND version = %s"
            " RETURNING config, version, updated_at",
            (Jsonb(config), user_id, expected),
        ).fetchone()
