"""Helpers shared by the cloud tests (imported by conftest and the test modules)."""

from __future__ import annotations

import secrets
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from nojoin.cloud.api_client import ApiClient
from nojoin.cloud.auth_service import AuthService
from nojoin.cloud.config_sync import ConfigSync
from nojoin.cloud.session_storage import KeyringSessionStorage
from nojoin.cloud.settings import CloudSettings
from nojoin.config.cloud_repository import CloudConfigRepository, SyncStateStore
from nojoin.config.repository import LocalConfigRepository

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Backend:
    url: str
    anon_key: str
    data_dir: Path

    def settings(self, url: str | None = None) -> CloudSettings:
        base = url or self.url
        return CloudSettings(api_url=base, auth_url=base, anon_key=self.anon_key)


def new_email() -> str:
    return f"user-{secrets.token_hex(6)}@example.com"


class Relay:
    """A TCP relay in front of the backend that can be switched off: 'the network is down'."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._server: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self._server = server
        self._thread = threading.Thread(target=self._accept, args=(server,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            try:  # wakes the thread blocked in accept() (close alone does not, on Linux)
                self._server.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._server.close()
            self._server = None
        with self._lock:
            for c in self._conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self._conns.clear()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@dataclass
class Device:
    """One computer's client side: its own settings file, sync state and keyring entries."""

    name: str
    auth: AuthService
    api: ApiClient
    repo: CloudConfigRepository
    sync: ConfigSync
    config_dir: Path

    def close(self) -> None:
        self.api.close()
        self.auth.close()


def make_device(name: str, base: Path, settings: CloudSettings, *, retries: int = 2) -> Device:
    config_dir = base / name
    config_dir.mkdir(parents=True, exist_ok=True)
    auth = AuthService(settings, KeyringSessionStorage(settings.server_id, service=f"test-{name}"))
    api = ApiClient(settings.api_url, auth, retries=retries, backoff=0.05, timeout=10)
    repo = CloudConfigRepository(
        LocalConfigRepository(config_dir / "config.json"),
        SyncStateStore(config_dir / "cloud_sync.json"),
    )
    return Device(name, auth, api, repo, ConfigSync(repo, api), config_dir)
