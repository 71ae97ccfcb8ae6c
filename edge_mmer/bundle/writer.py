"""Writing a bundle: :class:`BundleWriter` (training), :func:`update_manifest` (converters and later
writers), :func:`reseal_manifest` (after a deliberate hand edit).

:class:`BundleWriter` stages every file in a hidden sibling directory and renames it into place when
:meth:`BundleWriter.write_manifest` runs, so a crashed run leaves no half bundle. :func:`update_manifest`
replaces one section, adds files, recomputes their hashes and rewrites the manifest atomically; it
verifies every other file first, so a corrupted bundle is never resealed. One writer per section; no
locking. Every manifest written is validated first and sealed with its ``manifest_sha256``.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from safetensors.numpy import save as _st_save

from edge_mmer.bundle.files import check_files, inside, read_manifest_bytes, walk, write_atomic
from edge_mmer.bundle.manifest import (
    _OWNED,
    _TOP_LEVEL,
    _ZERO_DIGEST,
    MANIFEST,
    SCHEMA,
    SCHEMA_VERSION,
    _file_error,
    _loads_strict,
    _rel_problem,
    parse_manifest,
    validate_manifest,
)
from edge_mmer.bundle.reader import Bundle, read_bundle
from edge_mmer.errors import BundleError
from edge_mmer.hashing import sha256_bytes, sha256_file

if TYPE_CHECKING:
    from edge_mmer.svm import TrainedSVM

__all__ = ["BundleWriter", "reseal_manifest", "update_manifest"]

log = logging.getLogger(__name__)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=True, allow_nan=False) + "\n"


def _seal(manifest: dict[str, Any]) -> bytes:
    """Serialise ``manifest`` with its ``manifest_sha256`` filled in."""
    body = dict(manifest)
    body["manifest_sha256"] = _ZERO_DIGEST
    text = _dumps(body)
    token = f'"{_ZERO_DIGEST}"'
    if text.count(token) != 1:
        raise ValueError("manifest: a value equal to the digest placeholder (64 zeros) is not allowed")
    digest = sha256_bytes(text.encode("ascii"))
    return text.replace(token, f'"{digest}"').encode("ascii")


def _ordered(manifest: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: manifest[k] for k in _TOP_LEVEL if k in manifest}
    out.update({k: v for k, v in manifest.items() if k not in out})
    return out


def _model_id(body: Mapping[str, Any], files: Mapping[str, Mapping[str, Any]]) -> str:
    """``<config name>-<10 hex>``: a hash of the files' sha256, config, labels and synthetic flag."""
    config = body.get("config")
    name = str(config.get("name", "model")) if isinstance(config, dict) else "model"
    identity = {
        "files": {rel: e["sha256"] for rel, e in files.items()},
        "config": body.get("config"),
        "labels": body.get("labels"),
        "synthetic": body.get("synthetic"),
    }
    digest = sha256_bytes(json.dumps(identity, sort_keys=True, ensure_ascii=True).encode("ascii"))
    return f"{name}-{digest[:10]}"


