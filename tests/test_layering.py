"""The floor plan holds: storage and engines don't import each other, only ui/ touches widgets,
the backend reaches the desktop package only through the engine and its contract, and no
module of `nojoin` or `backend` imports itself round a circle.

Scans import statements with `ast`, so a forbidden import anywhere in a module (even
inside a function) fails here, with the file and line to fix. The checks run on planted
violations in a temporary tree too, so each one is known to be able to fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "nojoin"
BACKEND = ROOT / "backend"

# What backend/ may import from the desktop package: the plain data types, the engine's
# contract, the engine itself (the local strategy and the modules it runs) and the decoder the
# engine uses. Never the GUI, the cloud client, the library or the settings.
BACKEND_FORBIDDEN = ("nojoin.ui", "nojoin.cloud", "nojoin.library", "nojoin.config", "PySide6")
BACKEND_MAY_IMPORT = (
    "nojoin.models",
    "nojoin.processing.contract",
    "nojoin.processing.strategies.local_strategy",
    "nojoin.audio.decode",
)


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in the file; `from a import b` gives `a.b`, so
    `from nojoin import ui` is seen as importing `nojoin.ui`. Relative imports are resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                package = module_name(path, root).split(".")
                if path.name != "__init__.py":
                    package = package[:-1]
                base = package[: len(package) - (node.level - 1)]
                module = ".".join([*base, module] if module else base)
            found += [(node.lineno, f"{module}.{a.name}") for a in node.names]
    return found


def _matches(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == x or name.startswith(x + ".") for x in prefixes)


def modules(*parts: str) -> list[Path]:
    out: list[Path] = []
    for part in parts:
        target = PKG / part
        out += [target] if target.suffix == ".py" else sorted(target.rglob("*.py"))
    return [p for p in out if p.exists()]


def violations(files: list[Path], forbidden: tuple[str, ...], root: Path = ROOT) -> list[str]:
    bad = []
    for f in files:
        for line, name in imports(f, root):
            if _matches(name, forbidden):
                bad.append(f"{f.relative_to(root)}:{line} imports {name}")
    return bad


def outside(files: list[Path], area: str, allowed: tuple[str, ...], root: Path = ROOT) -> list[str]:
    """Imports of `area` (a package) by `files` that are not under one of `allowed`."""
    bad = []
    for f in files:
        for line, name in imports(f, root):
            if _matches(name, (area,)) and not _matches(name, allowed):
                bad.append(f"{f.relative_to(root)}:{line} imports {name}")
    return bad


def import_cycles(root: Path, packages: tuple[str, ...]) -> list[frozenset[str]]:
    """Strongly connected groups of modules (two or more) in the import graph of `packages`,
    counting every import, also those inside functions (a deferred import is still a circle)."""
    files = {module_name(p, root): p for pkg in packages for p in (root / pkg).rglob("*.py")}

    def resolve(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        targets = {resolve(name) for _, name in imports(path, root)}
        graph[mod] = {t for t in targets if t is not None and t != mod}

    # Tarjan's algorithm, iterative (no recursion limit on deep chains).
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[frozenset[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            nxt = next(edges, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(frozenset(group))
    return groups


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


def backend_modules(root: Path = ROOT) -> list[Path]:
    return sorted((root / "backend").rglob("*.py"))


def test_backend_does_not_import_desktop_code() -> None:
    assert violations(backend_modules(), BACKEND_FORBIDDEN) == []


def test_backend_reaches_nojoin_only_through_the_engine_and_its_contract() -> None:
    assert outside(backend_modules(), "nojoin", BACKEND_MAY_IMPORT) == []


def test_contract_and_bottom_modules_stay_small() -> None:
    """The contract imports only the bottom modules; the bottom modules import nothing of ours."""
    contract = modules("processing/contract.py")
    assert outside(contract, "nojoin", ("nojoin.models", "nojoin.errors")) == []
    assert violations(contract, ("PySide6", "backend")) == []
    assert violations(modules("errors.py"), ("nojoin", "backend")) == []


def test_desktop_does_not_import_the_backend() -> None:
    assert violations(sorted(PKG.rglob("*.py")), ("backend",)) == []


def test_no_import_cycles() -> None:
    assert [sorted(c) for c in import_cycles(ROOT, ("nojoin", "backend"))] == []


# --- the checks themselves can fail: planted violations in a temporary tree -----------------

PLANTED = {
    "ui": ("from nojoin.ui.main_window import MainWindow\n", "backend/jobs/bad.py:1"),
    "cloud_from": ("from nojoin import cloud\n", "backend/jobs/bad.py:1"),
    "library": ("def later() -> None:\n    import nojoin.library.store\n", "backend/jobs/bad.py:2"),
    "relative_own": ("from ..auth import service\n", None),  # backend.auth.service: fine
    "lookalike": ("import nojoin.configure\n", None),  # not nojoin.config
    "settings": ("from nojoin.config.settings import Settings\n", "backend/jobs/bad.py:1"),
}


@pytest.mark.parametrize("case", sorted(PLANTED))
def test_planted_desktop_import_in_backend_is_caught(tmp_path: Path, case: str) -> None:
    source, expected = PLANTED[case]
    for pkg in ("backend", "backend/jobs"):
        (tmp_path / pkg).mkdir(parents=True, exist_ok=True)
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "backend/jobs/bad.py").write_text(source)
    found = violations(backend_modules(tmp_path), BACKEND_FORBIDDEN, tmp_path)
    if expected is None:
        assert found == []
    else:
        assert len(found) == 1 and found[0].startswith(expected), found
        assert outside(backend_modules(tmp_path), "nojoin", BACKEND_MAY_IMPORT, tmp_path)


def test_planted_engine_import_passes_and_other_desktop_imports_do_not(tmp_path: Path) -> None:
    (tmp_path / "backend").mkdir()
    (tmp_path / "backend/ok.py").write_text(
        "from nojoin.processing.contract import CancelToken\n"
        "from nojoin.processing.strategies.local_strategy import LocalProcessingStrategy\n"
    )
    assert outside(backend_modules(tmp_path), "nojoin", BACKEND_MAY_IMPORT, tmp_path) == []
    (tmp_path / "backend/bad.py").write_text("from nojoin.processing.pipeline import Pipeline\n")
    assert outside(backend_modules(tmp_path), "nojoin", BACKEND_MAY_IMPORT, tmp_path) == [
        "backend/bad.py:1 imports nojoin.processing.pipeline.Pipeline"
    ]


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"a.py": "from pkg import b\n", "b.py": "import pkg.a\n"}, [{"pkg.a", "pkg.b"}]),
        (  # three modules, one import deferred into a function, one relative
            {
                "a.py": "import pkg.b\n",
                "b.py": "def f() -> None:\n    from pkg.c import x\n",
                "c.py": "from . import a\n",
            },
            [{"pkg.a", "pkg.b", "pkg.c"}],
        ),
        ({"a.py": "import pkg.b\n", "b.py": "import os\n"}, []),
    ],
    ids=["two", "three-deferred-relative", "none"],
)
def test_planted_import_cycle_is_caught(
    tmp_path: Path, files: dict[str, str], expected: list[set[str]]
) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg/__init__.py").write_text("")
    for name, source in files.items():
        (tmp_path / "pkg" / name).write_text(source)
    assert [set(c) for c in import_cycles(tmp_path, ("pkg",))] == expected
