#!/usr/bin/env bash
# Screenshots of the Cloud Mode dialogs under Xvfb, against a real local backend
# (`nojoin-backend`, embedded Postgres): sign-in (empty and with an error), create account,
# settings conflict, and the backups dialog with real backups, in the light and dark theme.
# Output: screenshots/cloud-*.png (git-ignored). Needs xvfb (scripts/install-system-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${1:-screenshots}
mkdir -p "$OUT"
WORK=$(mktemp -d)
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$(dirname "$PY")/nojoin-backend" --port "$PORT" --data-dir "$WORK/backend" --log-level warning \
    >"$WORK/backend.log" 2>&1 &
BACKEND=$!
cleanup() {
    kill "$BACKEND" 2>/dev/null || true
    wait "$BACKEND" 2>/dev/null || true
    # nojoin-backend leaves its embedded PostgreSQL running on SIGTERM: stop ours.
    if [ -f "$WORK/backend/pgdata/postmaster.pid" ]; then
        kill -INT "$(head -1 "$WORK/backend/pgdata/postmaster.pid")" 2>/dev/null || true
        sleep 1
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 1 150); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break
    sleep 0.2
done
export NOJOIN_DATA_DIR="$WORK/data" NOJOIN_CONFIG_DIR="$WORK/config" NOJOIN_CACHE_DIR="$WORK/cache"
export NOJOIN_CLOUD_URL="http://127.0.0.1:$PORT"
export QT_QPA_PLATFORM=xcb
unset WAYLAND_DISPLAY
xvfb-run -a -s "-screen 0 1400x900x24 -dpi 96" "$PY" - "$OUT" <<'PYEOF'
"""Drive the real dialogs with a real CloudManager and grab them as PNG."""
import secrets
import sys
from pathlib import Path

import keyring
from keyring.backend import KeyringBackend
from PySide6.QtCore import QCoreApplication, QDeadlineTimer, QEventLoop
from PySide6.QtWidgets import QApplication, QWidget

from nojoin.cloud.config_sync import Difference, SyncOutcome, SyncResult
from nojoin.cloud.api_client import RemoteConfig
from nojoin.cloud.manager import CloudManager
from nojoin.config import Theme
from nojoin.library import Library
from nojoin.ui import theme as ui_theme
from nojoin.ui.cloud.auth_dialogs import LoginDialog, PasswordResetDialog, RegisterDialog
from nojoin.ui.cloud.backups_dialog import BackupsDialog
from nojoin.ui.cloud.sync_dialog import SyncConflictDialog


class MemoryKeyring(KeyringBackend):  # never touch a real keyring from a script
    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.d: dict[tuple[str, str], str] = {}

    def get_password(self, s, u):
        return self.d.get((s, u))

    def set_password(self, s, u, p):
        self.d[(s, u)] = p

    def delete_password(self, s, u):
        self.d.pop((s, u), None)


keyring.set_keyring(MemoryKeyring())

out = Path(sys.argv[1])
app = QApplication.instance() or QApplication([])


def wait(predicate, seconds=30.0):
    deadline = QDeadlineTimer(int(seconds * 1000))
    while not predicate():
        if deadline.hasExpired():
            raise TimeoutError("timed out")
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)


def shoot(name: str, widget: QWidget) -> None:
    widget.show()
    widget.raise_()
    for _ in range(20):
        QCoreApplication.processEvents()
    widget.grab().save(str(out / f"cloud-{name}.png"))
    print("saved", out / f"cloud-{name}.png")


manager = CloudManager()
email = f"alice.{secrets.token_hex(2)}@example.com"
lib = Library()
for title in ("Weekly planning", "Design review", "Customer call"):
    lib.add_meeting(title, duration=1800)

for theme in (Theme.LIGHT, Theme.DARK):
    ui_theme.apply(app, theme)
    login = LoginDialog(manager)
    shoot(f"login-{theme.value}", login)
    login.email.setText(email)
    login.password.setText("wrong password")
    login.submit()
    wait(lambda: not login.is_busy)
    shoot(f"login-error-{theme.value}", login)
    login.close()

    reg = RegisterDialog(manager)
    reg.email.setText("bob@example")
    reg.submit()
    shoot(f"register-invalid-{theme.value}", reg)
    reg.close()

    reset = PasswordResetDialog(manager, email)
    reset.show()
    reset.submit()
    wait(lambda: reset.sent and not reset.is_busy)
    shoot(f"reset-code-{theme.value}", reset)
    reset.close()

ui_theme.apply(app, Theme.LIGHT)
task = manager.sign_up(email, "correct horse battery staple")
done = []
task.finished.connect(lambda: done.append(1))
wait(lambda: done)
for audio in (False, True, False):
    t = manager.back_up(include_audio=audio)
    flag = []
    t.finished.connect(lambda f=flag: f.append(1))
    wait(lambda f=flag: f)

conflict = SyncResult(
    SyncOutcome.NEEDS_CHOICE,
    (
        Difference("model", "base", "small.en"),
        Difference("language", "auto", "en"),
        Difference("theme", "dark", "light"),
    ),
    RemoteConfig({}, 3),
    conflicts=("model",),
)
for theme in (Theme.LIGHT, Theme.DARK):
    ui_theme.apply(app, theme)
    dialog = BackupsDialog(manager)
    dialog.show()
    wait(lambda: dialog.list_task is None and dialog.entries)
    shoot(f"backups-{theme.value}", dialog)
    dialog.close()
    shoot(f"sync-conflict-{theme.value}", SyncConflictDialog(conflict))
manager.shutdown()
lib.close()

# The main window as the app builds it: Cloud menu before Help, account status at the right.
from nojoin.app import build
from nojoin.cloud import manager as cloud_manager

ui_theme.apply(app, Theme.LIGHT)
built = build(install_excepthook=False)
built.window.resize(1200, 720)
built.window.show()
built.install_cloud()  # as run() does after the first frame
cm = cloud_manager.instance()
wait(lambda: cm.account is not None and "synced" in cm.sync_status)
shoot("main-window-signed-in", built.window)
menu = next(a.menu() for a in built.window.menuBar().actions() if a.text() == "&Cloud")
menu.popup(built.window.mapToGlobal(built.window.rect().center()))
shoot("menu-signed-in", menu)
menu.hide()
built.close()
PYEOF
