"""Operator usage report: gpu_usage_logs summed per user and period, over HTTP (operator key)
and through the `nojoin-billing usage` command."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from backend.billing import cli
from backend.billing.service import BillingService
from backend.runtime import Runtime

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

OPERATOR_KEY = "op-key-for-tests-0123456789"
USAGE = "/api/v1/billing/admin/usage"


@pytest.fixture(scope="module")
def billing_overrides() -> dict[str, Any]:
    return {"operator_api_key": OPERATOR_KEY}


@pytest.fixture(scope="module")
def usage(runtime: Runtime, create_user: Callable[..., Any]) -> tuple[Any, Any]:
    """User a: 2 jobs in October (60 s + 30 s GPU), 1 in November (10 s); user b: 1 in
    November (100 s); one job outside the range (December)."""
    a, b = create_user(), create_user()
    rows = [
        (a, "2026-10-03 10:00+00", 60.0, 600.0),
        (a, "2026-10-31 23:59:59+00", 30.0, 300.0),
        (a, "2026-11-01 00:00+00", 10.0, 100.0),
        (b, "2026-11-15 12:00+00", 100.0, 1000.0),
        (b, "2026-12-01 00:00+00", 999.0, 9990.0),
    ]
    with runtime.db.transaction() as conn:
        conn.execute("INSERT INTO subscriptions (user_id, tier) VALUES (%s, 'pro')", (b.id,))
        for user, at, gpu, audio in rows:
            job = conn.execute(
                "INSERT INTO jobs (user_id, kind, status, finished_at, result, created_at)"
                " VALUES (%s, 'transcribe', 'COMPLETED', %s, '{}', %s) RETURNING id",
                (user.id, at, at),
            ).fetchone()
            assert job is not None
            conn.execute(
                "INSERT INTO gpu_usage_logs (job_id, user_id, kind, duration_seconds,"
                " audio_seconds, worker_id, created_at)"
                " VALUES (%s, %s, 'transcribe', %s, %s, 'gpu-1', %s)",
                (job["id"], user.id, gpu, audio, at),
            )
    return a, b


@pytest.mark.usefixtures("billing")
async def test_usage_per_user_and_month(client: httpx.AsyncClient, usage: tuple[Any, Any]) -> None:
    a, b = usage
    resp = await client.get(
        USAGE,
        params={"start": "2026-10-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"},
        headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
    )
    assert resp.status_code == 200, resp.text
    got = [
        (r["period_start"][:7], r["user_id"], r["jobs"], r["gpu_seconds"], r["tier"])
        for r in resp.json()["rows"]
    ]
    assert got == [
        ("2026-10", str(a.id), 2, 90.0, "free"),
        ("2026-11", str(b.id), 1, 100.0, "pro"),
        ("2026-11", str(a.id), 1, 10.0, "free"),
    ]
    one = await client.get(
        USAGE,
        params={
            "start": "2026-10-01T00:00:00Z",
            "end": "2027-01-01T00:00:00Z",
            "granularity": "day",
            "user_id": str(b.id),
        },
        headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
    )
    assert [(r["period_start"][:10], r["gpu_seconds"]) for r in one.json()["rows"]] == [
        ("2026-11-15", 100.0),
        ("2026-12-01", 999.0),
    ]


async def test_usage_needs_the_operator_key(
    client: httpx.AsyncClient, billing: BillingService, create_user: Callable[..., Any]
) -> None:
    assert (await client.get(USAGE)).status_code == 401
    user = create_user()
    assert (await client.get(USAGE, headers=user.headers)).status_code == 401
    bad = await client.get(
        USAGE,
        params={"start": "2026-12-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"},
        headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
    )
    assert bad.status_code == 400
    billing.settings.operator_api_key = None
    try:
        resp = await client.get(USAGE, headers={"Authorization": f"Bearer {OPERATOR_KEY}"})
        assert resp.status_code == 404
    finally:
        from pydantic import SecretStr

        billing.settings.operator_api_key = SecretStr(OPERATOR_KEY)


def test_cli_usage_and_grant(pg_url: str, runtime: Runtime, usage: tuple[Any, Any]) -> None:
    a, b = usage
    out = io.StringIO()
    code = cli.main(
        [
            "--database-url",
            pg_url,
            "usage",
            "--start",
            "2026-10-01",
            "--end",
            "2026-11-01",
            "--format",
            "json",
        ],
        out=out,
    )
    assert code == 0
    rows = json.loads(out.getvalue())
    assert [(r["user_id"], r["jobs"], r["gpu_seconds"]) for r in rows] == [(str(a.id), 2, 90.0)]

    table = io.StringIO()
    assert (
        cli.main(
            ["--database-url", pg_url, "usage", "--start", "2026-10-01", "--end", "2026-12-01"],
            out=table,
        )
        == 0
    )
    assert "total: 4 jobs, 0.06 GPU hours" in table.getvalue()

    granted = io.StringIO()
    assert (
        cli.main(
            ["--database-url", pg_url, "grant", a.email, "--tier", "pro", "--until", "2099-01-01"],
            out=granted,
        )
        == 0
    )
    with runtime.db.transaction() as conn:
        from backend.billing.repository import BillingRepository

        sub = BillingRepository.from_session(conn).get_subscription(a.id)
    assert sub is not None and sub.entitled
    assert sub.current_period_end == datetime(2099, 1, 1, tzinfo=UTC)
    assert (
        cli.main(
            ["--database-url", pg_url, "grant", "nobody@example.test", "--tier", "pro"],
            out=io.StringIO(),
        )
        == 1
    )
