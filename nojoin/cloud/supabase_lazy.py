"""The supabase client, imported on first use: it costs ~0.4 s, which the app's start-up
(window visible fast) should not pay before Cloud Mode is actually used."""

from __future__ import annotations

import functools
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from supabase_auth import SyncSupportedStorage
    from supabase_auth.types import Session

STORAGE_KEY = "supabase.auth.token"
"""supabase_auth.constants.STORAGE_KEY (checked in tests): where the session is stored."""


@functools.cache
def supabase() -> ModuleType:
    import supabase as module

    return module


@functools.cache
def errors() -> ModuleType:
    import supabase_auth.errors as module

    return module


def session_type() -> type[Session]:
    from supabase_auth.types import Session

    return Session


def as_storage(storage: Any) -> SyncSupportedStorage:
    """`storage` as the supabase client's storage type (registered as a virtual subclass, so
    our keyring adapter does not import supabase when the app starts)."""
    from supabase_auth import SyncSupportedStorage

    if not isinstance(storage, SyncSupportedStorage):
        SyncSupportedStorage.register(type(storage))
    return storage
