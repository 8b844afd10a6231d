"""setup_logging(): once per process, to a rotating file in the data dir and to stderr."""

from __future__ import annotations

import logging
import logging.handlers
import sys

from nojoin import paths

_configured = False
_file_error: str | None = None
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def file_logging_error() -> str | None:
    """Why setup_logging() could not open the log file, or None if it did (or did not run)."""
    return _file_error


def setup_logging(level: int = logging.INFO, *, stderr_level: int = logging.WARNING) -> None:
    """Log to stderr and to a rotating file; a log file that cannot be opened is not an error.

    The reason is kept for `file_logging_error()` instead of being printed: usually the data
    dir itself is unusable, and the command that needs it reports that as its one error line.
    """
    global _configured, _file_error
    if _configured:
        return
    root = logging.getLogger()
    root.setLevel(min(level, stderr_level))
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(stderr_level)
    err.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root.addHandler(err)
    try:
        log_file = paths.logs_dir() / "nojoin.log"
        fh = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=2_000_000, backupCount=5, encoding="utf-8"
        )
        fh.setLevel(level)
        fh.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(fh)
    except Exception as exc:  # an unwritable data dir must not stop the CLI from reporting it
        _file_error = str(exc)
        logging.getLogger(__name__).debug("File logging disabled: %s", exc)
    _configured = True
