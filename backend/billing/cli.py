"""`nojoin-billing`: operator commands — GPU usage per user and period, and manual plan grants.

Connects to NOJOIN_DATABASE_URL (or --database-url); with neither, to the embedded PostgreSQL
in the backend's data dir, like `nojoin-backend` does.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TextIO

from backend.billing.repository import BillingRepository
from backend.db import Connection, Database

logger = logging.getLogger(__name__)


def _day(text: str) -> datetime:
    """YYYY-MM-DD (start of that UTC day) or a full ISO timestamp."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nojoin-billing", description=__doc__)
    parser.add_argument("--database-url", help="PostgreSQL URL (default: NOJOIN_DATABASE_URL)")
    parser.add_argument("--data-dir", type=Path, help="backend data dir for the embedded database")
    sub = parser.add_subparsers(dest="command", required=True)

    usage = sub.add_parser("usage", help="GPU usage per user and period (UTC)")
    usage.add_argument("--start", type=_day, help="first day (default: 30 days before --end)")
    usage.add_argument("--end", type=_day, help="end, exclusive (default: now)")
    usage.add_argument("--granularity", choices=["day", "week", "month"], default="month")
    usage.add_argument("--user", type=uuid.UUID, help="only this user id")
    usage.add_argument("--format", choices=["table", "csv", "json"], default="table")

    grant = sub.add_parser("grant", help="set a user's plan by hand (no payment involved)")
    grant.add_argument("user", help="user id or e-mail")
    grant.add_argument("--tier", choices=["free", "pro"], required=True)
    grant.add_argument("--until", type=_day, help="end of the granted period")
    return parser


@contextmanager
def _connect(args: argparse.Namespace) -> Iterator[Connection]:
    from backend.settings import Settings

    overrides: dict[str, Any] = {}
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    settings = Settings(**overrides)
    url = args.database_url or settings.database_url
    embedded = None
    if url is None:
        from backend.embedded import start_embedded

        embedded, url = start_embedded(settings.data_dir)
    db = Database(url, min_size=1, max_size=1)
    try:
        db.open()
        with db.transaction() as conn:
            yield conn
    finally:
        db.close()
        if embedded is not None:
            embedded.stop()


def write_usage(rows: list[dict[str, Any]], fmt: str, out: TextIO) -> None:
    columns = ["period_start", "user_id", "email", "tier", "jobs", "gpu_seconds", "audio_seconds"]
    if fmt == "json":
        json.dump(rows, out, default=str, indent=2)
        out.write("\n")
        return
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        return
    out.write(
        f"{'period':<10}  {'user':<36}  {'email':<28}  {'tier':<4}  {'jobs':>6}"
        f"  {'gpu h':>8}  {'audio h':>8}\n"
    )
    for r in rows:
        out.write(
            f"{r['period_start']:%Y-%m-%d}  {r['user_id']!s:<36}  {(r['email'] or '-')[:28]:<28}"
            f"  {r['tier']:<4}  {r['jobs']:>6}  {r['gpu_seconds'] / 3600:>8.2f}"
            f"  {r['audio_seconds'] / 3600:>8.2f}\n"
        )
    total_jobs = sum(r["jobs"] for r in rows)
    total_gpu = sum(r["gpu_seconds"] for r in rows)
    out.write(f"total: {total_jobs} jobs, {total_gpu / 3600:.2f} GPU hours\n")


def _resolve_user(conn: Connection, text: str) -> uuid.UUID | None:
    repo = BillingRepository.from_session(conn)
    try:
        user_id = uuid.UUID(text)
    except ValueError:
        return repo.user_id_by_email(text)
    return user_id if repo.user_exists(user_id) else None


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = _parser().parse_args(argv)
    out = out or sys.stdout
    logging.basicConfig(level=logging.WARNING)
    try:
        with _connect(args) as conn:
            if args.command == "usage":
                end = args.end or datetime.now(UTC)
                start = args.start or end - timedelta(days=30)
                if start >= end:
                    sys.stderr.write("nojoin-billing: --start must be before --end\n")
                    return 2
                rows = BillingRepository.from_session(conn).usage_summary(
                    start=start, end=end, granularity=args.granularity, user_id=args.user
                )
                write_usage(rows, args.format, out)
                return 0
            user_id = _resolve_user(conn, args.user)
            if user_id is None:
                sys.stderr.write(f"nojoin-billing: no user {args.user!r}\n")
                return 1
            BillingRepository.from_session(conn).lock_subscription(user_id)
            BillingRepository.from_session(conn).update_subscription(
                user_id,
                tier=args.tier,
                status="active",
                stripe_status="manual",
                past_due_since=None,
                current_period_start=datetime.now(UTC) if args.until else None,
                current_period_end=args.until,
                last_event_at=datetime.now(UTC),
                last_event_id=None,
            )
            out.write(f"{user_id}: plan set to {args.tier}\n")
            return 0
    except Exception as exc:  # noqa: BLE001 - an operator command reports, it does not trace
        logger.debug("nojoin-billing failed", exc_info=True)
        sys.stderr.write(f"nojoin-billing: {exc}\n")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
