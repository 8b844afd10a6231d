"""Settings sync between this computer and the user's cloud profile (`/api/v1/config`).

- Sign-in (`on_sign_in`): if the cloud copy differs from this computer's, the user chooses
  (`resolve("local" | "cloud")`); the engine never picks silently.
- Later (`sync`): local changes are pushed with the version they are based on; a 409 (changed
  on another device) is resolved by a three-way merge against the last synced copy when the
  two sides changed different settings, and handed to the user when they changed the same one.
- Offline: the change stays pending in the persisted state and `sync` pushes it later.

Qt-free and blocking: the cloud manager runs it on a worker thread.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from nojoin.cloud.api_client import ApiClient, RemoteConfig
from nojoin.cloud.errors import ConflictError, OfflineError
from nojoin.config.cloud_repository import (
    CloudConfigRepository,
    is_secret_name,
    shared_settings,
    with_shared,
)
from nojoin.config.settings import Settings

log = logging.getLogger(__name__)

MAX_MERGE_ROUNDS = 3


class SyncOutcome(enum.StrEnum):
    IN_SYNC = "in_sync"  # nothing to do
    PUSHED = "pushed"  # the cloud got this computer's settings
    PULLED = "pulled"  # this computer got the cloud's settings
    MERGED = "merged"  # both changed different settings: combined both ways
    NEEDS_CHOICE = "needs_choice"  # they differ and the user must choose
    OFFLINE = "offline"  # could not reach the cloud; changes kept for later
    PAUSED = "paused"  # the user postponed the choice


@dataclass(frozen=True, slots=True)
class Difference:
    """One setting that differs: its name, this computer's value and the cloud's."""

    name: str
    local: Any
    cloud: Any


@dataclass(frozen=True, slots=True)
class SyncResult:
    outcome: SyncOutcome
    differences: tuple[Difference, ...] = ()
    remote: RemoteConfig | None = None
    local_changed: bool = False  # the local file changed: reload the ConfigManager
    message: str = ""
    conflicts: tuple[str, ...] = field(default=())


Choice = Literal["local", "cloud"]


def differences(local: Settings, cloud: dict[str, Any]) -> tuple[Difference, ...]:
    """Synced settings whose values differ. Cloud keys this version does not know are ignored,
    and so are settings the cloud copy does not have (written by an older Nojoin): this
    computer's value simply stays and is added to the cloud copy with the next push."""
    mine = shared_settings(local)
    theirs = shared_settings(with_shared(local, cloud)) if cloud else {}
    out = []
    for name in sorted(mine):
        if name in cloud and mine[name] != theirs.get(name):
            out.append(Difference(name, mine[name], cloud.get(name)))
    return tuple(out)


