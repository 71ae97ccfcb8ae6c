"""The rooms depend one way: core <- models / train / evaluate / synth <- runtime <- calibration <-
convert <- cli / benchmarks, and no module imports another that (directly or not) imports it.

The whole package is walked (every module under the package's directories, as ``pyproject.toml``
maps them), and every import counts: top level, inside functions (deferred), under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# where each import prefix lives on disk (pyproject.toml's package-dir)
PACKAGE_DIRS = {"edge_mmer.runtime": "runtime", "edge_mmer.convert": "convert", "edge_mmer.calibration": "calibration",
                "edge_mmer": "edge_mmer", "benchmarks": "benchmarks"}
# the rooms in their order: a room may import its own modules and those of rooms before it
ROOMS = ("core", "training", "runtime", "calibration", "convert", "top")
TRAINING = ("edge_mmer.models", "edge_mmer.train", "edge_mmer.evaluate", "edge_mmer.synth")
# runtime and core stay lean: never these rooms, whatever their order
LEAN_NEVER = (*TRAINING, "edge_mmer.convert", "edge_mmer.calibration", "edge_mmer.cli")


def room(module: str) -> str:
    def under(*prefixes: str) -> bool:
        return any(module == p or module.startswith(p + ".") for p in prefixes)

    if under("edge_mmer.cli", "benchmarks"):
        return "top"
    if under("edge_mmer.convert"):
        return "convert"
    if under("edge_mmer.calibration"):
        return "calibration"
    if under("edge_mmer.runtime"):
        return "runtime"
    if under(*TRAINING):
        return "training"
    return "core"


def modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for prefix, folder in PACKAGE_DIRS.items():
        base = ROOT / folder
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(base).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([prefix, *parts])
            out.setdefault(name, path)  # edge_mmer/ has no runtime/, so the mapped rooms never collide
    return out


def _imports(path: Path, module: str, is_package: bool) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target
            for alias in node.names:  # `from edge_mmer.runtime import loop` imports a module
                yield f"{target}.{alias.name}"


def graph() -> dict[str, set[str]]:
    mods = modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for target in _imports(path, name, path.name == "__init__.py"):
            if target in mods and target != name:
                edges[name].add(target)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def _package_parents(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def violations(edges: dict[str, set[str]]) -> set[tuple[str, str]]:
    bad = set()
    for src, targets in edges.items():
        for dst in targets:
            if dst in _package_parents(src):
                continue  # a package's __init__ is not a dependency of its own modules' design
            rs, rd = room(src), room(dst)
            lean = rs in ("core", "runtime") and any(dst == p or dst.startswith(p + ".") for p in LEAN_NEVER)
            if ROOMS.index(rd) > ROOMS.index(rs) or lean:
                bad.add((src, dst))
    return bad


def test_the_walk_sees_the_whole_package() -> None:
    mods = modules()
    assert "edge_mmer.runtime.loop" in mods and "edge_mmer.convert.int8" in mods
    assert "edge_mmer.calibration.record" in mods and "benchmarks.soak" in mods
    assert len(mods) > 100


def test_no_import_cycles() -> None:
    cycles = _cycles(graph())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_rooms_depend_one_way() -> None:
    found = sorted(violations(graph()))
    assert not found, "forbidden imports (room order: " + " <- ".join(ROOMS) + "):\n" + "\n".join(
        f"{a} ({room(a)}) imports {b} ({room(b)})" for a, b in found)


def test_the_checker_catches_what_it_should() -> None:
    edges = {"edge_mmer.runtime.loop": {"edge_mmer.convert.int8"}, "edge_mmer.convert.int8": {"edge_mmer.bundle"},
             "edge_mmer.bundle": {"edge_mmer.train"}, "edge_mmer.train": {"edge_mmer.bundle"}}
    assert violations(edges) == {("edge_mmer.runtime.loop", "edge_mmer.convert.int8"),
                                 ("edge_mmer.bundle", "edge_mmer.train")}
    assert _cycles(edges) == [["edge_mmer.bundle", "edge_mmer.train"]]
