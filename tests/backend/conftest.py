"""Backend test fixtures, shared by every backend domain's tests (auth, config, backups, jobs,
billing).

- `pg_server` (session): one embedded PostgreSQL for the whole run.
- `pg_template` (session): a database with all migrations applied once.
- `pg_url` (module): a fresh database cloned from the template for each test module.
- `backend_settings_overrides` (module): override in a test module to change Settings.
- `job_settings` (module): the jobs domain's settings; override in a module or folder.
- `runtime` / `app` (module): the started Runtime and the FastAPI app on `pg_url`.
- `client`: httpx.AsyncClient over ASGITransport (use in `async def` tests; anyio runs them).
- `live_server` (module): uvicorn on a free 127.0.0.1 port in a thread; its base URL.
- `create_user` / `token_for`: users inserted straight into auth.users and access tokens
  signed with the built-in key, for tests that are not about sign-in itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

# pytest puts tests/ on sys.path (rootdir-relative conftest import), where tests/backend/ would
# make `backend` a namespace package shadowing the real one (the editable install is a meta-path
# finder, consulted later). With the repo root on sys.path the regular package always wins.
_REPO_ROOT = str(Path(__file__).resolve().parents[2])
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)
for _name in [m for m in sys.modules if m == "backend" or m.startswith("backend.")]:
    if getattr(sys.modules[_name], "__file__", None) is None:  # a namespace stand-in
        del sys.modules[_name]

import re  # noqa: E402
import secrets  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import AsyncIterator, Callable, Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import psycopg  # noqa: E402
import pytest  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from psycopg import sql  # noqa: E402

from backend.embedded import EmbeddedPostgres  # noqa: E402
from backend.jobs.settings import JobSettings  # noqa: E402
from backend.main import create_app  # noqa: E402
from backend.migrations import apply_migrations  # noqa: E402
from backend.runtime import Runtime  # noqa: E402
from backend.settings import Settings  # noqa: E402

TEMPLATE_DB = "nojoin_test_template"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedPostgres]:
    # Outside pytest's numbered basetemp: a concurrent pytest run prunes old basetemps, which
    # must never pull the data directory out from under a running server.
    base = Path(tempfile.mkdtemp(prefix="nojoin-test-pg-"))
    pg = EmbeddedPostgres(base / "pgdata", cleanup="delete")
    pg.start()
    yield pg
    pg.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_admin_url(pg_server: EmbeddedPostgres) -> str:
    return pg_server.url_for("postgres")


@pytest.fixture(scope="session")
def pg_template(pg_server: EmbeddedPostgres, pg_admin_url: str) -> str:
    """Name of a database with every migration applied (cloned per module: fast)."""
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(TEMPLATE_DB)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE_DB)))
    apply_migrations(pg_server.url_for(TEMPLATE_DB))
    return TEMPLATE_DB


def create_database(admin_url: str, name: str, template: str | None = None) -> None:
    query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)
        )
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(query)


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="module")
def pg_url(
    request: pytest.FixtureRequest,
    pg_server: EmbeddedPostgres,
    pg_admin_url: str,
    pg_template: str,
) -> Iterator[str]:
    """A fresh, fully migrated database for this test module."""
    stem = re.sub(r"[^a-z0-9]+", "_", request.module.__name__.rsplit(".", 1)[-1].lower())
    name = f"t_{stem[:40]}_{secrets.token_hex(3)}"
    create_database(pg_admin_url, name, template=pg_template)
    yield pg_server.url_for(name)
    drop_database(pg_admin_url, name)


@pytest.fixture(scope="module")
def backend_settings_overrides() -> dict[str, Any]:
    """Override in a test module to change settings, e.g. {"backup_retention": 2}."""
    return {}


@pytest.fixture(scope="module")
def backend_settings(
    pg_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    backend_settings_overrides: dict[str, Any],
) -> Settings:
    values: dict[str, Any] = {
        "database_url": pg_url,
        "data_dir": tmp_path_factory.mktemp("backend-data"),
        "builtin_auth": True,
        "db_pool_max": 8,
    }
    values.update(backend_settings_overrides)
    return Settings(**values)


@pytest.fixture(scope="module")
def job_settings() -> JobSettings:
    """The jobs domain's settings for this module's runtime (override in a module or folder)."""
    return JobSettings()


@pytest.fixture(scope="module")
def runtime(backend_settings: Settings, job_settings: JobSettings) -> Iterator[Runtime]:
    rt = Runtime.start(backend_settings, job_settings=job_settings)
    yield rt
    rt.stop()


@pytest.fixture(scope="module")
def app(runtime: Runtime) -> FastAPI:
    return create_app(runtime.settings, runtime=runtime)


@pytest.fixture
async def client(
    app: FastAPI,
    anyio_backend: str,  # noqa: ARG001 (anyio runs this async fixture)
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture(scope="module")
def live_server(app: FastAPI) -> Iterator[str]:
    """Run `app` with uvicorn on 127.0.0.1:<free port> in a thread; yield its base URL."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="live-backend", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("live server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@dataclass(frozen=True)
class TestUser:
    id: uuid.UUID
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def token_for(runtime: Runtime) -> Callable[..., str]:
    """token_for(user_id, **claim_overrides) -> an access token signed by the built-in key."""
    assert runtime.keys is not None, "token_for needs builtin_auth"

    def make(user_id: uuid.UUID, **overrides: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": runtime.settings.issuer,
            "aud": "authenticated",
            "sub": str(user_id),
            "role": "authenticated",
            "iat": now,
            "exp": now + 3600,
            "session_id": str(uuid.uuid4()),
        }
        claims.update(overrides)
        assert runtime.keys is not None
        return runtime.keys.sign(claims)

    return make


@pytest.fixture(scope="module")
def create_user(runtime: Runtime, token_for: Callable[..., str]) -> Callable[..., TestUser]:
    """create_user(email=None) -> TestUser with a row in auth.users and a valid token."""

    def make(email: str | None = None) -> TestUser:
        user_id = uuid.uuid4()
        email = email or f"user-{user_id.hex[:8]}@example.test"
        with runtime.db.transaction() as conn:
            conn.execute(
                "INSERT INTO auth.users (id, aud, role, email, created_at, updated_at,"
                " raw_app_meta_data, raw_user_meta_data)"
                " VALUES (%s, 'authenticated', 'authenticated', %s, now(), now(), '{}', '{}')",
                (user_id, email),
            )
        return TestUser(id=user_id, email=email, token=token_for(user_id, email=email))

    return make


@pytest.fixture
def data_file(tmp_path: Path) -> Callable[[int], Path]:
    """data_file(n) -> a file of n random bytes."""

    def make(size: int) -> Path:
        path = tmp_path / f"blob-{size}-{secrets.token_hex(2)}.bin"
        path.write_bytes(secrets.token_bytes(size))
        return path

    return make
