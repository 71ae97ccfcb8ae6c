"""B12: a huge ``manifest.json`` is refused by its size before it is read (before the fix a 100 GB
sparse manifest ended in a MemoryError traceback, and a 2 GB one was read into memory for 7 s first)."""

from __future__ import annotations

import os
import resource
from pathlib import Path

import pytest

from edge_mmer.bundle import read_bundle
from edge_mmer.errors import BundleError


@pytest.mark.parametrize("size", [100 << 30, 2 << 30, (64 << 20) + 1])
def test_a_huge_manifest_is_refused_by_its_size_without_reading_it(tmp_path: Path, size: int) -> None:
    bdir = tmp_path / "bundle"
    bdir.mkdir()
    with (bdir / "manifest.json").open("wb") as fh:
        fh.truncate(size)  # sparse: no disk used
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(BundleError, match="too large"):
        read_bundle(bdir)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 32 * 1024, f"the manifest was read into memory ({grown_kib} KiB)"
    os.unlink(bdir / "manifest.json")
