"""`nojoin-backend` on a fresh data dir: embedded PostgreSQL + built-in auth, /health served,
clean shutdown on Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# SIGTERM is what service managers and `kill` send: it must stop the embedded PostgreSQL too.
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_fresh_start_serves_health_and_stops_cleanly(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    # No configuration at all: only the desktop data dir (set for every test) is known, and
    # the backend keeps its state in <NOJOIN_DATA_DIR>/backend.
    data_dir = tmp_path / "desktop" / "backend"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOJOIN_")}
    env["NOJOIN_DATA_DIR"] = str(tmp_path / "desktop")
    err_path = tmp_path / "stderr.txt"
    err_file = err_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.main", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=err_file,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        anon_key = None
        # Only bounds a hang: a first start runs initdb, which a slow, busy CI machine may
        # take a while over.
        deadline = time.monotonic() + 120
        assert proc.stdout is not None
        while anon_key is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("NOJOIN_ANON_KEY="):
                anon_key = line.strip().split("=", 1)[1]
        assert anon_key, f"no anon key printed; stderr: {err_path.read_text()[-3000:]}"

        health = None
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert health is not None and health.status_code == 200, err_path.read_text()[-3000:]
        body = health.json()
        assert body["mode"] == "embedded" and body["database"] == "ok"
        assert body["auth"] == "builtin" and body["anon_key"] == anon_key
        assert (data_dir / "pgdata" / "PG_VERSION").exists()
        key_file = data_dir / "auth" / "jwt_es256.pem"
        assert key_file.stat().st_mode & 0o777 == 0o600
    finally:
        proc.send_signal(stop_signal)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    err_file.close()
    assert proc.returncode == 0, err_path.read_text()[-3000:]
    # The embedded server was stopped with the API.
    assert not (data_dir / "pgdata" / "postmaster.pid").exists(), err_path.read_text()[-3000:]


def test_bad_database_url_fails_with_a_clear_message(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOJOIN_")}
    env["NOJOIN_DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"
    env["NOJOIN_BUILTIN_AUTH"] = "true"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "backend.main",
            "--port",
            str(_free_port()),
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 1
    assert "could not start" in proc.stderr
