"""App skeleton: health, JSON errors, migrations runner."""

from __future__ import annotations

from pathlib import Path

import httpx
import psycopg
import pytest

from backend.migrations import MIGRATIONS_DIR, MigrationError, apply_migrations, discover

pytestmark = pytest.mark.anyio


async def test_health_reports_database_and_anon_key_only_in_embedded_mode(
    client: httpx.AsyncClient,
) -> None:
    resp = await client.get("/health")
    assert resp.status_code == 200
    body = resp.json()
    assert body["database"] == "ok"
    assert body["mode"] == "external"  # tests pass NOJOIN_DATABASE_URL
    assert "anon_key" not in body


async def test_unknown_route_and_wrong_method_are_json(client: httpx.AsyncClient) -> None:
    resp = await client.get("/api/v1/nothing-here")
    assert resp.status_code == 404
    assert resp.json() == {"detail": "Not Found"}
    resp = await client.delete("/health")
    assert resp.status_code == 405
    assert isinstance(resp.json()["detail"], str)


async def test_oversized_body_is_413_json(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        "/api/v1/backups/generate-upload-url",
        content=b"x" * (2 * 1024 * 1024),
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 413
    assert "larger than" in resp.json()["detail"]


def test_migrations_are_ordered_and_recorded(pg_url: str) -> None:
    versions = [m.version for m in discover()]
    assert versions == sorted(versions, key=int)
    assert versions[:5] == ["0001", "0002", "0003", "0004", "0005"]
    # Already applied to the module database: a second run applies nothing.
    assert apply_migrations(pg_url) == []
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT version FROM nojoin_migrations.schema_migrations ORDER BY version"
        ).fetchall()
    assert [r[0] for r in rows] == versions


def test_edited_migration_is_refused(pg_url: str, tmp_path: Path) -> None:
    for mig in discover():
        (tmp_path / mig.path.name).write_text(mig.sql)
    first = sorted(tmp_path.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        apply_migrations(pg_url, dirs=[tmp_path])


def test_duplicate_or_misnamed_migration_is_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0001_b.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="share version"):
        discover([tmp_path])
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "jobs.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_"):
        discover([bad])
    assert MIGRATIONS_DIR.is_dir()


async def test_openapi_documents_the_contract(client: httpx.AsyncClient) -> None:
    resp = await client.get("/openapi.json")
    assert resp.status_code == 200
    paths = resp.json()["paths"]
    for path in (
        "/health",
        "/api/v1/config",
        "/api/v1/backups",
        "/api/v1/backups/generate-upload-url",
        "/api/v1/backups/generate-download-url",
    ):
        assert path in paths


async def test_requests_are_logged_with_an_id_and_without_query_strings(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    import json
    import logging

    from backend.logsetup import JsonFormatter

    with caplog.at_level(logging.INFO, logger="backend.requests"):
        resp = await client.get("/health?sig=secret-signature", headers={"X-Request-ID": "abc-123"})
    assert resp.headers["x-request-id"] == "abc-123"
    record = next(r for r in caplog.records if r.name == "backend.requests")
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "abc-123" and line["path"] == "/health"
    assert line["status"] == 200 and line["duration_ms"] >= 0
    assert "secret-signature" not in caplog.text
    generated = (await client.get("/health", headers={"X-Request-ID": "bad id\n"})).headers
    assert generated["x-request-id"] != "bad id\n" and len(generated["x-request-id"]) == 16


def test_app_without_a_runtime_starts_and_stops_its_own(pg_url: str, tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from backend.main import create_app
    from backend.settings import Settings

    app = create_app(Settings(database_url=pg_url, data_dir=tmp_path, builtin_auth=True))
    with TestClient(app) as c:  # runs the lifespan
        assert c.get("/health").json()["database"] == "ok"
        runtime = app.state.runtime
        assert runtime is not None
    assert app.state.runtime is None
    assert runtime.db.pool.closed


async def test_health_is_503_while_the_database_is_unreachable_and_recovers(
    client: httpx.AsyncClient, pg_url: str, pg_admin_url: str
) -> None:
    dbname = psycopg.conninfo.conninfo_to_dict(pg_url)["dbname"]
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (dbname,),
        )
        try:
            resp = await client.get("/health")
            assert resp.status_code == 503
            assert resp.json()["database"] == "unreachable"
        finally:
            admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
    # Dead pooled connections are replaced: the next requests work again.
    resp = await client.get("/health")
    assert resp.status_code == 200 and resp.json()["database"] == "ok"
