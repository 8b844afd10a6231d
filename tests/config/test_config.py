"""Settings model, the local JSON repository and the manager (no Qt)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nojoin.config import (
    ConfigError,
    ConfigManager,
    ConfigRepository,
    LocalConfigRepository,
    Settings,
    Theme,
)
from nojoin.config.cloud_repository import shared_settings


def test_defaults_when_no_file(nojoin_dirs: Path) -> None:
    repo = LocalConfigRepository()
    assert repo.path.parent == nojoin_dirs / "config"
    snap = repo.load()
    assert snap.settings == Settings()
    assert snap.updated_at is None
    assert isinstance(repo, ConfigRepository)


def test_round_trip_is_versioned_and_atomic(tmp_path: Path) -> None:
    folder = tmp_path / "cfg"
    repo = LocalConfigRepository(folder / "c.json")
    s = Settings().replace(
        model="base", language="de", theme="dark", min_speakers=2, max_speakers=3
    )
    saved = repo.save(s)
    assert saved.updated_at is not None
    data = json.loads((folder / "c.json").read_text())
    assert data["format"] == 1
    assert data["settings"]["model"] == "base"
    assert data["settings"]["theme"] == "dark"
    # No temp files left behind next to the config.
    assert [p.name for p in folder.iterdir()] == ["c.json"]
    loaded = repo.load()
    assert loaded.settings == s
    assert loaded.settings.theme is Theme.DARK
    assert loaded.updated_at == saved.updated_at


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"language": "english!"}, "language"),
        ({"device": "tpu"}, "device"),
        ({"diarization_engine": "magic"}, "diarization_engine"),
        ({"compute_threads": -1}, "compute_threads"),
        ({"max_speakers": 99}, "max_speakers"),
        ({"min_speakers": 4, "max_speakers": 2}, "min_speakers"),
        ({"theme": "purple"}, "theme"),
        ({"auto_process": "yes"}, "auto_process"),
        ({"model": "  "}, "model"),
        ({"min_meeting_seconds": 2.5}, "min_meeting_seconds"),
        ({"processing_mode": "gpu-farm"}, "processing_mode"),
        ({"processing_mode": 1}, "processing_mode"),
    ],
)
def test_bad_values_are_rejected_with_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings().replace(**change)
    assert err.value.field == field
    assert str(err.value)  # a message a user can read


def test_hand_edited_bad_values_fall_back_to_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(
        json.dumps(
            {
                "format": 1,
                "settings": {"model": "small", "device": "tpu", "future_key": 1, "theme": "DARK"},
            }
        )
    )
    s = LocalConfigRepository(path).load().settings
    assert s.model == "small"
    assert s.device == "auto"  # bad value -> default
    assert s.theme is Theme.DARK


def test_damaged_file_is_kept_aside_and_defaults_used(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text("{not json")
    assert LocalConfigRepository(path).load().settings == Settings()
    aside = list(tmp_path.glob("c.json.damaged-*"))
    assert len(aside) == 1 and aside[0].read_text() == "{not json"


def test_unwritable_target_gives_clear_error_and_keeps_old_file(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    repo = LocalConfigRepository(path)
    repo.save(Settings().replace(model="base"))
    # A directory where the temp file would be renamed to: the replace fails (even as root).
    blocked = LocalConfigRepository(tmp_path / "blocked")
    (tmp_path / "blocked").mkdir()
    (tmp_path / "blocked" / "x").write_text("keep")
    with pytest.raises(ConfigError, match="previous settings are unchanged"):
        blocked.save(Settings().replace(model="small"))
    assert not list(tmp_path.glob(".blocked.*"))  # temp file cleaned up
    assert repo.load().settings.model == "base"


def test_manager_validates_saves_and_notifies(tmp_path: Path) -> None:
    repo = LocalConfigRepository(tmp_path / "c.json")
    mgr = ConfigManager(repo)
    seen: list[tuple[str, str]] = []
    mgr.add_listener(lambda old, new: seen.append((old.theme.value, new.theme.value)))
    mgr.update(theme="dark")
    assert seen == [("system", "dark")]
    mgr.update(theme="dark")  # no change -> no event
    assert len(seen) == 1
    with pytest.raises(ConfigError):
        mgr.update(language="???")
    assert mgr.settings.theme is Theme.DARK
    assert ConfigManager(LocalConfigRepository(tmp_path / "c.json")).settings.theme is Theme.DARK


def test_a_failing_listener_does_not_stop_others(tmp_path: Path) -> None:
    mgr = ConfigManager(LocalConfigRepository(tmp_path / "c.json"))
    got: list[str] = []

    def broken(old: Settings, new: Settings) -> None:
        raise RuntimeError("boom")

    mgr.add_listener(broken)
    mgr.add_listener(lambda old, new: got.append(new.model))
    mgr.update(model="base")
    assert got == ["base"]


def test_secrets_never_in_file(tmp_path: Path) -> None:
    repo = LocalConfigRepository(tmp_path / "c.json")
    repo.save(Settings())
    text = (tmp_path / "c.json").read_text().lower()
    for word in ("token", "password", "secret", "key"):
        assert word not in text


def test_processing_mode_round_trip_and_fallback(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    assert Settings().processing_mode == "local"  # this computer unless the user chose Cloud
    repo = LocalConfigRepository(path)
    repo.save(Settings().replace(processing_mode="Remote"))
    assert json.loads(path.read_text())["settings"]["processing_mode"] == "remote"
    assert ConfigManager(LocalConfigRepository(path)).settings.processing_mode == "remote"
    with pytest.raises(ConfigError, match="this computer"):
        Settings().replace(processing_mode="elsewhere")
    # A hand-edited value Nojoin cannot use processes locally rather than failing.
    path.write_text(json.dumps({"format": 1, "settings": {"processing_mode": "mars"}}))
    assert LocalConfigRepository(path).load().settings.processing_mode == "local"


def test_processing_mode_stays_on_this_computer() -> None:
    # Per machine (GPU or not), and a choice on one computer must not upload from another.
    shared = shared_settings(Settings().replace(processing_mode="remote", model="base"))
    assert "processing_mode" not in shared and shared["model"] == "base"