class ConfigSync:
    """Moves settings between `repo` (local file + sync state) and the cloud via `api`."""

    def __init__(self, repo: CloudConfigRepository, api: ApiClient) -> None:
        self.repo = repo
        self.api = api

    # ------------------------------------------------------------------ sign-in

    def on_sign_in(self, user_id: str) -> SyncResult:
        """After the user signed in: push if the cloud is empty, note agreement, or ask."""
        remote = self.api.get_config()
        local = self.repo.local.load().settings
        if remote.version == 0:
            return self._push_over(user_id, local, 0)
        diffs = differences(local, remote.config)
        if not diffs:
            self._synced(user_id, remote, local)
            return SyncResult(SyncOutcome.IN_SYNC, remote=remote)
        state = self.repo.state()
        if state.user_id != user_id or state.base_version is None:
            self.repo.reset_state(user_id, paused=True)
        return SyncResult(SyncOutcome.NEEDS_CHOICE, diffs, remote)

    def resolve(self, user_id: str, choice: Choice, remote: RemoteConfig) -> SyncResult:
        """Apply the user's choice. A 409 meanwhile re-reads the cloud and asks again."""
        local = self.repo.local.load().settings
        if choice == "local":
            try:
                return self._push_over(user_id, local, remote.version, remote)
            except ConflictError:
                fresh = self.api.get_config()
                return SyncResult(
                    SyncOutcome.NEEDS_CHOICE,
                    differences(local, fresh.config),
                    fresh,
                    message="The cloud settings changed again on another device meanwhile. "
                    "Choose again.",
                )
        adopted = with_shared(local, remote.config)
        self.repo.adopt(adopted)
        self._synced(user_id, remote, adopted)
        return SyncResult(SyncOutcome.PULLED, remote=remote, local_changed=adopted != local)

    def postpone(self, user_id: str) -> SyncResult:
        """The user cancelled the choice: keep both copies as they are, sync nothing."""
        self.repo.reset_state(user_id, paused=True)
        return SyncResult(SyncOutcome.PAUSED)

    # ------------------------------------------------------------------ ongoing

    def sync(self, user_id: str) -> SyncResult:
        """Push pending local changes and pull changes made on other devices."""
        state = self.repo.state()
        if state.user_id != user_id or state.base_version is None or state.paused:
            # Never synced with this account on this computer (or the choice was postponed).
            return self.on_sign_in(user_id)
        try:
            for _ in range(MAX_MERGE_ROUNDS):
                result = self._sync_once(user_id)
                if result is not None:
                    return result
        except OfflineError as exc:
            return SyncResult(SyncOutcome.OFFLINE, message=str(exc))
        remote = self.api.get_config()
        return SyncResult(
            SyncOutcome.NEEDS_CHOICE,
            differences(self.repo.local.load().settings, remote.config),
            remote,
            message="The settings keep changing on another device. Choose which to keep.",
        )

    def _sync_once(self, user_id: str) -> SyncResult | None:
        state = self.repo.state()
        local = self.repo.local.load().settings
        base_version = state.base_version or 0
        if state.pending:
            payload = {**state.cloud_extra, **shared_settings(local)}
            try:
                stored = self.api.put_config(payload, base_version)
            except ConflictError:
                return self._merge(user_id)
            self.repo.mark_synced(
                user_id=user_id,
                version=stored.version,
                shared=shared_settings(local),
                cloud_extra=_extra(stored.config),
                sent_seq=state.seq,
            )
            return SyncResult(SyncOutcome.PUSHED, remote=stored)
        remote = self.api.get_config()
        if remote.version == base_version:
            # A change saved while we asked stays pending (seq moved on).
            self._synced(user_id, remote, local, seq=state.seq)
            return SyncResult(SyncOutcome.IN_SYNC, remote=remote)
        if remote.version == 0:  # the cloud copy was deleted: put ours back
            return self._push_over(user_id, local, 0)
        adopted = with_shared(local, remote.config)
        with self.repo.lock:
            if self.repo.state().pending:
                return None  # the user changed something meanwhile: go round again
            self.repo.adopt(adopted)
            self._synced(user_id, remote, adopted)
        return SyncResult(SyncOutcome.PULLED, remote=remote, local_changed=adopted != local)

    def _merge(self, user_id: str) -> SyncResult | None:
        """Three-way merge of base (last synced), ours (local) and theirs (cloud)."""
        state = self.repo.state()
        remote = self.api.get_config()
        local = self.repo.local.load().settings
        base = state.base or {}
        ours = shared_settings(local)
        theirs = shared_settings(with_shared(local, remote.config))
        merged: dict[str, Any] = dict(ours)
        conflicts: list[str] = []
        for name in ours:
            mine_changed = ours[name] != base.get(name)
            theirs_changed = theirs.get(name) != base.get(name)
            if theirs_changed and not mine_changed:
                merged[name] = theirs[name]
            elif theirs_changed and mine_changed and ours[name] != theirs.get(name):
                conflicts.append(name)
        if conflicts:
            return SyncResult(
                SyncOutcome.NEEDS_CHOICE,
                differences(local, remote.config),
                remote,
                message="The same settings were changed here and on another device.",
                conflicts=tuple(conflicts),
            )
        result_settings = with_shared(local, merged)
        payload = {**_extra(remote.config), **shared_settings(result_settings)}
        try:
            stored = self.api.put_config(payload, remote.version)
        except ConflictError:
            return None  # changed yet again: another round
        with self.repo.lock:
            if result_settings != local:
                self.repo.adopt(result_settings)
            self.repo.mark_synced(
                user_id=user_id,
                version=stored.version,
                shared=shared_settings(result_settings),
                cloud_extra=_extra(stored.config),
                sent_seq=state.seq,
            )
        return SyncResult(SyncOutcome.MERGED, remote=stored, local_changed=result_settings != local)

    # ------------------------------------------------------------------ helpers

    def _push_over(
        self, user_id: str, local: Settings, version: int, remote: RemoteConfig | None = None
    ) -> SyncResult:
        seq = self.repo.state().seq
        extra = _extra(remote.config) if remote else {}
        stored = self.api.put_config({**extra, **shared_settings(local)}, version)
        self.repo.mark_synced(
            user_id=user_id,
            version=stored.version,
            shared=shared_settings(local),
            cloud_extra=_extra(stored.config),
            sent_seq=seq,
        )
        return SyncResult(SyncOutcome.PUSHED, remote=stored)

    def _synced(
        self, user_id: str, remote: RemoteConfig, local: Settings, *, seq: int | None = None
    ) -> None:
        self.repo.mark_synced(
            user_id=user_id,
            version=remote.version,
            shared=shared_settings(local),
            cloud_extra=_extra(remote.config),
            sent_seq=seq,
        )


def _extra(config: dict[str, Any]) -> dict[str, Any]:
    """Cloud keys this version of Nojoin does not know (kept so a push never drops them)."""
    known = set(Settings.__dataclass_fields__)
    return {
        k: v
        for k, v in config.items()
        if k not in known and not k.startswith("_") and not is_secret_name(k)
    }
