"""Audio test fixtures: a private PulseAudio daemon and known espeak-ng speech (recorder), and
a generated two-speaker meeting (decoder).

The daemon (scripts/pulse-test-env.sh) has a null sink `nojoin_speaker` as the default speaker
(its monitor is the system-audio loopback) and `nojoin_mic`, a virtual source fed by the null
sink `nojoin_micfeed`, as the default microphone: `paplay -d nojoin_micfeed` "speaks into the
microphone", `paplay -d nojoin_speaker` plays "system audio".
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile as sf
from audio_support import MIC_TEXT, RATE, SYSTEM_TEXT, PulseEnv, Speech

from tests.processing.conftest import meeting2, synth_dir, video_file  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "pulse-test-env.sh"


def _missing(*tools: str) -> list[str]:
    return [t for t in tools if shutil.which(t) is None]


@pytest.fixture(scope="session")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulseEnv]:
    """A private PulseAudio daemon for the whole session; PULSE_SERVER points at it."""
    missing = _missing("pulseaudio", "pactl", "paplay")
    if missing:
        msg = f"missing {', '.join(missing)}: run scripts/install-system-deps.sh"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    base = tmp_path_factory.mktemp("pulse")
    log = open(base / "pulseaudio.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        ["bash", str(SCRIPT), "run", str(base)], stdout=log, stderr=subprocess.STDOUT
    )
    server = f"unix:{base / 'runtime' / 'native'}"
    env = PulseEnv(server=server, dir=base)
    deadline = time.monotonic() + 15
    while True:
        ok = (
            subprocess.run(
                ["pactl", "info"],
                env={**os.environ, "PULSE_SERVER": server},
                capture_output=True,
                timeout=5,
            ).returncode
            == 0
        )
        if ok:
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            pytest.fail(
                "PulseAudio test daemon did not start:\n"
                + (base / "pulseaudio.log").read_text(errors="replace")
            )
        time.sleep(0.1)
    mp = pytest.MonkeyPatch()
    # soundcard connects when first imported, through this (children inherit it).
    mp.setenv("PULSE_SERVER", server)
    try:
        yield env
    finally:
        mp.undo()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


def _speak(text: str, out: Path, voice: str) -> Speech:
    missing = _missing("espeak-ng", "sox")
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run scripts/install-system-deps.sh")
    raw = out.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", "140", "-w", str(raw), text], check=True)
    subprocess.run(
        ["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(out), "norm", "-3"],
        check=True,
    )
    raw.unlink()
    data, rate = sf.read(str(out), dtype="float32")
    assert rate == RATE
    return Speech(out, text, data)


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Speech]:
    d = tmp_path_factory.mktemp("speech")
    return {
        "mic": _speak(MIC_TEXT, d / "mic.wav", "en-us"),
        "system": _speak(SYSTEM_TEXT, d / "system.wav", "en-gb+m3"),
    }


@pytest.fixture(scope="session")
def chirp(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """(path, Hz per second) of a 6 s linear sweep 200 -> 2000 Hz: the frequency tells the time."""
    out = tmp_path_factory.mktemp("chirp") / "chirp.wav"
    subprocess.run(
        [
            "sox",
            "-n",
            "-r",
            str(RATE),
            "-c",
            "1",
            "-b",
            "16",
            str(out),
            "synth",
            "6",
            "sine",
            "200:2000",
            "vol",
            "0.5",
        ],
        check=True,
    )
    return out, 300.0
