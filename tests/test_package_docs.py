"""Every folder of the desktop package says in its `__init__.py` docstring what lives there,
naming at least one of its modules or subfolders (not a placeholder like "audio package.")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "nojoin"
PACKAGES = sorted(p.parent for p in PKG.rglob("__init__.py") if p.parent != PKG)


@pytest.mark.parametrize("folder", PACKAGES, ids=lambda p: str(p.relative_to(PKG.parent)))
def test_package_docstring_names_what_lives_there(folder: Path) -> None:
    doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text(encoding="utf-8")))
    assert doc and not doc.strip().endswith(" package."), f"{folder}: no docstring"
    parts = {p.stem for p in folder.iterdir() if p.suffix == ".py" and p.stem != "__init__"}
    parts |= {p.name for p in folder.iterdir() if (p / "__init__.py").exists()}
    named = {name for name in parts if name in doc}
    assert named, f"{folder}/__init__.py names none of {sorted(parts)}"
