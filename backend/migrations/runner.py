"""Apply the SQL migrations in order and remember which ones ran."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psycopg

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent
_FILE_RE = re.compile(r"^(?P<version>\d{4,14})_(?P<name>[a-z0-9_]+)\.sql$")
# Any constant works; it serialises concurrent start-ups (API + workers) on one database.
_LOCK_KEY = 0x4E4F4A4F494E  # "NOJOIN"


class MigrationError(RuntimeError):
    """A migration file is malformed, duplicated, edited after being applied, or failed."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(dirs: Iterable[Path] = (MIGRATIONS_DIR,)) -> list[Migration]:
    """All NNNN_name.sql files in `dirs`, in numeric order; duplicate versions are an error."""
    found: dict[int, Migration] = {}
    for directory in dirs:
        for path in sorted(directory.glob("*.sql")):
            match = _FILE_RE.match(path.name)
            if not match:
                raise MigrationError(
                    f"Migration file {path.name} must be named NNNN_lower_snake_name.sql"
                )
            number = int(match["version"])
            if number in found:
                raise MigrationError(
                    f"Two migrations share version {number}: {found[number].path.name} and "
                    f"{path.name}. Pick a free number."
                )
            found[number] = Migration(match["version"], match["name"], path)
    return [found[n] for n in sorted(found)]


_BOOKKEEPING = """
CREATE SCHEMA IF NOT EXISTS nojoin_migrations;
CREATE TABLE IF NOT EXISTS nojoin_migrations.schema_migrations (
    version    text PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
"""


def apply_migrations(url: str, dirs: Iterable[Path] = (MIGRATIONS_DIR,)) -> list[str]:
    """Apply pending migrations to the database at `url`; return the versions applied."""
    migrations = discover(dirs)
    applied_now: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(_BOOKKEEPING)
            rows = conn.execute(
                "SELECT version, checksum FROM nojoin_migrations.schema_migrations"
            ).fetchall()
            done = {int(version): checksum for version, checksum in rows}
            for mig in migrations:
                number = int(mig.version)
                if number in done:
                    if done[number] != mig.checksum:
                        raise MigrationError(
                            f"Migration {mig.path.name} was changed after it was applied. "
                            "Never edit an applied migration; add a new one instead."
                        )
                    continue
                logger.info("Applying migration %s", mig.path.name)
                try:
                    with conn.transaction():
                        conn.execute(mig.sql.encode("utf-8"))
                        conn.execute(
                            "INSERT INTO nojoin_migrations.schema_migrations"
                            " (version, name, checksum) VALUES (%s, %s, %s)",
                            (mig.version, mig.name, mig.checksum),
                        )
                except psycopg.Error as exc:
                    raise MigrationError(f"Migration {mig.path.name} failed: {exc}") from exc
                applied_now.append(mig.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now
