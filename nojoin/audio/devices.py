"""Find microphones and speakers (PulseAudio/WASAPI/CoreAudio via `soundcard`) by name.

`soundcard` connects to the sound server when it is imported, so it is imported lazily here and
its failures become `AudioError`s that say what to do.
"""

from __future__ import annotations

import logging
import sys
import threading
from dataclasses import dataclass
from typing import Any

from nojoin.errors import AudioError

log = logging.getLogger(__name__)

_import_lock = threading.Lock()
_soundcard: Any = None


def soundcard_module() -> Any:
    """The `soundcard` module, imported on first use (it needs a running sound server)."""
    global _soundcard
    with _import_lock:
        if _soundcard is not None:
            return _soundcard
        # soundcard names its PulseAudio client after sys.argv and fails on `python -c` (argv
        # ["-c"]) or an embedded interpreter (argv []): give it a name for the import.
        saved = sys.argv
        if not sys.argv or sys.argv[0] in ("", "-c"):
            sys.argv = ["nojoin"]
        try:
            import soundcard
        except ImportError as exc:
            raise AudioError(
                "Recording needs the 'soundcard' package. Install it with: pip install 'nojoin[audio]'"
            ) from exc
        except Exception as exc:  # AssertionError / RuntimeError while connecting
            detail = f" ({exc})" if str(exc) else ""
            raise AudioError(
                f"Cannot connect to the sound server{detail}. "
                "Check that PulseAudio or PipeWire is running (`pactl info` shows it)."
            ) from exc
        finally:
            sys.argv = saved
        _soundcard = soundcard
        return soundcard


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """One input or output as the user sees it."""

    id: str
    name: str
    kind: str  # "microphone" | "speaker"
    channels: int
    is_default: bool


def list_devices() -> list[DeviceInfo]:
    """Every microphone (loopback monitors excluded) and speaker, defaults first."""
    sc = soundcard_module()
    try:
        default_mic = _safe_id(sc.default_microphone)
        default_spk = _safe_id(sc.default_speaker)
        mics = [
            DeviceInfo(str(m.id), str(m.name), "microphone", _channels(m), str(m.id) == default_mic)
            for m in sc.all_microphones(include_loopback=False)
        ]
        spks = [
            DeviceInfo(str(s.id), str(s.name), "speaker", _channels(s), str(s.id) == default_spk)
            for s in sc.all_speakers()
        ]
    except AudioError:
        raise
    except Exception as exc:
        raise AudioError(f"Cannot list sound devices: {exc}") from exc
    mics.sort(key=lambda d: not d.is_default)
    spks.sort(key=lambda d: not d.is_default)
    return mics + spks


def find_microphone(name: str | None) -> Any:
    """The microphone whose id or name is `name` (exact, then case-insensitive substring).

    None means the system default. Loopback monitors are not microphones here; system audio
    is recorded through `find_loopback()`.
    """
    sc = soundcard_module()
    if name is None:
        try:
            mic = sc.default_microphone()
        except Exception as exc:
            raise AudioError(
                f"There is no default microphone ({exc}). "
                "Plug one in or choose one with --mic (see `nojoin devices`)."
            ) from exc
        return mic
    return _match(name, list(sc.all_microphones(include_loopback=False)), "microphone")


def find_speaker(name: str | None) -> Any:
    """The speaker (output) whose id or name is `name`; None means the system default."""
    sc = soundcard_module()
    if name is None:
        try:
            return sc.default_speaker()
        except Exception as exc:
            raise AudioError(
                f"There is no default speaker ({exc}). "
                "Choose the output to record with --speaker (see `nojoin devices`)."
            ) from exc
    return _match(name, list(sc.all_speakers()), "speaker")


def find_loopback(speaker: Any) -> Any:
    """The input that records what `speaker` plays (PulseAudio: the sink's monitor source)."""
    sc = soundcard_module()
    loopbacks = [m for m in sc.all_microphones(include_loopback=True) if _is_loopback(m)]
    monitor_id = f"{speaker.id}.monitor"  # PulseAudio/PipeWire naming
    for m in loopbacks:
        if str(m.id) == monitor_id:
            return m
    # WASAPI/CoreAudio name the loopback after the speaker.
    for m in loopbacks:
        if str(m.id) == str(speaker.id) or str(m.name) == str(speaker.name):
            return m
    for m in loopbacks:
        if str(speaker.name) in str(m.name):
            return m
    raise AudioError(
        f"Cannot record the system audio of '{speaker.name}': it has no loopback input. "
        "Choose another output with --speaker (see `nojoin devices`)."
    )


def input_present(device: Any) -> bool:
    """Is this input (microphone or loopback) still connected?"""
    sc = soundcard_module()
    wanted = str(device.id)
    try:
        return any(str(m.id) == wanted for m in sc.all_microphones(include_loopback=True))
    except Exception:  # the sound server itself went away
        log.debug("cannot list inputs", exc_info=True)
        return False


def _match(name: str, devices: list[Any], kind: str) -> Any:
    for d in devices:
        if name == str(d.id) or name == str(d.name):
            return d
    wanted = name.casefold()
    hits = [
        d for d in devices if wanted in str(d.name).casefold() or wanted in str(d.id).casefold()
    ]
    if len(hits) == 1:
        return hits[0]
    names = ", ".join(f"'{d.name}'" for d in devices) or "none"
    if hits:
        raise AudioError(
            f"'{name}' matches more than one {kind}: "
            + ", ".join(f"'{d.name}'" for d in hits)
            + ". Use more of the name."
        )
    raise AudioError(f"No {kind} called '{name}'. Available: {names}. See `nojoin devices`.")


def _is_loopback(mic: Any) -> bool:
    try:
        return bool(mic.isloopback)
    except Exception:  # the device vanished while we looked
        return False


def _channels(dev: Any) -> int:
    try:
        return int(dev.channels)
    except Exception:
        return 0


def _safe_id(getter: Any) -> str | None:
    try:
        return str(getter().id)
    except Exception:
        return None
