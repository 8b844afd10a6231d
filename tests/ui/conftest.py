"""Fixtures for the desktop UI tests (doubles live in ui_support.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QMessageBox
from ui_support import Boxes, FakeRecorder, Harness, ScriptedStrategy, write_wav

from nojoin.app import build
from nojoin.config import ConfigManager, LocalConfigRepository
from nojoin.library import Library
from nojoin.processing.pipeline import Pipeline


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    return write_wav(tmp_path / "meeting.wav")


@pytest.fixture
def harness(qtbot: Any, wav: Path, tmp_path: Path) -> Iterator[Harness]:
    library = Library()
    strategy = ScriptedStrategy()
    remote = ScriptedStrategy()  # stands in for Nojoin Cloud (mode "remote")
    pipeline = Pipeline(library, factories={"local": lambda: strategy, "remote": lambda: remote})
    config = ConfigManager(LocalConfigRepository())
    recorders: list[FakeRecorder] = []

    def make_recorder(listener: Any) -> FakeRecorder:
        rec = FakeRecorder(listener, library, wav)
        recorders.append(rec)
        return rec

    app = build(
        config=config,
        library=library,
        pipeline=pipeline,
        recorder_factory=make_recorder,
        install_excepthook=False,
    )
    qtbot.addWidget(app.window)
    h = Harness(app, strategy, wav, recorders, remote)
    yield h
    strategy.release.set()
    remote.release.set()
    app.queue.cancel_all()
    app.close()
    assert app.tasks.wait(5000)  # no worker thread outlives the app
    qtbot.waitUntil(lambda: app.tasks.active == 0, timeout=5000)


@pytest.fixture
def boxes(monkeypatch: pytest.MonkeyPatch) -> Boxes:
    """Answer QMessageBox.question without showing a blocking dialog."""
    b = Boxes()

    def question(parent: Any, title: str, text: str, *args: Any, **kwargs: Any) -> Any:
        b.questions.append(text)
        return b.answer

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    return b
