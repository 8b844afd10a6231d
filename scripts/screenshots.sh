#!/usr/bin/env bash
# Screenshots of the desktop app under Xvfb: main window with a few meetings, the meeting view,
# the settings dialog and the processing queue, in the light and the dark theme.
# Output: screenshots/*.png (git-ignored). Needs xvfb (scripts/install-system-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${1:-screenshots}
mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export NOJOIN_DATA_DIR="$WORK/data" NOJOIN_CONFIG_DIR="$WORK/config" NOJOIN_CACHE_DIR="$WORK/cache"
export QT_QPA_PLATFORM=xcb
unset WAYLAND_DISPLAY
run() { xvfb-run -a -s "-screen 0 1400x900x24 -dpi 96" "$PY" - "$OUT" "$WORK" <<'PYEOF'
"""Fill a throw-away library with believable meetings and grab each view as PNG."""
import sys
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from nojoin.app import build, qt_application
from nojoin.errors import CancelledError
from nojoin.library import Library
from nojoin.models import MeetingStatus, Segment, Transcript
from nojoin.processing.pipeline import Pipeline
from nojoin.processing.contract import Progress
from nojoin.ui.options import options_from_settings

out, work = Path(sys.argv[1]), Path(sys.argv[2])


def tone(path: Path, seconds: float) -> Path:
    t = np.arange(int(16000 * seconds)) / 16000
    pcm = (0.05 * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    return path


LINES = [
    ("SPEAKER_00", "Good morning everyone, thanks for joining the weekly planning meeting."),
    ("SPEAKER_01", "Thanks Alice. I'd like to start with the status of the new website."),
    ("SPEAKER_00", "Sure. What is the biggest problem the team is facing right now?"),
    ("SPEAKER_01", "The design is finished, but we still need more time to test the search page. "
     "Search results are sometimes slow when the index is rebuilt during the day."),
    ("SPEAKER_02", "We could move the rebuild to the night and add a cache in front of it."),
    ("SPEAKER_00", "Good idea. Then let's move the launch to the end of next month and review it again."),
    ("SPEAKER_01", "Agreed. I'll update the plan and share it this afternoon."),
    ("SPEAKER_02", "I'll write up the caching proposal by Thursday."),
]


def transcript(duration: float) -> Transcript:
    segs, t = [], 1.0
    for spk, text in LINES:
        length = max(3.0, len(text) / 14)
        segs.append(Segment(t, t + length, text, spk))
        t += length + 0.6
    return Transcript(segs, "en", duration)


def populate(app) -> int:
    lib = app.library
    now = datetime.now(UTC).replace(hour=15, minute=0)
    audio = tone(work / "planning.wav", 60.0)
    rows = [
        ("Weekly planning", 0, 3240.0, MeetingStatus.PROCESSED, ["planning", "team"]),
        ("Customer call: Acme onboarding", 1, 1860.0, MeetingStatus.PROCESSED, ["customers"]),
        ("Design review — search page", 2, 2710.0, MeetingStatus.PROCESSED, ["design"]),
        ("1:1 with Sam", 4, 1500.0, MeetingStatus.RECORDED, []),
        ("Budget for the summer", 6, 2280.0, MeetingStatus.ERROR, ["planning"]),
        ("All hands", 8, 3600.0, MeetingStatus.PROCESSED, ["team"]),
    ]
    first = 0
    for title, days, dur, status, tags in rows:
        m = lib.add_meeting(title, audio_path=audio, duration=dur,
                            created_at=now - timedelta(days=days, hours=days % 3))
        first = first or m.id
        if status is MeetingStatus.PROCESSED:
            lib.save_transcript(m.id, transcript(dur))
            lib.rename_speaker(m.id, "SPEAKER_00", "Alice")
            lib.rename_speaker(m.id, "SPEAKER_01", "Bob")
        elif status is MeetingStatus.ERROR:
            lib.set_status(m.id, status, "The speech model 'small' is not installed. Choose tiny.en "
                           "or base in Settings, or connect to the internet once to download it.")
        for tag in tags:
            lib.add_tag(m.id, tag)
    return first


class DemoStrategy:
    """Stands still at 'Transcribing 42%' until cancelled, so the queue can be photographed."""

    name = "demo"

    def process(self, audio_path, options, progress, cancel):
        progress(Progress("transcribing", 0.42, 95.0, "Transcribing"))
        cancel.wait(60)
        raise CancelledError()

    def close(self):
        pass


def shoot(name: str, widget) -> None:
    QApplication.processEvents()
    widget.grab().save(str(out / f"{name}.png"))
    print("saved", out / f"{name}.png")


def main() -> None:
    lib = Library()
    app = build(library=lib, pipeline=Pipeline(lib, factories={"local": DemoStrategy}))
    w = app.window
    first = populate(app)
    w.library_panel.refresh_tags()
    w.library_panel.refresh()
    w.resize(1280, 800)
    w.show()
    for theme in ("light", "dark"):
        app.config.update(theme=theme)
        w.detail.setCurrentIndex(0)
        w.library_panel.table.clearSelection()
        w.library_panel.table.setCurrentIndex(w.library_panel.model.index(-1, -1))
        w.detail.setCurrentIndex(0)
        shoot(f"main-{theme}", w)
        w.open_meeting(first)
        w.meeting_view.model.set_current_time(20.0)
        shoot(f"meeting-{theme}", w)
        w.open_meeting(first + 4)
        shoot(f"failed-{theme}", w)
        # A meeting being processed, with the queue dock showing stage, progress and ETA.
        w.process_meeting(first + 3)
        deadline = __import__("time").monotonic() + 5
        while app.queue.current is None or app.queue.current.progress.fraction < 0.4:
            QApplication.processEvents()
            if __import__("time").monotonic() > deadline:
                break
        w.open_meeting(first + 3)
        shoot(f"processing-{theme}", w)
        app.queue.cancel_all()
        app.queue.wait_idle()
        QApplication.processEvents()
        w.queue_dock.hide()
        d = w.open_settings()
        d.adjustSize()
        shoot(f"settings-{theme}", d)
        d.reject()
    app.close()


qt = qt_application()
QTimer.singleShot(0, lambda: (main(), qt.quit()))
qt.exec()
PYEOF
}
run
