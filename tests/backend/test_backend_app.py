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
