"""Cloud Mode settings store: the local file first, then the cloud, with a persisted outbox.

`CloudConfigRepository` implements the same `ConfigRepository` interface as the local store
and wraps it: `save` writes the local file (fast, never blocks on the network), then records
in the sync state that the cloud copy is behind and calls `on_change` so the cloud layer
pushes it from a worker thread. The sync state (`cloud_sync.json` beside the settings) holds
what was last synced (for three-way merges) and survives restarts, so changes made offline
are pushed when the network returns. No network code here: see `nojoin.cloud.config_sync`.

Only settings that follow the user are synced: device choices, the data folder and hardware
tuning stay on this computer, and anything that looks like a secret is never sent.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nojoin import paths
from nojoin.config.repository import ConfigRepository, ConfigSnapshot, LocalConfigRepository
from nojoin.config.settings import ConfigError, Settings
from nojoin.fsutil import atomic_write_text

log = logging.getLogger(__name__)

SYNC_STATE_FILE = "cloud_sync.json"
LOCAL_ONLY_FIELDS = frozenset(
    {"mic_device", "speaker_device", "data_folder", "device", "compute_threads", "processing_mode"}
)
"""Settings that describe this computer, not the user: never synced.

`processing_mode` is one of them: whether to process here or on Nojoin Cloud depends on the
machine (a desktop with a GPU keeps it local, a thin laptop sends it to the cloud), and a
choice made on one computer must never start uploading meeting audio from another."""
_SECRET_NAME = re.compile(r"(token|secret|password|passwd|api_?key|private|credential)", re.I)


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def shared_settings(settings: Settings | dict[str, Any]) -> dict[str, Any]:
    """The part of `settings` that is synced: no local-only fields, nothing secret-looking."""
    data = settings.to_dict() if isinstance(settings, Settings) else dict(settings)
    return {
        k: v
        for k, v in data.items()
        if k not in LOCAL_ONLY_FIELDS and not is_secret_name(k) and not k.startswith("_")
    }


def with_shared(local: Settings, shared: dict[str, Any]) -> Settings:
    """`local` with the synced fields taken from `shared` (local-only fields kept).

    Values this version cannot use fall back to the local value instead of failing."""
    merged = local.to_dict()
    for key, value in shared_settings(shared).items():
        if key not in merged:
            continue  # a newer Nojoin's setting: kept in the cloud, unknown here
        try:
            Settings.from_dict({**merged, key: value}, strict=True)
        except ConfigError as exc:
            log.warning("ignoring cloud setting %s=%r: %s", key, value, exc)
            continue
        merged[key] = value
    return Settings.from_dict(merged)


@dataclass
class SyncState:
    """What the cloud copy looked like at the last successful sync, and what is pending."""

    user_id: str | None = None
    base_version: int | None = None  # cloud version last synced; None: never synced
    base: dict[str, Any] | None = None  # shared settings at that version (three-way merges)
    cloud_extra: dict[str, Any] = field(default_factory=dict)  # cloud keys unknown here
    pending: bool = False  # local changes the cloud has not got yet
    seq: int = 0  # bumped on every local change (a push only clears what it sent)
    last_sync: str | None = None  # ISO time of the last successful sync
    paused: bool = False  # the user cancelled the sign-in choice: sync nothing until resolved

    def last_sync_time(self) -> datetime | None:
        if not self.last_sync:
            return None
        try:
            return datetime.fromisoformat(self.last_sync)
        except ValueError:
            return None


class SyncStateStore:
    """`SyncState` in a small JSON file, written atomically. No secrets in it."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else paths.config_dir() / SYNC_STATE_FILE

    def load(self) -> SyncState:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return SyncState()
        except (OSError, ValueError) as exc:
            log.warning("cloud sync state %s unreadable (%s); starting afresh", self.path, exc)
            return SyncState()
        if not isinstance(data, dict):
            return SyncState()
        known = {k: v for k, v in data.items() if k in SyncState.__dataclass_fields__}
        try:
            return SyncState(**known)
        except TypeError:
            return SyncState()

    def save(self, state: SyncState) -> None:
        text = json.dumps(asdict(state), indent=2, sort_keys=True) + "\n"
        atomic_write_text(self.path, text)


class CloudConfigRepository:
    """`ConfigRepository` for Cloud Mode: local file first, then (asynchronously) the cloud.

    While `active` is False (Local Mode, signed out) it behaves exactly like the local store.
    `on_change` is called after a local save that the cloud has to receive; it must not
    block (the cloud layer schedules the push on a worker thread).
    """

    def __init__(
        self,
        local: ConfigRepository | None = None,
        state: SyncStateStore | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.local: ConfigRepository = local or LocalConfigRepository()
        self.state_store = state or SyncStateStore()
        self.on_change = on_change
        self.active = False
        self.lock = threading.RLock()

    # ConfigRepository
    def load(self) -> ConfigSnapshot:
        return self.local.load()

    def save(self, settings: Settings) -> ConfigSnapshot:
        with self.lock:
            before = shared_settings(self.local.load().settings)
            snapshot = self.local.save(settings)
            changed = shared_settings(snapshot.settings) != before
            if self.active and changed:
                state = self.state_store.load()
                state.pending = True
                state.seq += 1
                self.state_store.save(state)
        if self.active and changed and self.on_change is not None:
            self.on_change()
        return snapshot

    # used by the sync engine
    def state(self) -> SyncState:
        with self.lock:
            return self.state_store.load()

    def write_state(self, state: SyncState) -> None:
        with self.lock:
            self.state_store.save(state)

    def adopt(self, settings: Settings) -> ConfigSnapshot:
        """Write settings that came from the cloud locally, without queueing a push."""
        with self.lock:
            return self.local.save(settings)

    def mark_synced(
        self,
        *,
        user_id: str,
        version: int,
        shared: dict[str, Any],
        cloud_extra: dict[str, Any],
        sent_seq: int | None = None,
    ) -> SyncState:
        """Record a successful sync. Changes made after `sent_seq` stay pending."""
        with self.lock:
            state = self.state_store.load()
            still_pending = sent_seq is not None and state.seq != sent_seq
            state.user_id = user_id
            state.base_version = version
            state.base = shared_settings(shared)
            state.cloud_extra = cloud_extra
            state.pending = still_pending
            state.paused = False
            state.last_sync = datetime.now(UTC).replace(microsecond=0).isoformat()
            self.state_store.save(state)
            return state

    def reset_state(self, user_id: str | None = None, *, paused: bool = False) -> SyncState:
        with self.lock:
            state = SyncState(user_id=user_id, paused=paused)
            self.state_store.save(state)
            return state
