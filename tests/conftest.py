"""Test-wide set-up: offscreen Qt, throw-away data/config dirs, an in-memory keyring."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# Before anything imports Qt, torch or huggingface.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import keyring  # noqa: E402
import pytest  # noqa: E402
from keyring.backend import KeyringBackend  # noqa: E402


class MemoryKeyring(KeyringBackend):
    """Keeps secrets in a dict so tests never touch the real OS keyring."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        from keyring.errors import PasswordDeleteError

        if self.store.pop((service, username), None) is None:
            raise PasswordDeleteError(username)


@pytest.fixture(autouse=True)
def nojoin_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own data, config and cache dirs."""
    base = tmp_path / "nojoin-home"
    for name in ("data", "config"):
        (base / name).mkdir(parents=True)
    monkeypatch.setenv("NOJOIN_DATA_DIR", str(base / "data"))
    monkeypatch.setenv("NOJOIN_CONFIG_DIR", str(base / "config"))
    # The cache (joined model files) is shared across tests: joining base.bin is slow.
    monkeypatch.setenv(
        "NOJOIN_CACHE_DIR", os.environ.get("NOJOIN_TEST_CACHE_DIR", str(_shared_cache()))
    )
    yield base


def _shared_cache() -> Path:
    path = Path(__file__).resolve().parent.parent / ".cache" / "test-cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(autouse=True)
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    yield ring
    keyring.set_keyring(previous)


# A test skipped because a system tool is missing (its reason points at the install script)
# would let CI pass without testing that part at all: `make test` installs those tools, so
# under CI such a skip is a failure. Skips for optional extras (pyannote) stay skips.
SYSTEM_DEPS_HINT = "install-system-deps.sh"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if os.environ.get("CI") and report.skipped and SYSTEM_DEPS_HINT in str(report.longrepr):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, but CI must run it: {report.longrepr}"
