"""Billing figures: what the tier gate + quota add to a job submission's transaction, how that
holds when one user's submissions race, and how many signed webhook events/s the service
applies (signature check included). Embedded PostgreSQL in a temp dir; bounded run.

    .venv/bin/python benchmarks/bench_billing.py [--jobs 400] [--events 400]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import stripe

from backend.billing.provider import OfflineBillingProvider
from backend.billing.service import BillingService
from backend.billing.settings import BillingSettings
from backend.billing.webhooks import StripeWebhookService
from backend.db import Connection, Database
from backend.embedded import EmbeddedPostgres
from backend.migrations import apply_migrations

SECRET = "whsec_bench"


def _user(db: Database, tier: str) -> uuid.UUID:
    user_id = uuid.uuid4()
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO auth.users (id, email, created_at) VALUES (%s, %s, now())",
            (user_id, f"{user_id.hex[:8]}@bench.test"),
        )
        conn.execute(
            "INSERT INTO subscriptions (user_id, tier, status) VALUES (%s, %s, 'active')",
            (user_id, tier),
        )
    return user_id


def _insert_job(conn: Connection, user_id: uuid.UUID) -> None:
    conn.execute("INSERT INTO jobs (user_id, kind) VALUES (%s, 'transcribe')", (user_id,))


def bench_admission(db: Database, service: BillingService | None, n: int) -> list[float]:
    user_id = _user(db, "pro")
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        with db.transaction() as conn:
            if service is not None:
                service.admit_job(conn, user_id, 1000)
            _insert_job(conn, user_id)
        times.append(time.perf_counter() - t0)
    return times


def bench_race(
    db: Database, service: BillingService, threads: int, per_thread: int
) -> tuple[int, int, float]:
    user_id = _user(db, "pro")
    accepted = refused = 0
    lock = threading.Lock()

    def run() -> None:
        nonlocal accepted, refused
        for _ in range(per_thread):
            try:
                with db.transaction() as conn:
                    service.admit_job(conn, user_id, 1000)
                    _insert_job(conn, user_id)
                with lock:
                    accepted += 1
            except Exception:  # noqa: BLE001 - 429 expected once the quota is used
                with lock:
                    refused += 1

    t0 = time.perf_counter()
    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return accepted, refused, time.perf_counter() - t0


def bench_events(db: Database, webhooks: StripeWebhookService, n: int) -> float:
    users = [_user(db, "free") for _ in range(20)]
    payloads = []
    now = int(time.time())
    for i in range(n):
        user = users[i % len(users)]
        event = {
            "id": f"evt_bench_{i}",
            "object": "event",
            "type": "customer.subscription.updated",
            "created": now + i,
            "data": {
                "object": {
                    "id": f"sub_{user.hex[:12]}",
                    "object": "subscription",
                    "customer": f"cus_{user.hex[:12]}",
                    "status": "active" if i % 3 else "past_due",
                    "metadata": {"nojoin_user_id": str(user)},
                    "current_period_start": now,
                    "current_period_end": now + 86400 * 30,
                }
            },
        }
        body = json.dumps(event)
        payloads.append((body, stripe.WebhookSignature.generate_signature_header(body, SECRET)))
    t0 = time.perf_counter()
    for body, header in payloads:
        stripe.Webhook.construct_event(body, header, SECRET)
        with db.transaction() as conn:
            webhooks.apply_event(conn, json.loads(body))
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--events", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pgdata", cleanup="delete")
        url = pg.start()
        try:
            apply_migrations(url)
            db = Database(url, min_size=1, max_size=10)
            db.open()
            settings = BillingSettings(
                require_subscription=True,
                stripe_webhook_secret=SECRET,
                quota_pro_jobs_per_day=10**9,
            )
            service = BillingService(settings, OfflineBillingProvider())
            bench_admission(db, service, 50)  # warm-up
            plain = bench_admission(db, None, args.jobs)
            gated = bench_admission(db, service, args.jobs)
            p50_plain, p50_gated = statistics.median(plain), statistics.median(gated)
            print(
                f"job insert transaction p50: {p50_plain * 1e3:.2f} ms without billing, "
                f"{p50_gated * 1e3:.2f} ms with gate+quota "
                f"(ratio {p50_gated / p50_plain:.2f}x, +{(p50_gated - p50_plain) * 1e3:.2f} ms)"
            )

            race_service = BillingService(
                BillingSettings(require_subscription=True, quota_pro_jobs_per_day=100),
                OfflineBillingProvider(),
            )
            accepted, refused, secs = bench_race(db, race_service, threads=8, per_thread=25)
            print(
                f"one user, 8 threads x 25 submissions, quota 100: accepted {accepted}, "
                f"refused {refused} in {secs:.2f} s ({(accepted + refused) / secs:.0f} admissions/s)"
            )

            rate = bench_events(db, StripeWebhookService(), args.events)
            print(f"webhook events (verify + apply, sequential): {rate:.0f} events/s")
            db.close()
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
