"""Session storage for the supabase client that keeps tokens in the OS keyring, never on disk.

Some keyrings limit the size of one secret (Windows Credential Manager: ~2.5 KB) and a
session (two tokens + the user record) can be larger, so long values are split into parts.
If no keyring works, the session lives in memory only: the user signs in again next start.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

SERVICE = "Nojoin Cloud"
PART_SIZE = 1200
_PARTS_PREFIX = "nojoin-parts:"


class KeyringSessionStorage:
    """supabase's `SyncSupportedStorage` interface over `keyring`, namespaced by server
    (`server_id`). Registered as a virtual subclass when the supabase client is built."""

    def __init__(self, server_id: str, service: str = SERVICE) -> None:
        self.service = service
        self.server_id = server_id
        self._memory: dict[str, str] = {}
        self._keyring_ok = True
        self._lock = threading.Lock()

    @property
    def persistent(self) -> bool:
        """False after the keyring failed: the session is then kept in memory only."""
        return self._keyring_ok

    def _name(self, key: str, part: int | None = None) -> str:
        name = f"{key}@{self.server_id}"
        return name if part is None else f"{name}#{part}"

    def get_item(self, key: str) -> str | None:
        keyring, (KeyringError, _) = _keyring()
        with self._lock:
            if not self._keyring_ok:
                return self._memory.get(key)
            try:
                head = keyring.get_password(self.service, self._name(key))
                if head is None or not head.startswith(_PARTS_PREFIX):
                    return head
                count = int(head[len(_PARTS_PREFIX) :])
                parts = [
                    keyring.get_password(self.service, self._name(key, i)) for i in range(count)
                ]
            except (KeyringError, ValueError, RuntimeError) as exc:
                self._fall_back(exc)
                return self._memory.get(key)
            if any(p is None for p in parts):
                log.warning("the stored session is incomplete; ignoring it")
                return None
            return "".join(p for p in parts if p is not None)

    def set_item(self, key: str, value: str) -> None:
        keyring, (KeyringError, _) = _keyring()
        with self._lock:
            if not self._keyring_ok:
                self._memory[key] = value
                return
            try:
                self._delete(key)
                if len(value) <= PART_SIZE:
                    keyring.set_password(self.service, self._name(key), value)
                    return
                parts = [value[i : i + PART_SIZE] for i in range(0, len(value), PART_SIZE)]
                for i, part in enumerate(parts):
                    keyring.set_password(self.service, self._name(key, i), part)
                # The head is written last: a crash mid-way leaves no half session behind it.
                keyring.set_password(self.service, self._name(key), f"{_PARTS_PREFIX}{len(parts)}")
            except (KeyringError, RuntimeError) as exc:
                self._fall_back(exc)
                self._memory[key] = value

    def remove_item(self, key: str) -> None:
        _, (KeyringError, _) = _keyring()
        with self._lock:
            self._memory.pop(key, None)
            if not self._keyring_ok:
                return
            try:
                self._delete(key)
            except (KeyringError, RuntimeError) as exc:
                log.warning("could not delete the session from the keyring: %s", exc)

    def _delete(self, key: str) -> None:
        keyring, (_, PasswordDeleteError) = _keyring()
        head = keyring.get_password(self.service, self._name(key))
        count = 0
        if head is not None and head.startswith(_PARTS_PREFIX):
            try:
                count = int(head[len(_PARTS_PREFIX) :])
            except ValueError:
                count = 0
        for name in [self._name(key), *(self._name(key, i) for i in range(count))]:
            try:
                keyring.delete_password(self.service, name)
            except PasswordDeleteError:
                pass

    def _fall_back(self, exc: Exception) -> None:
        if self._keyring_ok:
            log.warning(
                "the OS keyring is not available (%s); the Nojoin Cloud session is kept in "
                "memory only and you will need to sign in again next time",
                exc,
            )
        self._keyring_ok = False


def _keyring() -> tuple[Any, tuple[type[Exception], type[Exception]]]:
    """keyring, imported on first use (it is slow to import and start-up should be fast)."""
    import keyring
    from keyring.errors import KeyringError, PasswordDeleteError

    return keyring, (KeyringError, PasswordDeleteError)
