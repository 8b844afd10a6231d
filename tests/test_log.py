"""setup_logging() in a fresh interpreter each time (it configures the process once): a rotating
file in $NOJOIN_DATA_DIR/logs plus stderr, set up only once; and the platformdirs defaults."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import platformdirs
import pytest

from nojoin import paths

SCRIPT = """
import logging, sys
from nojoin.log import setup_logging
setup_logging()
setup_logging()  # a second call changes nothing
root = logging.getLogger()
print(len(root.handlers))
log = logging.getLogger("nojoin.test")
log.warning("to stderr and the file")
log.info("only to the file")
for i in range(int(sys.argv[1])):
    log.info("line %05d %s", i, "x" * 1000)
"""


def run(data: Path, lines: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NOJOIN_DATA_DIR": str(data)}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, str(lines)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_logs_go_to_a_file_in_the_data_dir_and_warnings_to_stderr(tmp_path: Path) -> None:
    out = run(tmp_path / "data", 0)
    assert out.stdout.strip() == "2"  # one stderr handler, one file handler: configured once
    assert "to stderr and the file" in out.stderr and "only to the file" not in out.stderr
    text = (tmp_path / "data" / "logs" / "nojoin.log").read_text()
    assert "WARNING nojoin.test: to stderr and the file" in text
    assert "INFO nojoin.test: only to the file" in text


def test_the_log_file_rotates_instead_of_growing(tmp_path: Path) -> None:
    run(tmp_path / "data", 2500)  # about 2.5 MB of log lines
    logs = tmp_path / "data" / "logs"
    assert (logs / "nojoin.log.1").exists()
    assert (logs / "nojoin.log").stat().st_size <= 2_000_000
    assert (logs / "nojoin.log.1").stat().st_size <= 2_000_000


def test_default_locations_are_the_platform_user_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOJOIN_DATA_DIR", raising=False)
    monkeypatch.delenv("NOJOIN_CONFIG_DIR", raising=False)
    monkeypatch.setattr(paths, "_ensure", lambda p: p)  # look, do not create real folders
    assert paths.data_dir() == Path(platformdirs.user_data_dir(paths.APP_NAME, False))
    assert paths.config_dir() == Path(platformdirs.user_config_dir(paths.APP_NAME, False))
