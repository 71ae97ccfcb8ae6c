"""Every package directory is installed: pyproject.toml lists it under [tool.setuptools] packages."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from test_import_contract import PACKAGE_DIRS

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_directory_is_listed() -> None:
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    listed = set(setup["packages"])
    assert setup["package-dir"] == {k: v for k, v in PACKAGE_DIRS.items() if k.startswith("edge_mmer")}
    found = set()
    for prefix, folder in PACKAGE_DIRS.items():
        if not prefix.startswith("edge_mmer"):
            continue
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([prefix, *rel.parts]))
    missing = sorted(found - listed)
    assert not missing, f"package directories missing from pyproject.toml packages: {missing}"
    assert listed - found == set(), f"pyproject.toml lists packages that do not exist: {sorted(listed - found)}"
