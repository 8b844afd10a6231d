"""The floor plan holds: storage and engines don't import each other, only ui/ touches widgets.

Scans import statements with `ast`, so a forbidden import anywhere in a module (even
inside a function) fails here, with the file and line to fix.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "nojoin"


def imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def modules(*parts: str) -> list[Path]:
    out: list[Path] = []
    for part in parts:
        target = PKG / part
        out += [target] if target.suffix == ".py" else sorted(target.rglob("*.py"))
    return [p for p in out if p.exists()]


def violations(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for f in files:
        for line, name in imports(f):
            if any(name == x or name.startswith(x + ".") for x in forbidden):
                bad.append(f"{f.relative_to(ROOT)}:{line} imports {name}")
    return bad


def test_models_import_nothing_of_ours() -> None:
    assert violations(modules("models.py"), ("nojoin",)) == []


def test_library_does_not_import_engines_or_ui() -> None:
    assert (
        violations(
            modules("library"),
            ("nojoin.processing", "nojoin.audio", "nojoin.ui", "nojoin.cloud", "PySide6"),
        )
        == []
    )


@pytest.mark.parametrize("area", ["processing", "audio"])
def test_engines_do_not_import_storage_or_ui(area: str) -> None:
    files = [p for p in modules(area) if p.name != "pipeline.py"]  # the pipeline orchestrates
    assert violations(files, ("nojoin.ui", "PySide6", "nojoin.cloud.manager")) == []


def test_processing_engines_do_not_import_the_library() -> None:
    files = [p for p in modules("processing") if p.name != "pipeline.py"]
    assert violations(files, ("nojoin.library",)) == []


def test_only_ui_and_cloud_manager_use_qt() -> None:
    allowed = {PKG / "cloud" / "manager.py", PKG / "app.py"}
    files = [
        p for p in PKG.rglob("*.py") if "ui" not in p.relative_to(PKG).parts and p not in allowed
    ]
    assert violations(files, ("PySide6", "shiboken6")) == []


def test_widgets_do_not_call_http_directly() -> None:
    assert violations(modules("ui"), ("httpx", "requests", "supabase", "urllib.request")) == []
