"""Cloud widget test fixtures: a CloudManager with fake services (see cloud_ui_support)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cloud_ui_support import FakeAuth, FakeBackups, FakeSync

from nojoin.cloud.manager import CloudManager
from nojoin.config.cloud_repository import CloudConfigRepository, SyncStateStore
from nojoin.config.repository import LocalConfigRepository


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
