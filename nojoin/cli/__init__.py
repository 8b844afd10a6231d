"""The `nojoin` command: no arguments starts the GUI; subcommands run the engine headless.

Each subcommand lives in its own module with `register(subparsers)` (`transcribe_cmd`,
`record_cmd`: record, devices, import; `library_cmd`); modules import
heavy libraries (faster-whisper, soundcard, Qt) only inside their handlers so that
`nojoin --help` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from nojoin import __version__
from nojoin.errors import NojoinError

log = logging.getLogger(__name__)

# Modules that contribute subcommands, in the order `--help` lists them.
COMMAND_MODULES: list[str] = [
    "nojoin.cli.library_cmd",
    "nojoin.cli.record_cmd",
    "nojoin.cli.transcribe_cmd",
]


class CliError(NojoinError):
    """A usage or input error reported as one line with exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nojoin",
        description="Record, transcribe and search meetings on your own machine. "
        "Run without a command to open the app.",
    )
    parser.add_argument("--version", action="version", version=f"nojoin {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from nojoin.log import file_logging_error, setup_logging

    try:
        setup_logging(stderr_level=logging.DEBUG if args.verbose else logging.WARNING)
        handler = getattr(args, "handler", None)
        result: int = _run_gui() if handler is None else handler(args)
        # Only now: had the command failed, its one error line would already name the folder.
        reason = file_logging_error()
        if reason is not None and not args.verbose:
            print(f"nojoin: warning: no log file was written: {reason}", file=sys.stderr)  # noqa: T201
        return result
    except KeyboardInterrupt:
        print("nojoin: interrupted", file=sys.stderr)  # noqa: T201
        return 130
    except NojoinError as exc:
        log.debug("command failed", exc_info=True)
        print(f"nojoin: error: {exc}", file=sys.stderr)  # noqa: T201
        return 2 if isinstance(exc, CliError) else 1


def _run_gui() -> int:
    try:
        from nojoin.app import run
    except ImportError as exc:
        raise NojoinError(
            f"The desktop app is not available ({exc}). Install it with: pip install 'nojoin[gui]'"
        ) from exc
    result: int = run()
    return result
