"""The keyring session adapter: long sessions split into parts, keyring failures fall back to
memory (never to a file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.errors import KeyringError

from nojoin.cloud.session_storage import PART_SIZE, KeyringSessionStorage


def test_long_values_are_split_and_reassembled(memory_keyring: Any) -> None:
    storage = KeyringSessionStorage("auth.example.com")
    value = "x" * (PART_SIZE * 3 + 17)
    storage.set_item("session", value)
    assert all(len(v) <= PART_SIZE for v in memory_keyring.store.values())
    assert len(memory_keyring.store) == 5  # head + 4 parts
    assert storage.get_item("session") == value
    storage.set_item("session", "short")  # replacing removes the old parts
    assert len(memory_keyring.store) == 1
    assert storage.get_item("session") == "short"
    storage.remove_item("session")
    assert memory_keyring.store == {}
    assert storage.get_item("session") is None


def test_servers_do_not_share_sessions(memory_keyring: Any) -> None:
    KeyringSessionStorage("prod.example.com").set_item("s", "prod")
    assert KeyringSessionStorage("dev.example.com").get_item("s") is None


class BrokenKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringError("no secret service on this desktop")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise KeyringError("no secret service on this desktop")

    def delete_password(self, service: str, username: str) -> None:
        raise KeyringError("no secret service on this desktop")


def test_without_a_keyring_the_session_stays_in_memory_only(
    nojoin_dirs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keyring.set_keyring(BrokenKeyring())
    storage = KeyringSessionStorage("auth.example.com")
    storage.set_item("session", "secret-token-value")
    assert storage.get_item("session") == "secret-token-value"
    assert not storage.persistent
    assert "memory only" in caplog.text
    assert "secret-token-value" not in caplog.text
    for path in nojoin_dirs.rglob("*"):
        assert not path.is_file() or b"secret-token-value" not in path.read_bytes()