class BundleWriter:
    """Writes a new bundle. Files are staged in a hidden sibling directory; :meth:`write_manifest`
    hashes them, writes ``manifest.json`` and renames the directory into place.

    Use as a context manager to remove the staging directory when training fails.
    """

    def __init__(self, out_dir: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        self.out_dir = Path(out_dir)
        self.overwrite = overwrite
        self._refuse_existing()
        self.out_dir.parent.mkdir(parents=True, exist_ok=True)
        self.staging = self.out_dir.parent / f".{self.out_dir.name}.partial-{uuid.uuid4().hex[:12]}"
        self.staging.mkdir()
        self._files: list[str] = []
        self._done = False

    def _refuse_existing(self) -> None:
        if self.overwrite or not self.out_dir.exists():
            return
        if self.out_dir.is_dir() and not any(self.out_dir.iterdir()):
            return
        raise FileExistsError(f"{self.out_dir}: bundle directory already exists (pass overwrite=True to replace it)")

    def __enter__(self) -> BundleWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._done:
            self.abort()

    def abort(self) -> None:
        """Remove the staging directory; nothing is written to ``out_dir``."""
        self._done = True
        shutil.rmtree(self.staging, ignore_errors=True)

    def path(self, rel: str) -> Path:
        """Where to write ``rel`` yourself (in the staging directory); then call :meth:`add_file`."""
        self._check_rel(rel, adding=False)
        target = self.staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def _check_rel(self, rel: str, adding: bool = True) -> None:
        if self._done:
            raise RuntimeError(f"{self.out_dir}: bundle writer already finished")
        problem = _rel_problem(rel)
        if problem:
            raise ValueError(f"{self.out_dir}: bundle file {rel!r}: {problem}")
        if adding and rel in self._files:
            raise ValueError(f"{self.out_dir}: bundle file {rel!r} added twice")

    def add_file(self, rel_path: str, data: bytes | os.PathLike[str]) -> str:
        """Add bytes or a copy of a file (a file already at :meth:`path` is just registered)."""
        self._check_rel(rel_path)
        target = self.path(rel_path)
        if isinstance(data, (bytes, bytearray, memoryview)):
            target.write_bytes(bytes(data))
        else:
            src = Path(data)
            if not src.is_file():
                raise FileNotFoundError(f"{src}: no such file to add to the bundle as {rel_path!r}")
            if src.resolve() != target.resolve():
                shutil.copyfile(src, target)
        self._files.append(rel_path)
        return rel_path

    def add_safetensors(
        self, rel_path: str, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None
    ) -> str:
        arrays = {name: np.ascontiguousarray(value) for name, value in tensors.items()}
        meta = None if metadata is None else {str(k): str(v) for k, v in metadata.items()}
        return self.add_file(rel_path, _st_save(arrays, metadata=meta))

    def add_json(self, rel_path: str, obj: Any) -> str:
        return self.add_file(rel_path, _dumps(obj).encode("ascii"))

    def add_text(self, rel_path: str, text: str) -> str:
        return self.add_file(rel_path, text.encode("utf-8"))

    def add_svm(self, channel: str, trained: TrainedSVM, rel_path: str | None = None) -> dict[str, Any]:
        """Add a LIBSVM text model (default ``svm/<channel>.model``); returns its ``svms`` entry."""
        rel = rel_path or f"svm/{channel}.model"
        self.add_file(rel, trained.model_bytes())
        return trained.manifest_entry(rel)

    def write_manifest(self, manifest: Mapping[str, Any]) -> Path:
        """Fill schema, files, model_id/created (when absent) and the digest; validate; commit.

        Sections not given default to ``{}``. Returns the bundle directory.
        """
        if self._done:
            raise RuntimeError(f"{self.out_dir}: bundle writer already finished")
        for key in _OWNED:
            if key in manifest:
                raise ValueError(f"manifest field {key!r} is written by BundleWriter, do not set it")
        try:
            body: dict[str, Any] = json.loads(json.dumps(dict(manifest), allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"manifest is not JSON-serialisable (NaN/Infinity are not allowed): {exc}") from None
        unregistered = sorted(set(walk(self.staging)) - set(self._files))
        if unregistered:
            raise ValueError(f"{self.out_dir}: files written to the staging directory but never added: {unregistered}")
        files = {}
        for rel in sorted(self._files):
            target = self.staging / rel
            files[rel] = {"sha256": sha256_file(target), "bytes": target.stat().st_size}
        body["schema"] = SCHEMA
        body["schema_version"] = SCHEMA_VERSION
        body["files"] = files
        body.setdefault("created", _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat())
        for section in ("networks", "selection", "svms", "fuzzy", "metrics", "provenance"):
            body.setdefault(section, {})
        if "model_id" not in body:
            body["model_id"] = _model_id(body, files)
        body["manifest_sha256"] = _ZERO_DIGEST
        body = _ordered(body)
        validate_manifest(body, self.out_dir)
        write_atomic(self.staging / MANIFEST, _seal(body))
        self._commit()
        log.info("bundle %s written: %s, %d files", self.out_dir, body["model_id"], len(files))
        return self.out_dir

    def _commit(self) -> None:
        self._refuse_existing()
        backup: Path | None = None
        if self.out_dir.exists():
            if self.out_dir.is_dir() and not any(self.out_dir.iterdir()):
                self.out_dir.rmdir()
            else:
                backup = self.out_dir.parent / f".{self.out_dir.name}.old-{uuid.uuid4().hex[:12]}"
                os.replace(self.out_dir, backup)
        os.replace(self.staging, self.out_dir)
        self._done = True
        if backup is not None:
            if backup.is_dir():
                shutil.rmtree(backup, ignore_errors=True)
            else:
                backup.unlink()


# ------------------------------------------------------------------------------ update_manifest


def _section_keys(section: str) -> list[str]:
    keys = section.split(".")
    if not section or any(not k for k in keys):
        raise ValueError(f"update_manifest: bad section {section!r}")
    if keys[0] in _OWNED:
        raise ValueError(f"update_manifest: section {keys[0]!r} is maintained by the bundle module")
    if keys[0] not in _TOP_LEVEL:
        raise ValueError(
            f"update_manifest: unknown section {keys[0]!r} (known: "
            f"{', '.join(k for k in _TOP_LEVEL if k not in _OWNED)})"
        )
    return keys


def _write_new_files(bdir: Path, to_write: Mapping[str, bytes | os.PathLike[str]]) -> None:
    for rel, data in to_write.items():
        target = inside(bdir, rel)
        if target is None:
            raise _file_error(bdir, rel, "resolves outside the bundle directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, (bytes, bytearray, memoryview)):
            write_atomic(target, bytes(data))
        elif Path(data).resolve() != target.resolve():
            shutil.copyfile(data, target.with_name(f".{target.name}.tmp"))
            os.replace(target.with_name(f".{target.name}.tmp"), target)


def _relisted(bdir: Path, files: Mapping[str, Any], added: list[str], removed: list[str]) -> dict[str, Any]:
    """``files`` without ``removed``, with ``added`` (re)hashed from disk, sorted."""
    out = dict(files)
    for rel in removed:
        out.pop(rel, None)
    for rel in added:
        target = inside(bdir, rel)
        if target is None or not target.is_file():
            raise _file_error(bdir, rel, "new file is missing or outside the bundle directory")
        out[rel] = {"sha256": sha256_file(target), "bytes": target.stat().st_size}
    return dict(sorted(out.items()))


def _set_section(manifest: dict[str, Any], keys: list[str], value: Any) -> None:
    parent: Any = manifest
    for i, key in enumerate(keys[:-1]):
        if not isinstance(parent, dict) or key not in parent or not isinstance(parent[key], dict):
            raise ValueError(f"update_manifest: {'.'.join(keys[: i + 1])!r} is not an existing object in the manifest")
        parent = parent[key]
    parent[keys[-1]] = json.loads(json.dumps(value, allow_nan=False))


def update_manifest(
    bundle_dir: str | os.PathLike[str],
    section: str,
    value: Any,
    new_files: Iterable[str] | Mapping[str, bytes | os.PathLike[str]] = (),
    *,
    remove_files: Iterable[str] = (),
) -> Bundle:
    """Replace one manifest section and register files (for converters and later writers).

    ``section`` is a top-level field or a dotted path into existing objects, e.g.
    ``"networks.speech_encoder.artifacts"`` or ``"metrics"``. ``new_files`` are either relative
    paths already written inside the bundle, or a mapping of relative path -> bytes / source file
    to write. Their sha256 and size are (re)computed; ``remove_files`` are unlisted and deleted.
    Every other file is verified first, so a corrupted bundle is never resealed. The manifest is
    rewritten atomically. Returns the updated bundle.
    """
    bdir = Path(bundle_dir)
    keys = _section_keys(section)
    to_write: dict[str, bytes | os.PathLike[str]] = dict(new_files) if isinstance(new_files, Mapping) else {}
    added = list(to_write) if isinstance(new_files, Mapping) else list(new_files)
    removed = list(remove_files)
    for rel in added + removed:
        problem = _rel_problem(rel)
        if problem:
            raise ValueError(f"{bdir}: bundle file {rel!r}: {problem}")

    manifest = parse_manifest(read_manifest_bytes(bdir), bdir)
    validate_manifest(manifest, bdir)
    errors, _ = check_files(bdir, manifest, skip=frozenset(added) | frozenset(removed))
    if errors:
        raise errors[0]

    _write_new_files(bdir, to_write)
    manifest["files"] = _relisted(bdir, manifest["files"], added, removed)
    _set_section(manifest, keys, value)
    validate_manifest(manifest, bdir)
    write_atomic(bdir / MANIFEST, _seal(_ordered(manifest)))
    for rel in removed:
        target = inside(bdir, rel)
        if target is not None and target.is_file():
            target.unlink()
    log.info("bundle %s: updated %s (%d new files, %d removed)", bdir, section, len(added), len(removed))
    return read_bundle(bdir, verify=False)


def reseal_manifest(bundle_dir: str | os.PathLike[str]) -> Bundle:
    """Recompute ``manifest_sha256`` after a deliberate hand edit of manifest.json.

    The edited manifest must still be valid and every listed file must verify."""
    bdir = Path(bundle_dir)
    data = read_manifest_bytes(bdir)
    try:
        manifest = _loads_strict(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BundleError(bdir, MANIFEST, f"not valid JSON: {exc}") from None
    if isinstance(manifest, dict):
        manifest["manifest_sha256"] = _ZERO_DIGEST
    validate_manifest(manifest, bdir)
    errors, _ = check_files(bdir, manifest)
    if errors:
        raise errors[0]
    write_atomic(bdir / MANIFEST, _seal(_ordered(manifest)))
    return read_bundle(bdir)
