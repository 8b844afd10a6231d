"""setup_logging(): once per process, to a rotating file in the data dir and to stderr."""

from __future__ import annotations

import logging
import logging.handlers
import sys

from nojoin import paths

_configured = False
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: int = logging.INFO, *, stderr_level: int = logging.WARNING) -> None:
    global _configured
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
        logging.getLogger(__name__).warning("File logging disabled: %s", exc)
    _configured = True
