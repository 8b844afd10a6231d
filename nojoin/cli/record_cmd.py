"""`nojoin record`, `nojoin devices` and `nojoin import`: capture and bring audio into the library."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "record",
        help="record the microphone and the system audio (Ctrl-C stops and saves)",
        description="Record the microphone (channel 1) and what the speaker plays (channel 2) "
        "until Ctrl-C or --duration. The recording is added to the library. Recordings cut "
        "short by a crash are recovered the next time this runs.",
    )
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument(
        "--mic", metavar="NAME", help="microphone name or part of it (default: system default)"
    )
    p.add_argument(
        "--speaker", metavar="NAME", help="output whose sound to record (default: system default)"
    )
    p.add_argument(
        "--output",
        "-o",
        metavar="PATH",
        help="where to save (.wav or .flac); default: the library's audio folder",
    )
    p.add_argument("--title", help="meeting title (default: e.g. 'Wednesday afternoon meeting')")
    p.add_argument("--no-mic", action="store_true", help="record only the system audio")
    p.add_argument("--no-system", action="store_true", help="record only the microphone")
    p.add_argument(
        "--min-duration",
        type=float,
        default=0.0,
        metavar="S",
        help="discard recordings shorter than S seconds",
    )
    p.add_argument("--no-library", action="store_true", help="only write the file; add no meeting")
    p.set_defaults(handler=cmd_record)

    p = sub.add_parser("devices", help="list microphones and speakers")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_devices)

    p = sub.add_parser("import", help="add an audio or video file to the library")
    p.add_argument("file")
    p.add_argument("--title", help="meeting title (default: the file name)")
    p.add_argument(
        "--reference", action="store_true", help="keep the file where it is instead of copying it"
    )
    p.set_defaults(handler=cmd_import)


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)  # noqa: T201


def _fmt(seconds: float) -> str:
    s = int(round(seconds))
    return (
        f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


def recover_interrupted(add_to_library: bool = True) -> int:
    """Recover recordings a crash interrupted; report each on stderr. Returns how many."""
    from nojoin.audio.recovery import find_interrupted, recover
    from nojoin.audio.saving import save_recording

    entries = find_interrupted()
    if not entries:
        return 0
    lib = None
    if add_to_library:
        from nojoin.library import Library

        lib = Library()
    count = 0
    try:
        for entry in entries:
            rec = recover(entry)
            if rec.path is None:
                _err(f"An interrupted recording from {entry.started_at} held no audio; removed.")
                continue
            count += 1
            line = f"Recovered an interrupted recording: {rec.path} ({_fmt(rec.duration)})"
            if lib is not None:
                m = save_recording(lib, rec)
                line += f" as meeting {m.id} '{m.title}'"
            _err(line)
    finally:
        if lib is not None:
            lib.close()
    return count


class _ConsoleListener:
    """Shows a one-line level meter on a terminal and device problems always."""

    def __init__(self, tty: bool) -> None:
        self.tty = tty
        self._last = 0.0

    def state_changed(self, state: Any) -> None:
        pass

    def levels(self, levels: Any) -> None:
        if not self.tty or time.monotonic() - self._last < 0.2:
            return
        self._last = time.monotonic()
        bar = lambda lv: "#" * int(max(0.0, min(1.0, (lv.rms_db + 60) / 60)) * 20)  # noqa: E731
        sys.stderr.write(
            f"\r{_fmt(levels.elapsed)}  mic [{bar(levels.mic):<20}]  system [{bar(levels.system):<20}] "
        )
        sys.stderr.flush()

    def device_lost(self, source: Any, message: str) -> None:  # noqa: ARG002 (listener API)
        _err(("\n" if self.tty else "") + f"warning: {message}")

    def error(self, message: str) -> None:
        _err(("\n" if self.tty else "") + f"warning: {message}")

    def finished(self, result: Any) -> None:  # noqa: ARG002 (listener API)
        if self.tty:
            sys.stderr.write("\n")


def cmd_record(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nojoin.audio.recorder import Recorder, RecorderState
    from nojoin.cli import CliError

    if args.duration is not None and args.duration <= 0:
        raise CliError("--duration must be a positive number of seconds.")
    if args.no_mic and args.no_system:
        raise CliError("--no-mic and --no-system together leave nothing to record.")
    recover_interrupted(add_to_library=not args.no_library)

    lib = None
    if not args.no_library:
        from nojoin.library import Library

        lib = Library()
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        rec = Recorder(
            Path(args.output) if args.output else None,
            mic=args.mic,
            speaker=args.speaker,
            record_mic=not args.no_mic,
            record_system=not args.no_system,
            min_duration=args.min_duration,
            title=args.title,
            listener=_ConsoleListener(sys.stderr.isatty()),
            store=lib,
        )
        rec.start()
        names = ", ".join(f"{s.label}: {n}" for s, n in rec.device_names.items())
        _err(f"Recording ({names}) to {rec.partial_path}. Press Ctrl-C to stop.")
        started = time.monotonic()
        while not stop.wait(0.1):
            if args.duration is not None and time.monotonic() - started >= args.duration:
                break
            if rec.state is RecorderState.FAILED:
                break
        result = rec.stop()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if lib is not None:
            lib.close()
    if result.discarded:
        _err(f"Recording discarded: {result.duration:.1f} s is shorter than --min-duration.")
        return 0
    extra = f", {result.gaps} gap(s) filled with silence" if result.gaps else ""
    meeting = f" as meeting {result.meeting.id} '{result.meeting.title}'" if result.meeting else ""
    print(f"Saved {result.path} ({_fmt(result.duration)}{extra}){meeting}")  # noqa: T201
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    from nojoin.audio.devices import list_devices

    devs = list_devices()
    if args.json:
        table = [
            {
                "id": d.id,
                "name": d.name,
                "kind": d.kind,
                "channels": d.channels,
                "default": d.is_default,
            }
            for d in devs
        ]
        print(json.dumps(table, indent=2))  # noqa: T201
        return 0
    for kind, heading in (("microphone", "Microphones"), ("speaker", "Speakers (system audio)")):
        print(f"{heading}:")  # noqa: T201
        rows = [d for d in devs if d.kind == kind]
        if not rows:
            print("  (none)")  # noqa: T201
        for d in rows:
            mark = "*" if d.is_default else " "
            print(f" {mark} {d.name}  [{d.id}]")  # noqa: T201
    print("(* = default)")  # noqa: T201
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from nojoin.audio.importer import import_file
    from nojoin.library import Library
    from nojoin.processing.contract import Progress

    tty = sys.stderr.isatty()

    def progress(p: Progress) -> None:
        if tty:
            sys.stderr.write(f"\rChecking audio... {p.fraction:4.0%}")
            sys.stderr.flush()

    with Library() as lib:
        result = import_file(
            args.file, copy=not args.reference, store=lib, title=args.title, progress=progress
        )
    if tty:
        sys.stderr.write("\n")
    assert result.meeting is not None
    print(  # noqa: T201
        f"Imported {result.path} ({_fmt(result.duration)}) as meeting {result.meeting.id} "
        f"'{result.meeting.title}'"
    )
    return 0
