"""Cloud-client fixtures: the real backend (`nojoin-backend`, embedded Postgres, built-in auth)
started once per session as a subprocess, a switchable TCP relay to simulate going offline,
and client "devices" with their own settings files and keyring entries."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from cloud_support import Backend, Device, Relay, free_port, make_device

from tests.backend.billing.conftest import WEBHOOK_SECRET

ROOT = Path(__file__).resolve().parents[2]


def stop_embedded_postgres(pgdata: Path) -> None:
    """nojoin-backend leaves its embedded PostgreSQL running when it gets SIGTERM; stop the
    server we started (its PID is in postmaster.pid) so no test leaves a daemon behind."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    try:
        os.kill(pid, signal.SIGINT)  # "fast" shutdown
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


@pytest.fixture(scope="session")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """`nojoin-backend` on a free loopback port with its own data dir; stopped at the end."""
    data = tmp_path_factory.mktemp("cloud-backend")
    port = free_port()
    env = {
        **os.environ,
        # Every test signs up and resets passwords from 127.0.0.1: no auth rate limits.
        "NOJOIN_SIGNIN_MAX_ATTEMPTS": "1000",
        "NOJOIN_SIGNUP_MAX_PER_IP": "1000",
        "NOJOIN_RECOVER_MAX_PER_EMAIL": "1000",
        "NOJOIN_RECOVER_MAX_PER_IP": "1000",
        "NOJOIN_MAILER": "file",  # password-reset mails as files the tests can read
        "NOJOIN_DATA_DIR": str(data / "home"),
        # Billing as the Account dialog meets it: the tier gate on (offline provider, no
        # Stripe keys), and webhooks signed with the billing tests' secret.
        "NOJOIN_REQUIRE_SUBSCRIPTION": "true",
        "NOJOIN_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    env.pop("NOJOIN_DATABASE_URL", None)
    log = (data / "backend.log").open("wb")
    exe = shutil.which("nojoin-backend", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "backend.main"]
    proc = subprocess.Popen(
        [
            *cmd,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data / "srv"),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        anon_key = ""
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"nojoin-backend exited: {(data / 'backend.log').read_text()[-3000:]}"
                )
            try:
                r = httpx.get(f"{url}/health", timeout=2)
                if r.status_code == 200:
                    anon_key = r.json()["anon_key"]
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError("nojoin-backend did not become healthy within 90 s")
        yield Backend(url, anon_key, data / "srv")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
        stop_embedded_postgres(data / "srv" / "pgdata")


@pytest.fixture
def cloud_env(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Backend:
    """Point the app's packaged settings at the test backend (as a developer would)."""
    monkeypatch.setenv("NOJOIN_CLOUD_URL", backend.url)
    monkeypatch.setenv("NOJOIN_CLOUD_ANON_KEY", backend.anon_key)
    return backend


@pytest.fixture
def relay(backend: Backend) -> Iterator[Relay]:
    r = Relay(int(backend.url.rsplit(":", 1)[1]))
    r.start()
    yield r
    r.stop()


@pytest.fixture
def device(tmp_path: Path, backend: Backend) -> Iterator[Callable[..., Device]]:
    """device(name, url=None) builds a client "computer"; all are closed at the end."""
    made: list[Device] = []

    def make(name: str, url: str | None = None, retries: int = 2) -> Device:
        d = make_device(name, tmp_path / "devices", backend.settings(url), retries=retries)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()
