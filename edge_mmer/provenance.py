"""Where a file came from: the code's version and git commit, library versions, the machine.

One writer of a bundle's ``provenance`` section (:func:`provenance`, used by training), one
installed-version probe (:func:`versions`, used by training, conversion, profiling and the
benchmarks), one git probe. Torch-free: a library's version comes from its installed metadata and
nothing is imported to find it.
"""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

from edge_mmer import __version__

__all__ = ["git_commit", "provenance", "version", "versions"]

_ROOT = Path(__file__).resolve().parent.parent


def version(dist: str) -> str | None:
    """The installed version of distribution ``dist`` (``"onnxruntime"``), None when absent."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions(*dists: str) -> dict[str, str | None]:
    """``{dist: version or None}`` for each distribution, in the order given."""
    return {d: version(d) for d in dists}


def git_commit() -> tuple[str | None, bool | None]:
    """(HEAD, dirty) of the checkout the code runs from; (None, None) outside a git checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_ROOT, capture_output=True, text=True, timeout=5,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=_ROOT,
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None, None
    return (head or None), bool(dirty)


def provenance(dataset: Any, seed: int, *, calibration_set_sha256: str | None = None, **extra: Any) -> dict[str, Any]:
    """A bundle's ``provenance`` section: dataset, seed, code version, git commit and whether the
    checkout had local changes, python / numpy / torch / libsvm versions, machine and platform, the
    calibration set hash (None until INT8 conversion records it); ``extra`` keys are added."""
    commit, dirty = git_commit()
    out: dict[str, Any] = {
        "dataset": dataset,
        "seed": int(seed),
        "code_version": __version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "python": platform.python_version(),
        **versions("numpy", "torch"),
        "libsvm": version("libsvm-official"),
        "trained_on": platform.machine(),
        "platform": platform.platform(),
        "calibration_set_sha256": calibration_set_sha256,
    }
    out.update(extra)
    return out
