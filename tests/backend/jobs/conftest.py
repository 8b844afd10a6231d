"""Fixtures for the jobs tests: a real Redis, short generated meetings, a jobs-enabled app
(short leases) served by uvicorn, worker and backend subprocesses on the same database and
storage, and the local reference result.

Core fixtures (pg_url, runtime, live_server, create_user) come from tests/backend/conftest.py;
`app` is overridden here so the app carries this module's JobSettings.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from job_checks import wait_until

from backend.jobs.settings import JobSettings
from backend.runtime import Runtime
from nojoin.models import Transcript
from nojoin.processing.contract import CancelToken, ProcessingOptions
from nojoin.testing.synth import SynthMeeting, make_meeting, tools_available

ROOT = Path(__file__).resolve().parents[3]

# About 10 s of two people talking: long enough to be a meeting, short enough for CI.
SHORT_SCRIPT: tuple[tuple[str, str], ...] = (
    ("alice", "Good morning everyone, let us review the budget for the next quarter."),
    ("bob", "Thanks Alice. The numbers look fine, but travel costs went up again."),
)
TINY_SCRIPT: tuple[tuple[str, str], ...] = (("bob", "Please send me the report today."),)


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> Callable[..., Any]:
    return wait_until


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throw-away redis-server on a free loopback port, without persistence."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed (scripts/install-system-deps.sh)")
    import redis

    workdir = tmp_path_factory.mktemp("redis")
    for _ in range(3):
        port = _free_port()
        proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
                "--protected-mode",
                "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(host="127.0.0.1", port=port)
        ready = False
        deadline = time.monotonic() + 30  # only bounds a hang: a busy CI machine is slow
        while not ready and time.monotonic() < deadline and proc.poll() is None:
            try:
                ready = bool(client.ping())
            except redis.ConnectionError:
                time.sleep(0.02)
        if ready:
            break
        client.close()
        proc.kill()  # lost the port to another process, or never answered
        proc.wait()
    else:
        raise RuntimeError("redis-server did not start")
    client.close()
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def synth_dir() -> Path:
    if not tools_available():
        pytest.skip("espeak-ng and sox are needed (scripts/install-system-deps.sh)")
    path = Path(os.environ.get("NOJOIN_TEST_AUDIO_DIR", ROOT / ".cache" / "test-audio"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def short_meeting(synth_dir: Path) -> SynthMeeting:
    return make_meeting(SHORT_SCRIPT, synth_dir)


@pytest.fixture(scope="session")
def minute_meeting(synth_dir: Path) -> SynthMeeting:
    """About a minute: long enough that a cancel sent on the first progress report reaches
    the worker well before the engine could finish, even on a slow, busy machine."""
    return make_meeting(SHORT_SCRIPT, synth_dir, min_duration=60.0)


@pytest.fixture(scope="session")
def tiny_meeting(synth_dir: Path) -> SynthMeeting:
    return make_meeting(TINY_SCRIPT, synth_dir)


@pytest.fixture(scope="session")
def local_results(short_meeting: SynthMeeting) -> dict[bool, Transcript]:
    """The local strategy's transcripts of `short_meeting`, without and with diarization."""
    from nojoin.processing.strategies.local_strategy import LocalProcessingStrategy

    out: dict[bool, Transcript] = {}
    with LocalProcessingStrategy() as local:
        for diarize in (False, True):
            out[diarize] = local.process(
                short_meeting.path,
                ProcessingOptions(model="tiny.en", diarize=diarize),
                lambda _: None,
                CancelToken(),
            )
    return out


@pytest.fixture(scope="module")
def job_settings_overrides() -> dict[str, Any]:
    """Override in a test module, e.g. {"job_dispatch": "embedded"}."""
    return {}


@pytest.fixture(scope="module")
def job_settings(job_settings_overrides: dict[str, Any]) -> JobSettings:
    values: dict[str, Any] = {
        "job_dispatch": "none",
        # Short, so the crash test's lease expires soon, yet several heartbeats long (a worker
        # renews about once a second): a busy CI machine must not lose a healthy job's lease.
        "job_lease_seconds": 5.0,
        "job_heartbeat_seconds": 0.5,
        "job_reaper_interval_seconds": 0.5,
        "job_backoff_base_seconds": 0.2,
        "job_backoff_max_seconds": 1.0,
        "job_poll_seconds": 0.2,
        "job_redispatch_seconds": 2.0,
        "job_max_upload_bytes": 5 * 1024 * 1024,
        "redis_url": None,
    }
    values.update(job_settings_overrides)
    return JobSettings(**values)


