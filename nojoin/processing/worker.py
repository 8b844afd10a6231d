"""Entry point of the spawned engine process (see LocalProcessingStrategy).

Messages, parent -> worker: ("job", job_id, audio_path, options_dict, workdir) | ("stop",).
Worker -> parent: ("progress", job_id, stage, fraction, message) | ("result", job_id,
transcript_dict) | ("error", job_id, error_class_name, message).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def worker_main(conn: Connection, parent_pid: int, log_level: int, idle_timeout: float) -> None:
    # Ctrl-C reaches the whole process group; the parent decides whether we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=log_level,
        stream=sys.stderr,
        format="%(asctime)s nojoin-engine %(levelname)s %(name)s: %(message)s",
    )
    _watch_parent(parent_pid)

    from nojoin.errors import NojoinError
    from nojoin.processing.engine import EngineCache, engine_error, run
    from nojoin.processing.strategies.base import ProcessingOptions

    cache = EngineCache()
    while True:
        try:
            if not conn.poll(idle_timeout):
                log.info("engine idle for %.0f s; exiting", idle_timeout)
                return
            msg: Any = conn.recv()
        except (EOFError, OSError):
            return  # parent closed the pipe
        if msg[0] == "stop":
            return
        _, job_id, audio_path, options_dict, workdir = msg

        def report(stage: str, fraction: float, message: str, _job: int = job_id) -> None:
            conn.send(("progress", _job, stage, fraction, message))

        try:
            options = ProcessingOptions.from_dict(options_dict)
            transcript = run(Path(audio_path), options, Path(workdir), report, cache)
            conn.send(("result", job_id, transcript.to_dict()))
        except NojoinError as exc:
            conn.send(("error", job_id, type(exc).__name__, exc.message))
        except MemoryError:
            cache.transcribers.clear()
            cache.diarizers.clear()
            conn.send(
                (
                    "error",
                    job_id,
                    "ProcessingError",
                    "Out of memory; try a smaller model or a shorter file.",
                )
            )
        except Exception as exc:
            log.exception("engine job %s failed", job_id)
            conn.send(("error", job_id, "ProcessingError", engine_error(exc).message))


def _watch_parent(parent_pid: int) -> None:
    """Exit at once if the parent dies (even by SIGKILL), so no engine is ever orphaned."""

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
