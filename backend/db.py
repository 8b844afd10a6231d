"""PostgreSQL access: one psycopg 3 connection pool, the per-request session dependency and
the `Repository` base every domain's SQL class derives from.

`SessionDep` yields a connection inside a transaction that commits when the endpoint returns
and rolls back when it raises. Services and repositories never commit; code outside a request
(workers, CLI) uses `Database.transaction()` the same way. A repository lives for one session:
`JobRepository.from_session(conn).get_job(job_id)`.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Self

import anyio
import psycopg
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from backend.errors import BackendError

logger = logging.getLogger(__name__)

Connection = psycopg.Connection[dict[str, Any]]


class Repository:
    """All SQL of one domain, over one session (a connection already inside a transaction).

    Built per session with `from_session`; never commits (the session's owner does)."""

    def __init__(self, session: Connection) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: Connection) -> Self:
        return cls(session)


class Database:
    """Owns the pool. Rows come back as dicts."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self.url = url
        self.max_size = max_size
        self._limiters: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, anyio.CapacityLimiter
        ] = weakref.WeakKeyDictionary()
        self.pool: ConnectionPool[Connection] = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"row_factory": dict_row, "autocommit": False},
            open=False,
            name="nojoin-backend",
            # One cheap round trip on checkout: after a database restart a request gets a
            # fresh connection instead of a 500 from a dead one.
            check=ConnectionPool.check_connection,
        )

    def open(self, timeout: float = 30.0) -> None:
        self.pool.open(wait=True, timeout=timeout)

    def close(self) -> None:
        self.pool.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection in a transaction: commit on success, roll back on any exception."""
        with self.pool.connection() as conn:
            with conn.transaction():
                yield conn

    def request_limiter(self) -> anyio.CapacityLimiter:
        """At most `max_size` requests hold or wait for a connection; the rest wait here,
        on the event loop, without occupying a worker thread. Without this, threads blocked in
        `pool.getconn()` can fill the threadpool while the requests that hold the connections
        wait for a thread to run their endpoint: a deadlock until the pool timeout."""
        loop = asyncio.get_running_loop()
        limiter = self._limiters.get(loop)
        if limiter is None:
            limiter = self._limiters[loop] = anyio.CapacityLimiter(self.max_size)
        return limiter

    def ping(self) -> bool:
        try:
            with self.pool.connection(timeout=2.0) as conn:
                conn.execute("SELECT 1")
            return True
        except Exception:  # noqa: BLE001 - health must report, not raise
            logger.warning("Database ping failed", exc_info=True)
            return False


async def get_session(request: Request) -> AsyncIterator[Connection]:
    """Commit when the endpoint returns, roll back when it raises (unless the error says
    `keep_changes`, see errors.BackendError)."""
    # The app's Runtime (backend/runtime.py imports this module, so no import back).
    db: Database = request.app.state.runtime.db
    async with db.request_limiter():
        conn = await run_in_threadpool(db.pool.getconn)
        commit = False
        try:
            yield conn
            commit = True
        except BackendError as exc:
            commit = exc.keep_changes
            raise
        finally:
            # One thread hop for commit/rollback + return to the pool; shielded so a client
            # disconnect cannot leak the connection.
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(_finish, db, conn, commit)


def _finish(db: Database, conn: Connection, commit: bool) -> None:
    try:
        if commit:
            conn.commit()
        else:
            conn.rollback()
    finally:
        db.pool.putconn(conn)


# scope="function": commit happens before the response is sent, so a client that gets a 200
# and immediately reads again sees its own write.
SessionDep = Annotated[Connection, Depends(get_session, scope="function")]
