"""Helpers for tests that stop or kill the engine process and check that none is left behind."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field

import psutil

from nojoin.models import Transcript
from nojoin.processing.contract import CancelToken, Progress
from nojoin.processing.strategies.local_strategy import LocalProcessingStrategy


class Shared:
    """The session's warm engine, lent to a Pipeline without letting it close it."""

    name = "local"

    def __init__(self, engine: LocalProcessingStrategy) -> None:
        self.engine = engine

    def process(self, *args: object) -> Transcript:
        return self.engine.process(*args)  # type: ignore[arg-type]

    def close(self) -> None:
        pass


def engine_children() -> list[psutil.Process]:
    """This process's living engine workers: spawned multiprocessing children, but not
    multiprocessing's resource tracker, which lives as long as the interpreter."""
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            cmdline = " ".join(p.cmdline())
        except psutil.Error:  # exited, or a zombie
            continue
        if "multiprocessing" in cmdline and "resource_tracker" not in cmdline:
            out.append(p)
    return out


def is_gone(pid: int) -> bool:
    """The process has exited (a zombie not yet reaped counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@dataclass
class Interruption:
    """A progress callback that, at the first report of `stage`, kills the engine (SIGKILL) or
    cancels `cancel`; it records the engine's pid and when it struck."""

    strategy: LocalProcessingStrategy
    stage: str = "transcribing"
    cancel: CancelToken | None = None  # None: kill the engine instead
    pids: list[int] = field(default_factory=list)
    at: list[float] = field(default_factory=list)

    def __call__(self, p: Progress) -> None:
        if p.stage != self.stage or self.pids:
            return
        pid = self.strategy.worker_pid
        assert pid is not None, "the engine is not running"
        self.pids.append(pid)
        self.at.append(time.monotonic())
        if self.cancel is not None:
            self.cancel.cancel()
        else:
            os.kill(pid, signal.SIGKILL)
