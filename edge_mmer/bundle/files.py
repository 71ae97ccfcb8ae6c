"""The bundle directory on disk: listed files checked against the manifest, stray files, atomic writes.

Readers check every listed file's presence, size and sha256 and refuse pickle-format files, listed or
not; writers replace files atomically (write a temporary sibling, fsync, rename), so a crash leaves
either the old file or the new one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from edge_mmer.bundle.manifest import _MAX_MANIFEST_BYTES as MAX_MANIFEST_BYTES
from edge_mmer.bundle.manifest import MANIFEST, PICKLE_SUFFIXES, _file_error
from edge_mmer.errors import BundleError
from edge_mmer.hashing import sha256_file

__all__ = ["check_files", "inside", "read_manifest_bytes", "walk", "write_atomic"]


def inside(bdir: Path, rel: str) -> Path | None:
    """``bdir / rel`` when it resolves inside the bundle directory (no symlink escape), else None."""
    target = bdir / rel
    try:
        resolved = target.resolve()
        root = bdir.resolve()
    except (OSError, RuntimeError):
        return None
    return target if resolved == root or root in resolved.parents else None


def _check_file(bdir: Path, rel: str, entry: Mapping[str, Any]) -> BundleError | None:
    target = inside(bdir, rel)
    if target is None:
        return _file_error(bdir, rel, "resolves outside the bundle directory (symlink?)")
    if not target.exists():
        return _file_error(bdir, rel, "missing (listed in manifest.json files)")
    if not target.is_file():
        return _file_error(bdir, rel, "not a regular file")
    size = target.stat().st_size
    if size != entry["bytes"]:
        return _file_error(
            bdir, rel, f"size mismatch (manifest says {entry['bytes']} bytes, file has {size}): truncated or replaced"
        )
    digest = sha256_file(target)
    if digest != entry["sha256"]:
        return _file_error(bdir, rel, f"sha256 mismatch (manifest says {entry['sha256']}, file has {digest})")
    return None


def walk(bdir: Path) -> list[str]:
    """Every file under ``bdir`` as a sorted relative POSIX path (symlinked directories not followed)."""
    out: list[str] = []
    for root, dirs, names in os.walk(bdir, followlinks=False):
        dirs.sort()
        for fname in sorted(names):
            out.append(Path(root, fname).relative_to(bdir).as_posix())
    return out


def check_files(
    bdir: Path, manifest: Mapping[str, Any], skip: frozenset[str] = frozenset()
) -> tuple[list[BundleError], list[str]]:
    """(errors, warnings) of the bundle's files: each listed file against its entry, then the unlisted
    ones (a pickle is an error, anything else a warning). ``skip``: paths a writer is about to replace."""
    errors: list[BundleError] = []
    warnings: list[str] = []
    files: Mapping[str, Any] = manifest["files"]
    for rel in sorted(files):
        if rel in skip:
            continue
        problem = _check_file(bdir, rel, files[rel])
        if problem is not None:
            errors.append(problem)
    for rel in walk(bdir):
        if rel == MANIFEST or rel in files:
            continue
        if PurePosixPath(rel).suffix.lower() in PICKLE_SUFFIXES:
            errors.append(_file_error(bdir, rel, "refusing pickle-format file in the bundle (never loaded, remove it)"))
        elif rel not in skip:
            warnings.append(f"{bdir}: bundle file '{rel}': not listed in {MANIFEST} files (ignored)")
    return errors, warnings


def read_manifest_bytes(bdir: Path) -> bytes:
    if not bdir.is_dir():
        raise BundleError(bdir, "bundle", "not a directory" if bdir.exists() else "no such bundle directory")
    mpath = bdir / MANIFEST
    if not mpath.is_file():
        raise BundleError(bdir, MANIFEST, "missing: not a model bundle (or an interrupted write)")
    try:
        with mpath.open("rb") as fh:  # the size is checked before the read: never a huge file into memory
            size = os.fstat(fh.fileno()).st_size
            if size > MAX_MANIFEST_BYTES:
                raise BundleError(bdir, MANIFEST, f"too large ({size} bytes, at most {MAX_MANIFEST_BYTES})")
            data = fh.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise BundleError(bdir, MANIFEST, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_MANIFEST_BYTES:  # it grew while it was read
        raise BundleError(bdir, MANIFEST, f"too large (more than {MAX_MANIFEST_BYTES} bytes)")
    return data


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: a temporary sibling, fsynced, then renamed over it."""
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
