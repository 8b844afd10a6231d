"""Transcript exporters (TXT, SRT, VTT, JSON), shared by the CLI and the GUI."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

from nojoin.errors import NojoinError
from nojoin.fsutil import atomic_write_text
from nojoin.models import Segment, Transcript

FORMATS: tuple[str, ...] = ("txt", "srt", "vtt", "json")
EXTENSIONS: dict[str, str] = {f: f".{f}" for f in FORMATS}
PARAGRAPH_GAP = 30.0  # seconds of silence that start a new paragraph in TXT


class ExportError(NojoinError):
    """An unknown format or an unwritable output."""


def _clock(seconds: float, sep: str) -> str:
    ms_total = max(0, round(seconds * 1000))
    h, rem = divmod(ms_total, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _short_clock(seconds: float) -> str:
    total = max(0, int(seconds))
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _name(seg: Segment, names: Mapping[str, str]) -> str | None:
    if seg.speaker is None:
        return None
    return names.get(seg.speaker, seg.speaker)


def _cues(transcript: Transcript) -> list[tuple[float, float, Segment]]:
    """Segments with non-empty text, times made monotonic and each cue at least 10 ms long."""
    cues: list[tuple[float, float, Segment]] = []
    last_end = 0.0
    for seg in sorted(transcript.segments, key=lambda s: (s.start, s.end)):
        if not seg.text.strip():
            continue
        start = max(seg.start, last_end)
        end = max(seg.end, start + 0.01)
        cues.append((start, end, seg))
        last_end = end
    return cues


def to_txt(transcript: Transcript, names: Mapping[str, str], title: str | None = None) -> str:
    """Readable transcript: consecutive segments by one speaker form one paragraph."""
    lines: list[str] = []
    if title:
        lines += [title, ""]
    prev: str | None = None
    prev_end = -PARAGRAPH_GAP
    para: list[str] = []
    for start, end, seg in _cues(transcript):
        who = _name(seg, names)
        if not para or who != prev or start - prev_end > PARAGRAPH_GAP:
            if para:
                lines.append(" ".join(para))
                lines.append("")
            header = f"[{_short_clock(start)}]"
            lines.append(f"{header} {who}:" if who else header)
            para = []
            prev = who
        para.append(seg.text.strip())
        prev_end = end
    if para:
        lines.append(" ".join(para))
    return "\n".join(lines).rstrip() + "\n"


def to_srt(transcript: Transcript, names: Mapping[str, str], title: str | None = None) -> str:
    blocks = []
    for i, (start, end, seg) in enumerate(_cues(transcript), 1):
        who = _name(seg, names)
        text = f"{who}: {seg.text.strip()}" if who else seg.text.strip()
        blocks.append(f"{i}\n{_clock(start, ',')} --> {_clock(end, ',')}\n{text}\n")
    return "\n".join(blocks)


def to_vtt(transcript: Transcript, names: Mapping[str, str], title: str | None = None) -> str:
    out = ["WEBVTT", ""]
    for start, end, seg in _cues(transcript):
        who = _name(seg, names)
        # WebVTT voice spans carry the speaker; "-->" must never appear in cue text.
        text = seg.text.strip().replace("-->", "->")
        if who:
            text = f"<v {who.replace('>', '')}>{text}"
        out += [f"{_clock(start, '.')} --> {_clock(end, '.')}", text, ""]
    return "\n".join(out)


def to_json(transcript: Transcript, names: Mapping[str, str], title: str | None = None) -> str:
    data = transcript.to_dict()
    if title is not None:
        data["title"] = title
    if names and any(names.get(k, k) != k for k in data["speakers"]):
        data["speaker_names"] = {k: names.get(k, k) for k in data["speakers"]}
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


_RENDERERS: dict[str, Callable[[Transcript, Mapping[str, str], str | None], str]] = {
    "txt": to_txt,
    "srt": to_srt,
    "vtt": to_vtt,
    "json": to_json,
}


def check_format(fmt: str) -> str:
    fmt = fmt.lower().lstrip(".")
    if fmt not in _RENDERERS:
        raise ExportError(f"Unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}.")
    return fmt


def render(
    transcript: Transcript,
    fmt: str,
    *,
    speaker_names: Mapping[str, str] | None = None,
    title: str | None = None,
) -> str:
    """The transcript as text in `fmt` (txt, srt, vtt or json)."""
    return _RENDERERS[check_format(fmt)](transcript, speaker_names or {}, title)


def write(
    transcript: Transcript,
    fmt: str,
    output: Path | str,
    *,
    speaker_names: Mapping[str, str] | None = None,
    title: str | None = None,
) -> Path:
    """Render and write atomically: a failed write never leaves a half file at `output`."""
    text = render(transcript, fmt, speaker_names=speaker_names, title=title)
    out = Path(output)
    try:
        atomic_write_text(out, text)
    except OSError as exc:
        raise ExportError(f"Cannot write {out}: {exc.strerror or exc}.") from exc
    return out
