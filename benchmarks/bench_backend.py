"""Backend load figures: requests/s and latency percentiles of GET /api/v1/config with 50
concurrent clients over loopback, and the cost of verifying one access token.

The API runs as `nojoin-backend` (embedded PostgreSQL, one uvicorn worker) in a child
process; this process is the load generator. Bounded by request count and wall time.

    .venv/bin/python benchmarks/bench_backend.py [--clients 50] [--requests 5000] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data_dir: Path, port: int) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOJOIN_")}
    env["NOJOIN_DATA_DIR"] = str(data_dir / "desktop")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "backend.main",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    anon = ""
    while time.monotonic() < deadline and not anon:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("nojoin-backend exited during start-up")
        if line.startswith("NOJOIN_ANON_KEY="):
            anon = line.strip().split("=", 1)[1]
    base = f"http://127.0.0.1:{port}"
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return proc, anon
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("server did not become healthy")


async def _raw_get(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    """One keep-alive HTTP/1.1 GET on an open connection; returns the status code.

    A minimal client on purpose: httpx costs ~3x the server's CPU per request, so on a small
    machine it would measure the load generator instead of the API."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def load(
    port: int, token: str, clients: int, total: int, seconds: float
) -> tuple[list[float], float, int]:
    latencies: list[float] = []
    errors = 0
    remaining = total
    stop_at = time.perf_counter() + seconds
    request = (
        f"GET /api/v1/config HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    ).encode()
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(clients)]

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal remaining, errors
        while remaining > 0 and time.perf_counter() < stop_at:
            remaining -= 1
            t0 = time.perf_counter()
            status = await _raw_get(reader, writer, request)
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                errors += 1

    # Warm-up: one request per connection (fills the DB pool, caches the token check).
    await asyncio.gather(*(_raw_get(r, w, request) for r, w in conns))
    t_start = time.perf_counter()
    await asyncio.gather(*(worker(r, w) for r, w in conns))
    elapsed = time.perf_counter() - t_start
    for _, w in conns:
        w.close()
    return latencies, elapsed, errors


def jwt_verify_cost(data_dir: Path, token: str, n: int = 3000) -> tuple[float, float]:
    """Seconds per token verification with the server's own key: (signature checked,
    verified-token cache hit - what a client reusing its token pays)."""
    from jwt import PyJWK

    from backend.auth.keys import load_or_create_keys
    from backend.auth.verifier import TokenVerifier

    keys = load_or_create_keys(data_dir / "auth")
    verifier = TokenVerifier(
        audience="authenticated",
        issuer="nojoin-embedded-auth",
        static_keys=[PyJWK(keys.public_jwk)],
    )
    verifier.verify(token)
    t0 = time.perf_counter()
    for _ in range(n):
        verifier._verify_uncached(token)
    cold = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    for _ in range(n * 10):
        verifier.verify(token)
    return cold, (time.perf_counter() - t0) / (n * 10)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="nojoin-bench-") as tmp:
        data_dir = Path(tmp) / "backend"
        port = _free_port()
        proc, anon = start_server(data_dir, port)
        base = f"http://127.0.0.1:{port}"
        try:
            session = httpx.post(
                f"{base}/auth/v1/signup",
                json={"email": "bench@example.test", "password": "benchmark password"},
                headers={"apikey": anon},
            ).json()
            token = session["access_token"]
            httpx.put(
                f"{base}/api/v1/config",
                json={
                    "config": {"model": "tiny.en", "language": "en", "diarize": True},
                    "version": 0,
                },
                headers={"Authorization": f"Bearer {token}"},
            ).raise_for_status()
            server = psutil.Process(proc.pid)
            me = psutil.Process()
            cpu0 = sum(server.cpu_times()[:2])
            me0 = sum(me.cpu_times()[:2])
            latencies, elapsed, errors = asyncio.run(
                load(port, token, args.clients, args.requests, args.seconds)
            )
            server_cpu = sum(server.cpu_times()[:2]) - cpu0
            client_cpu = sum(me.cpu_times()[:2]) - me0
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
        verify, cached = jwt_verify_cost(data_dir, token)

    lat = sorted(latencies)
    n = len(lat)
    p50 = lat[n // 2]
    p99 = lat[min(n - 1, int(n * 0.99))]
    rps = n / elapsed
    print(
        f"GET /api/v1/config, {args.clients} concurrent clients, {n} requests in {elapsed:.2f} s "
        f"(errors: {errors})"
    )
    print(f"  throughput : {rps:8.0f} req/s")
    print(
        f"  latency    : p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
        f"mean {statistics.fmean(lat) * 1000:.1f} ms"
    )
    print(
        f"JWT verify, ES256 signature checked : {verify * 1e6:.0f} us "
        f"({verify * rps * 100:.1f}% of one core at this throughput, "
        f"{verify / p50 * 100:.2f}% of p50 latency)"
    )
    print(
        f"JWT verify, verified-token cache hit: {cached * 1e6:.1f} us "
        f"({verify / cached:.0f}x cheaper; what repeat requests with one token pay)"
    )
    per_req_cpu = server_cpu / (n + args.clients)
    print(
        f"server CPU per request: {per_req_cpu * 1e6:.0f} us "
        f"(= {1 / per_req_cpu:.0f} req/s per fully available core; the load generator "
        f"shares this machine's {os.cpu_count()} cores, load average now "
        f"{os.getloadavg()[0]:.1f})"
    )
    print(
        f"load-generator CPU per request: {client_cpu / (n + args.clients) * 1e6:.0f} us "
        f"(server/client CPU ratio {server_cpu / max(client_cpu, 1e-9):.2f})"
    )
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