@pytest.fixture(scope="module")
def http(live_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server, timeout=60) as client:
        yield client


def worker_env(runtime: Runtime, job_settings: JobSettings, **extra: str) -> dict[str, str]:
    """Environment for a `nojoin-worker` (or `nojoin-backend`) subprocess sharing the test
    app's DB and storage."""
    env = dict(os.environ)
    env.update(
        {
            "NOJOIN_DATABASE_URL": str(runtime.settings.database_url),
            "NOJOIN_BACKEND_DATA_DIR": str(runtime.settings.data_dir),
            "NOJOIN_RUN_MIGRATIONS": "false",
            "NOJOIN_JOB_LEASE_SECONDS": str(job_settings.job_lease_seconds),
            "NOJOIN_JOB_HEARTBEAT_SECONDS": str(job_settings.job_heartbeat_seconds),
            "NOJOIN_JOB_REAPER_INTERVAL_SECONDS": str(job_settings.job_reaper_interval_seconds),
            "NOJOIN_JOB_BACKOFF_BASE_SECONDS": str(job_settings.job_backoff_base_seconds),
            "NOJOIN_JOB_BACKOFF_MAX_SECONDS": str(job_settings.job_backoff_max_seconds),
            "NOJOIN_JOB_POLL_SECONDS": str(job_settings.job_poll_seconds),
            "PYTHONPATH": str(ROOT),
        }
    )
    env.pop("NOJOIN_REDIS_URL", None)
    env.update(extra)
    return env


class ServiceProcess:
    """`python -m <module>` (a backend command) in a subprocess; its log goes to a file for
    post-mortems."""

    def __init__(self, module: str, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM (what a service manager sends) and wait; SIGKILL only after a hang."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class WorkerProcess(ServiceProcess):
    """A `nojoin-worker` subprocess."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        super().__init__("backend.jobs.worker_cli", args, env, log_path)


class BackendProcess(ServiceProcess):
    """A `nojoin-backend` subprocess on a free loopback port."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        super().__init__(
            "backend.main", ["--port", str(port), "--log-level", "info"], env, log_path
        )

    def wait_ready(self, timeout: float = 120.0) -> BackendProcess:
        """Until /health answers, i.e. the lifespan (and the jobs dispatcher) has started.
        The timeout only bounds a hang: a busy CI machine imports slowly."""

        def healthy() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"the backend exited ({self.proc.returncode}):\n{self.log()}")
            try:
                return httpx.get(f"{self.url}/health", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        try:
            wait_until(healthy, timeout, "the backend to serve /health", step=0.1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log()}") from None
        return self


@pytest.fixture
def start_worker(
    runtime: Runtime, job_settings: JobSettings, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(*args: str, **env: str) -> WorkerProcess:
        w = WorkerProcess(
            list(args),
            worker_env(runtime, job_settings, **env),
            tmp_path / f"worker{len(started)}.log",
        )
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


@pytest.fixture
def start_backend(
    runtime: Runtime, job_settings: JobSettings, tmp_path: Path
) -> Iterator[Callable[..., BackendProcess]]:
    """start_backend(**env) -> a ready `nojoin-backend` process on the test module's database
    and storage (its built-in auth accepts `create_user` tokens), with this module's job
    settings; dispatch as in `job_settings` unless NOJOIN_JOB_DISPATCH is given."""
    started: list[BackendProcess] = []

    def start(**env: str) -> BackendProcess:
        values = {
            "NOJOIN_BUILTIN_AUTH": "true",
            "NOJOIN_JOB_DISPATCH": job_settings.job_dispatch,
            "NOJOIN_JOB_REDISPATCH_SECONDS": str(job_settings.job_redispatch_seconds),
            **env,
        }
        b = BackendProcess(
            worker_env(runtime, job_settings, **values), tmp_path / f"backend{len(started)}.log"
        )
        started.append(b)
        return b.wait_ready()

    yield start
    for b in started:
        b.stop()
