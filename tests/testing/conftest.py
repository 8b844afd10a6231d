"""The generator needs espeak-ng and sox."""

from __future__ import annotations

import pytest

from nojoin.testing.synth import tools_available


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not tools_available():
        skip = pytest.mark.skip(
            reason="espeak-ng and sox are needed (scripts/install-system-deps.sh)"
        )
        for item in items:
            if "synth" in item.nodeid:
                item.add_marker(skip)
