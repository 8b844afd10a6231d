"""Guard against a broken Qt binding: PySide6 6.12.0 (with CPython 3.11) drops a reference to
None/True on every call of a void or bool-returning method (`setValue`, `QTimer.start`,
`Signal.emit`, ...). A running app then aborts with "none_dealloc"/"bool_dealloc" after some
thousands of calls (the GUI benchmark crashed this way mid-run), so pyproject excludes it."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QProgressBar


class _Emitter(QObject):
    fired = Signal(object)


def _drift(fn: object, n: int = 300) -> tuple[int, int]:
    before = (sys.getrefcount(None), sys.getrefcount(True))
    for _ in range(n):
        fn()  # type: ignore[operator]
    return sys.getrefcount(None) - before[0], sys.getrefcount(True) - before[1]


def test_void_calls_and_emit_keep_refcounts(qtbot: object) -> None:
    bar = QProgressBar()
    timer = QTimer()
    emitter = _Emitter()
    for name, fn in (
        ("QProgressBar.setValue", lambda: bar.setValue(3)),
        ("QTimer.start/stop", lambda: (timer.start(5), timer.stop())),
        ("Signal.emit", lambda: emitter.fired.emit(1)),
    ):
        none_drift, true_drift = _drift(fn)
        # A few references may come and go; a loss per call means the binding is broken.
        assert none_drift > -100 and true_drift > -100, (
            f"{name} leaks references to None/True in this PySide6 build "
            f"(None {none_drift}, True {true_drift} over 300 calls): the app would crash. "
            "Install another PySide6 version (see pyproject.toml)."
        )
