"""The suite keeps its shape: every test module in the folder of its room, each basename once (pytest
and mypy import a test module by its basename), and no test module importing another (what two of
them share lives in tests/support)."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

from support.paths import TESTS

ROOMS = ("core", "datasets", "training", "convert", "runtime", "system")


def _test_modules() -> list[Path]:
    return sorted(TESTS.rglob("test_*.py"))


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_every_test_module_sits_in_a_room() -> None:
    modules = _test_modules()
    assert len(modules) > 40
    misplaced = [str(p.relative_to(TESTS)) for p in modules if p.parent.parent != TESTS or p.parent.name not in ROOMS]
    assert misplaced == [], f"test modules outside tests/{{{','.join(ROOMS)}}}/: {misplaced}"


def test_basenames_are_unique() -> None:
    counts = Counter(p.name for p in _test_modules())
    assert [name for name, n in counts.items() if n > 1] == []


def test_no_test_module_imports_another() -> None:
    tests = {p.stem for p in _test_modules()}
    found = {}
    for path in [*_test_modules(), *sorted((TESTS / "support").glob("*.py")), TESTS / "conftest.py"]:
        bad = sorted(n for n in _imported(path) if n.split(".")[-1] in tests or n.split(".")[0] == "tests")
        if bad:
            found[str(path.relative_to(TESTS))] = bad
    assert found == {}, f"import from tests/support instead: {found}"
