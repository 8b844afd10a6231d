"""Fakes for the Cloud widgets' tests (no network): a CloudManager whose services never touch the network
and can be held mid-request (a gate), so tests can check the UI stays responsive meanwhile."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nojoin.cloud.api_client import RemoteConfig
from nojoin.cloud.auth_service import Account, AuthService
from nojoin.cloud.backup_service import BackupEntry, RestoreReport
from nojoin.cloud.config_sync import Difference, SyncOutcome, SyncResult
from nojoin.cloud.settings import CloudSettings
from nojoin.errors import CancelledError
from nojoin.processing.contract import CancelToken, Progress, ProgressCallback

ACCOUNT = Account("0b5c5c1e-0000-4000-8000-000000000001", "alice@example.com")


class Gate:
    """Blocks a worker until the test opens it; records which thread waited."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.entered = threading.Event()
        self.threads: list[threading.Thread] = []

    def wait(self) -> None:
        self.threads.append(threading.current_thread())
        self.entered.set()
        assert self.event.wait(10), "the test never opened the gate"

    def open(self) -> None:
        self.event.set()


class FakeAuth(AuthService):
    """AuthService with the network replaced by scripted answers."""

    def __init__(self) -> None:
        super().__init__(CloudSettings("http://127.0.0.1:9", "http://127.0.0.1:9", "anon"))
        self.gate: Gate | None = None
        self.error: Exception | None = None
        self.sign_up_result: Account | None = ACCOUNT
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def _call(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))
        if self.gate is not None:
            self.gate.wait()
        if self.error is not None:
            raise self.error

    def restore(self) -> Account | None:
        return None

    def sign_in(self, email: str, password: str) -> Account:
        self._call("sign_in", email, password)
        self._account = ACCOUNT
        return ACCOUNT

    def sign_up(self, email: str, password: str) -> Account | None:
        self._call("sign_up", email, password)
        self._account = self.sign_up_result
        return self.sign_up_result

    def reset_password(self, email: str) -> None:
        self._call("reset_password", email)

    def complete_password_reset(self, email: str, code: str, new_password: str) -> Account:
        self._call("complete_password_reset", email, code, new_password)
        self._account = ACCOUNT
        return ACCOUNT

    def sign_out(self) -> None:
        self._call("sign_out")
        self._account = None


@dataclass
class FakeSync:
    """Stands in for ConfigSync: answers from a script, records the user's choices."""

    first: SyncResult = field(default_factory=lambda: SyncResult(SyncOutcome.IN_SYNC))
    resolved: list[str | None] = field(default_factory=list)

    def on_sign_in(self, user_id: str) -> SyncResult:
        return self.first

    def sync(self, user_id: str) -> SyncResult:
        return SyncResult(SyncOutcome.IN_SYNC)

    def resolve(self, user_id: str, choice: str, remote: RemoteConfig) -> SyncResult:
        self.resolved.append(choice)
        return SyncResult(SyncOutcome.PUSHED if choice == "local" else SyncOutcome.PULLED)

    def postpone(self, user_id: str) -> SyncResult:
        self.resolved.append(None)
        return SyncResult(SyncOutcome.PAUSED)


def conflict() -> SyncResult:
    return SyncResult(
        SyncOutcome.NEEDS_CHOICE,
        (Difference("theme", "dark", "light"), Difference("model", "base", "small.en")),
        RemoteConfig({"theme": "light", "model": "small.en"}, 4),
        conflicts=("model",),
    )


def entry(n: int, *, audio: bool = False) -> BackupEntry:
    return BackupEntry(
        backup_id=f"id-{n}",
        name=f"nojoin-backup_laptop_2026010{n}T100000Z.tar.gz",
        size=1536 * 1024 * n,
        sha256="ab" * 32,
        created_at=datetime(2026, 1, n, 10, 0, tzinfo=UTC),
        device="laptop",
        includes_audio=audio,
    )


class FakeBackups:
    """Stands in for BackupService: progress from the worker thread, held by a gate."""

    def __init__(self) -> None:
        self.entries = [entry(2), entry(1, audio=True)]
        self.gate: Gate | None = None
        self.error: Exception | None = None
        self.restored: list[str] = []

    def list_backups(self) -> list[BackupEntry]:
        if self.error is not None:
            raise self.error
        return list(self.entries)

    def back_up(
        self, *, include_audio: bool, progress: ProgressCallback, cancel: CancelToken
    ) -> BackupEntry:
        for done in range(0, 101, 25):
            # As BackupService reports an upload (the fraction, and how much of how much).
            progress(Progress("upload", done / 100, None, f"{done} KB of 100 KB"))
            if done == 50 and self.gate is not None:
                self.gate.wait()
            if cancel.cancelled:
                raise CancelledError("The backup operation was cancelled; nothing was changed.")
        if self.error is not None:
            raise self.error
        new = entry(3, audio=include_audio)
        self.entries.insert(0, new)
        return new

    def restore(
        self, e: BackupEntry, *, progress: ProgressCallback, cancel: CancelToken
    ) -> RestoreReport:
        progress(Progress("download", 0.5, None, "1 bytes of 2 bytes"))
        if self.error is not None:
            raise self.error
        self.restored.append(e.backup_id)
        from pathlib import Path

        return RestoreReport(meetings=7, rollback_path=Path("/tmp/rollback.sqlite3"), audio_files=0)
