"""Cloud widget test fixtures: a CloudManager with fake services (see cloud_ui_fakes)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from cloud_ui_fakes import FakeAuth, FakeBackups, FakeSync

from nojoin.cloud.manager import CloudManager
from nojoin.config.cloud_repository import CloudConfigRepository, SyncStateStore
from nojoin.config.repository import LocalConfigRepository

if sys.version_info < (3, 12):
    # PySide6 6.12 on CPython 3.11 drops a reference to None on every call of a C++ method
    # returning void (processEvents, setText, ...), and the same for True/False: enough of them and the interpreter
    # aborts with "none_dealloc". From 3.12 on None is immortal; here we make it so.
    import ctypes

    for _immortal in (None, True, False):
        ctypes.c_ssize_t.from_address(id(_immortal)).value += 1 << 40


@pytest.fixture
def fake_auth() -> FakeAuth:
    return FakeAuth()


@pytest.fixture
def manager(qtbot: Any, fake_auth: FakeAuth, tmp_path: Any) -> Iterator[CloudManager]:
    repo = CloudConfigRepository(
        LocalConfigRepository(tmp_path / "config.json"), SyncStateStore(tmp_path / "sync.json")
    )
    m = CloudManager(auth=fake_auth, config_repository=repo)
    m.sync = FakeSync()  # type: ignore[assignment]
    m.backups = FakeBackups()  # type: ignore[assignment]
    yield m
    for gate in (fake_auth.gate, m.backups.gate):  # type: ignore[attr-defined]
        if gate is not None:
            gate.open()
    m.shutdown()
