"""B12: a huge ``manifest.json`` is refused by its size before it is read (before the fix a 100 GB
sparse manifest ended in a MemoryError traceback, and a 2 GB one was read into memory for 7 s first)."""

from __future__ import annotations

import hashlib
import json
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


def test_a_damaged_svm_model_is_named_once(tmp_path: Path) -> None:
    """B16: the error named "bundle file 'svm/...':" twice."""
    import shutil

    from support.paths import DEMO_BUNDLE

    from edge_mmer.bundle import reseal_manifest

    bdir = tmp_path / "bundle"
    shutil.copytree(DEMO_BUNDLE, bdir)
    damaged = b"svm_type c_svc\nkernel_type nonsense\n"
    (bdir / "svm" / "face.model").write_bytes(damaged)
    manifest = json.loads((bdir / "manifest.json").read_text())
    manifest["files"]["svm/face.model"] = {"sha256": hashlib.sha256(damaged).hexdigest(), "bytes": len(damaged)}
    (bdir / "manifest.json").write_text(json.dumps(manifest))
    reseal_manifest(bdir)
    with pytest.raises(BundleError) as info:
        read_bundle(bdir).load_svm("face")
    assert str(info.value).count("svm/face.model") == 1, str(info.value)
