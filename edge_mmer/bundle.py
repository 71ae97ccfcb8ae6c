"""The model bundle: a directory with ``manifest.json``; the only thing that passes from training
to conversion to the runtime. Torch-free, pickle-free.

Layout (schema ``"edge-mmer/bundle"``, ``schema_version`` 1)::

    manifest.json
      schema, schema_version    "edge-mmer/bundle", 1
      model_id                  "<config name>-<10 hex>" unless given: a hash of the files' sha256,
                                config, labels and synthetic flag (same training -> same id)
      created                   UTC ISO-8601 ("2024-05-01T12:00:00+00:00")
      synthetic                 true when trained on the synthetic data set
      labels                    ["neutral", ...]  (must equal config.labels)
      config                    ModelConfig.to_dict() (front ends, networks, svm, fuzzy, train)
      description                optional free text
      networks   {name: {weights: file, inputs: [io], outputs: [io], artifacts: {kind: {file, ...}}, ...}}
                 io = {name, shape: [int | "dynamic_axis_name"], dtype}; artifacts are the
                 converters' (onnx fp32/fp16/int8, TensorRT plans); each needs a listed "file"
      selection  {modality: file | {file, ...}}   (the chi-square arrays, safetensors)
      svms       {channel: {model: file (LIBSVM text), scaling: {lower, upper, lo, hi}, c, gamma, cv_accuracy, ...}}
                 (optional n_features must equal len(scaling.lo))

    Unknown top-level fields are errors; network and svm entries and selection objects may carry
    extra keys (e.g. ``class``, ``arch``, ``n_features``); their required keys are strict.
      fuzzy      {...}   the fuzzy module's JSON (integral method, channels, densities, lambda)
      metrics    {...}   free JSON
      provenance {...}   dataset, seed, code version, git commit, python/torch versions, calibration set hash
      files      {relative path: {sha256, bytes}}   EVERY file in the bundle except manifest.json
      manifest_sha256    sha256 of manifest.json's bytes with this value replaced by 64 zeros

Why ``manifest_sha256``: schema validation alone cannot notice a flipped bit inside a number
(a fuzzy density 0.3 -> 0.2, a metric, a timestamp) or an ``e`` -> ``E`` in ``1e-06``; those
change decisions silently. With the self-digest, any changed byte of any file, manifest included,
is an error naming the file or field. A deliberate hand edit is resealed with
:func:`reseal_manifest`. The digest is over the raw bytes, so formatting is free.

Writers: :class:`BundleWriter` (training) stages every file in a hidden sibling directory and
renames it into place when :meth:`BundleWriter.write_manifest` runs, so a crashed run leaves no
half bundle; :func:`update_manifest` (converters) replaces one section, adds files, recomputes
their hashes and rewrites the manifest atomically. One writer per section; no locking.

Readers: :func:`read_bundle` (raises :class:`BundleError` on the first problem) and
:func:`verify_bundle` (returns every problem as text). Pickle-format files (``.pkl``, ``.pickle``,
``.pt``, ``.pth``, ``.ckpt``, ``.joblib``) are refused outright, listed or not; other unlisted files
are warnings.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np
from safetensors.numpy import load as _st_load
from safetensors.numpy import save as _st_save

from edge_mmer.config import ConfigError, ModelConfig, config_from_dict
from edge_mmer.errors import BundleError
from edge_mmer.hashing import is_sha256_hex, sha256_bytes, sha256_file
from edge_mmer.provenance import provenance as default_provenance

if TYPE_CHECKING:
    from edge_mmer.svm import TrainedSVM

__all__ = [
    "MANIFEST",
    "PICKLE_SUFFIXES",
    "SCHEMA",
    "SCHEMA_VERSION",
    "Bundle",
    "BundleError",
    "BundleWriter",
    "default_provenance",
    "describe_bundle",
    "parse_manifest",
    "read_bundle",
    "reseal_manifest",
    "sha256_file",
    "update_manifest",
    "validate_manifest",
    "verify_bundle",
]

logger = logging.getLogger(__name__)

SCHEMA = "edge-mmer/bundle"
SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".joblib"})
DTYPES = frozenset({"float32", "float16", "bfloat16", "float64", "int8", "uint8", "int16", "int32", "int64", "bool"})
_ZERO_DIGEST = "0" * 64
_MAX_MANIFEST_BYTES = 64 << 20
_TOP_LEVEL = (
    "schema",
    "schema_version",
    "model_id",
    "created",
    "synthetic",
    "description",
    "labels",
    "config",
    "networks",
    "selection",
    "svms",
    "fuzzy",
    "metrics",
    "provenance",
    "files",
    "manifest_sha256",
)
_OWNED = frozenset({"schema", "schema_version", "files", "manifest_sha256"})
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$")


def _file_error(path: Path, rel: str, message: str) -> BundleError:
    return BundleError(path, f"bundle file '{rel}'", message)


def _field_error(path: Path, field_path: str, message: str) -> BundleError:
    return BundleError(path, f"{MANIFEST} field '{field_path}'", message)


# ----------------------------------------------------------------------------------- helpers


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _tname(v: object) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        type(None): "null",
    }.get(type(v), type(v).__name__)


def _short(v: object, limit: int = 60) -> str:
    try:
        text = json.dumps(v, ensure_ascii=True)
    except (TypeError, ValueError):
        text = repr(v)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _rel_problem(rel: object) -> str | None:
    """Why ``rel`` is not an acceptable bundle-relative path (None when it is)."""
    if not isinstance(rel, str) or not rel:
        return "a path must be a non-empty string"
    if len(rel) > 512:
        return "path too long"
    if rel.startswith("/") or "\\" in rel or ":" in rel or rel.startswith("~"):
        return (
            f"path {rel!r} escapes the bundle directory (absolute paths, drive letters and backslashes are not allowed)"
        )
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in rel):
        return "path contains control characters"
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return f"path {rel!r} escapes the bundle directory or is not normalised ('..', '.', '//' are not allowed)"
    if rel == MANIFEST:
        return f"{MANIFEST} cannot be listed in files"
    if PurePosixPath(rel).suffix.lower() in PICKLE_SUFFIXES:
        return f"refusing pickle-format file {rel!r} (edge-mmer bundles never contain pickles)"
    return None


def _strict_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=True, allow_nan=False) + "\n"


def _write_atomic(path: Path, data: bytes) -> None:
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


# --------------------------------------------------------------------------- manifest parsing


def parse_manifest(data: bytes, path: str | os.PathLike[str] = ".") -> dict[str, Any]:
    """Strict JSON parse of manifest bytes (UTF-8, no NaN/Infinity, no duplicate keys, an object).

    Checks the schema id and version, then the ``manifest_sha256`` self-digest; does not validate
    the remaining fields (see :func:`validate_manifest`). Raises :class:`BundleError`.
    """
    bdir = Path(path)
    if len(data) > _MAX_MANIFEST_BYTES:
        raise BundleError(bdir, MANIFEST, f"too large ({len(data)} bytes)")
    try:
        text = data.decode("utf-8")
        manifest = json.loads(text, object_pairs_hook=_strict_pairs, parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise BundleError(bdir, MANIFEST, f"not valid UTF-8 (byte {exc.start}): corrupted") from None
    except RecursionError:
        raise BundleError(bdir, MANIFEST, "not valid JSON: nested too deeply") from None
    except ValueError as exc:
        raise BundleError(bdir, MANIFEST, f"not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise BundleError(bdir, MANIFEST, f"expected a JSON object, got {_tname(manifest)}")
    _check_schema_id(manifest, bdir)
    claimed = manifest.get("manifest_sha256")
    if not is_sha256_hex(claimed):
        raise _field_error(bdir, "manifest_sha256", f"expected 64 lower-case hex digits, got {_short(claimed)}")
    token = f'"{claimed}"'.encode("ascii")
    if data.count(token) != 1:
        raise _field_error(bdir, "manifest_sha256", "the digest must appear exactly once in the file")
    actual = sha256_bytes(data.replace(token, f'"{_ZERO_DIGEST}"'.encode("ascii")))
    if actual != claimed:
        raise BundleError(
            bdir,
            MANIFEST,
            f"content does not match manifest_sha256 (manifest says {claimed}, content hashes to {actual}): "
            "corrupted, or edited by hand (after a deliberate edit run edge_mmer.bundle.reseal_manifest)",
        )
    return manifest


def _check_schema_id(manifest: Mapping[str, Any], bdir: Path) -> None:
    schema = manifest.get("schema")
    if schema != SCHEMA:
        raise _field_error(
            bdir, "schema", f"expected {SCHEMA!r}, got {_short(schema)}: not an edge-mmer bundle manifest"
        )
    version = manifest.get("schema_version")
    if not _is_int(version) or version != SCHEMA_VERSION:
        raise _field_error(bdir, "schema_version", f"unsupported: expected {SCHEMA_VERSION}, got {_short(version)}")


# ------------------------------------------------------------------------ manifest validation


def validate_manifest(manifest: Any, path: str | os.PathLike[str] = ".") -> None:
    """Validate every field of a manifest dict (types, values, paths, cross-references).

    Does not touch the filesystem or the digest. Raises :class:`BundleError` naming the field.
    """
    bdir = Path(path)

    def err(field_path: str, message: str) -> BundleError:
        return _field_error(bdir, field_path, message)

    if not isinstance(manifest, dict):
        raise BundleError(bdir, MANIFEST, f"expected a JSON object, got {_tname(manifest)}")
    _check_schema_id(manifest, bdir)
    for key in manifest:
        if key not in _TOP_LEVEL:
            raise err(str(key), f"unknown field (known: {', '.join(_TOP_LEVEL)})")
    types: dict[str, tuple[type, str]] = {
        "model_id": (str, "a string"),
        "created": (str, "a string"),
        "synthetic": (bool, "true or false"),
        "labels": (list, "a list"),
        "config": (dict, "an object"),
        "networks": (dict, "an object"),
        "selection": (dict, "an object"),
        "svms": (dict, "an object"),
        "fuzzy": (dict, "an object"),
        "metrics": (dict, "an object"),
        "provenance": (dict, "an object"),
        "files": (dict, "an object"),
        "manifest_sha256": (str, "a string"),
    }
    for key, (typ, desc) in types.items():
        if key not in manifest:
            raise err(key, "missing")
        if not isinstance(manifest[key], typ):
            raise err(key, f"expected {desc}, got {_tname(manifest[key])}")

    if "description" in manifest and not isinstance(manifest["description"], str):
        raise err("description", f"expected a string, got {_tname(manifest['description'])}")
    if not _MODEL_ID.match(manifest["model_id"]):
        raise err("model_id", f"expected 1-128 characters [A-Za-z0-9._+-], got {_short(manifest['model_id'])}")
    created = manifest["created"]
    try:
        stamp = _dt.datetime.fromisoformat(created[:-1] + "+00:00" if created.endswith("Z") else created)
    except ValueError:
        raise err("created", f"expected an ISO-8601 UTC time, got {_short(created)}") from None
    if stamp.tzinfo is None:
        raise err("created", f"expected a timezone (UTC), got {_short(created)}")
    if not is_sha256_hex(manifest["manifest_sha256"]):
        raise err("manifest_sha256", "expected 64 lower-case hex digits")

    labels = manifest["labels"]
    if len(labels) < 2 or not all(isinstance(v, str) and v for v in labels) or len(set(labels)) != len(labels):
        raise err("labels", f"expected two or more distinct non-empty strings, got {_short(labels)}")
    try:
        config = config_from_dict(manifest["config"])
    except (ConfigError, TypeError, ValueError) as exc:
        raise err("config", str(exc)) from None
    if list(config.labels) != labels:
        raise err("labels", f"{_short(labels)} differ from config.labels {_short(list(config.labels))}")

    files: dict[str, Any] = manifest["files"]
    for rel, entry in files.items():
        fp = f"files.{rel}"
        problem = _rel_problem(rel)
        if problem:
            raise err(fp, problem)
        if not isinstance(entry, dict) or set(entry) != {"sha256", "bytes"}:
            raise err(fp, f"expected an object with exactly 'sha256' and 'bytes', got {_short(entry)}")
        if not is_sha256_hex(entry["sha256"]):
            raise err(f"{fp}.sha256", f"expected 64 lower-case hex digits, got {_short(entry['sha256'])}")
        if not _is_int(entry["bytes"]) or entry["bytes"] < 0:
            raise err(f"{fp}.bytes", f"expected a non-negative integer, got {_short(entry['bytes'])}")

    def ref(field_path: str, value: Any) -> None:
        if not isinstance(value, str):
            raise err(field_path, f"expected a file path string, got {_tname(value)}")
        problem = _rel_problem(value)
        if problem:
            raise err(field_path, problem)
        if value not in files:
            raise err(field_path, f"file {value!r} is not listed in files")

    def name(field_path: str, key: object) -> None:
        if not isinstance(key, str) or not _NAME.match(key):
            raise err(field_path, f"expected a name of 1-128 characters [A-Za-z0-9_.+-], got {_short(key)}")

    for net, entry in manifest["networks"].items():
        fp = f"networks.{net}"
        name(fp, net)
        if not isinstance(entry, dict):
            raise err(fp, f"expected an object, got {_tname(entry)}")
        for key in ("weights", "inputs", "outputs", "artifacts"):
            if key not in entry:
                raise err(f"{fp}.{key}", "missing")
        ref(f"{fp}.weights", entry["weights"])
        for kind in ("inputs", "outputs"):
            _check_io(entry[kind], f"{fp}.{kind}", err)
        artifacts = entry["artifacts"]
        if not isinstance(artifacts, dict):
            raise err(f"{fp}.artifacts", f"expected an object, got {_tname(artifacts)}")
        for art, spec in artifacts.items():
            ap = f"{fp}.artifacts.{art}"
            name(ap, art)
            if not isinstance(spec, dict):
                raise err(ap, f"expected an object with a 'file', got {_tname(spec)}")
            if "file" not in spec:
                raise err(f"{ap}.file", "missing")
            ref(f"{ap}.file", spec["file"])

    for modality, spec in manifest["selection"].items():
        name(f"selection.{modality}", modality)
        if isinstance(spec, dict):
            if "file" not in spec:
                raise err(f"selection.{modality}.file", "missing")
            ref(f"selection.{modality}.file", spec["file"])
        else:
            ref(f"selection.{modality}", spec)

    svm_keys = ("model", "scaling", "c", "gamma", "cv_accuracy")
    for channel, entry in manifest["svms"].items():
        fp = f"svms.{channel}"
        name(fp, channel)
        if not isinstance(entry, dict):
            raise err(fp, f"expected an object, got {_tname(entry)}")
        for key in svm_keys:
            if key not in entry:
                raise err(f"{fp}.{key}", "missing")
        ref(f"{fp}.model", entry["model"])
        for key in ("c", "gamma"):
            if not _is_num(entry[key]) or entry[key] <= 0:
                raise err(f"{fp}.{key}", f"expected a positive number, got {_short(entry[key])}")
        acc = entry["cv_accuracy"]
        if not _is_num(acc) or not 0 <= acc <= 1:
            raise err(f"{fp}.cv_accuracy", f"expected a number in [0, 1], got {_short(acc)}")
        _check_scaling(entry["scaling"], f"{fp}.scaling", err)
        if "n_features" in entry and entry["n_features"] != len(entry["scaling"]["lo"]):
            raise err(
                f"{fp}.n_features",
                f"{_short(entry['n_features'])} differs from the scaling's {len(entry['scaling']['lo'])} features",
            )


def _check_io(items: Any, fp: str, err: Any) -> None:
    if not isinstance(items, list):
        raise err(fp, f"expected a list, got {_tname(items)}")
    seen: set[str] = set()
    for i, io in enumerate(items):
        ip = f"{fp}[{i}]"
        if not isinstance(io, dict) or set(io) != {"name", "shape", "dtype"}:
            raise err(ip, f"expected an object with exactly name, shape, dtype, got {_short(io)}")
        if not isinstance(io["name"], str) or not io["name"] or len(io["name"]) > 128:
            raise err(f"{ip}.name", f"expected a non-empty string, got {_short(io['name'])}")
        if io["name"] in seen:
            raise err(f"{ip}.name", f"duplicate name {io['name']!r}")
        seen.add(io["name"])
        shape = io["shape"]
        if (
            not isinstance(shape, list)
            or len(shape) > 16
            or not all((_is_int(d) and 0 <= d < 2**31) or (isinstance(d, str) and 0 < len(d) <= 64) for d in shape)
        ):
            raise err(f"{ip}.shape", f"expected a list of non-negative ints or dynamic-axis names, got {_short(shape)}")
        if not isinstance(io["dtype"], str) or io["dtype"] not in DTYPES:
            raise err(f"{ip}.dtype", f"expected one of {', '.join(sorted(DTYPES))}, got {_short(io['dtype'])}")


def _check_scaling(scaling: Any, fp: str, err: Any) -> None:
    if not isinstance(scaling, dict):
        raise err(fp, f"expected an object, got {_tname(scaling)}")
    for key in scaling:
        if key not in ("lower", "upper", "lo", "hi"):
            raise err(f"{fp}.{key}", "unknown field (known: lower, upper, lo, hi)")
    if scaling.get("lower", -1.0) != -1.0 or isinstance(scaling.get("lower"), bool):
        raise err(f"{fp}.lower", f"only -1 is supported, got {_short(scaling.get('lower'))}")
    if scaling.get("upper", 1.0) != 1.0 or isinstance(scaling.get("upper"), bool):
        raise err(f"{fp}.upper", f"only 1 is supported, got {_short(scaling.get('upper'))}")
    for key in ("lo", "hi"):
        values = scaling.get(key)
        if not isinstance(values, list) or not values or not all(_is_num(v) for v in values):
            raise err(f"{fp}.{key}", "expected a non-empty list of finite numbers")
    if len(scaling["lo"]) != len(scaling["hi"]):
        raise err(f"{fp}.hi", f"length {len(scaling['hi'])} differs from lo ({len(scaling['lo'])})")
    for i, (lo, hi) in enumerate(zip(scaling["lo"], scaling["hi"], strict=True)):
        if hi < lo:
            raise err(f"{fp}.hi", f"hi[{i}] = {hi} < lo[{i}] = {lo}")


# ----------------------------------------------------------------------------- file checking


def _inside(bdir: Path, rel: str) -> Path | None:
    target = bdir / rel
    try:
        resolved = target.resolve()
        root = bdir.resolve()
    except (OSError, RuntimeError):
        return None
    return target if resolved == root or root in resolved.parents else None


def _check_file(bdir: Path, rel: str, entry: Mapping[str, Any]) -> BundleError | None:
    target = _inside(bdir, rel)
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


def _walk(bdir: Path) -> list[str]:
    out: list[str] = []
    for root, dirs, names in os.walk(bdir, followlinks=False):
        dirs.sort()
        for fname in sorted(names):
            out.append(Path(root, fname).relative_to(bdir).as_posix())
    return out


def _check_files(
    bdir: Path, manifest: Mapping[str, Any], skip: frozenset[str] = frozenset()
) -> tuple[list[BundleError], list[str]]:
    errors: list[BundleError] = []
    warnings: list[str] = []
    files: Mapping[str, Any] = manifest["files"]
    for rel in sorted(files):
        if rel in skip:
            continue
        problem = _check_file(bdir, rel, files[rel])
        if problem is not None:
            errors.append(problem)
    for rel in _walk(bdir):
        if rel == MANIFEST or rel in files:
            continue
        if PurePosixPath(rel).suffix.lower() in PICKLE_SUFFIXES:
            errors.append(_file_error(bdir, rel, "refusing pickle-format file in the bundle (never loaded, remove it)"))
        elif rel not in skip:
            warnings.append(f"{bdir}: bundle file '{rel}': not listed in {MANIFEST} files (ignored)")
    return errors, warnings


def _read_manifest_bytes(bdir: Path) -> bytes:
    if not bdir.is_dir():
        raise BundleError(bdir, "bundle", "not a directory" if bdir.exists() else "no such bundle directory")
    mpath = bdir / MANIFEST
    if not mpath.is_file():
        raise BundleError(bdir, MANIFEST, "missing: not a model bundle (or an interrupted write)")
    try:
        return mpath.read_bytes()
    except OSError as exc:
        raise BundleError(bdir, MANIFEST, f"cannot read: {exc.strerror or exc}") from None


# ---------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Bundle:
    """A read (and normally verified) bundle; file accessors verify hashes again at load time."""

    path: Path
    manifest: dict[str, Any]
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def model_id(self) -> str:
        return str(self.manifest["model_id"])

    @property
    def synthetic(self) -> bool:
        return bool(self.manifest["synthetic"])

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.manifest["labels"])

    @property
    def config(self) -> ModelConfig:
        return config_from_dict(self.manifest["config"])

    @property
    def networks(self) -> dict[str, Any]:
        return dict(self.manifest["networks"])

    @property
    def svms(self) -> dict[str, Any]:
        return dict(self.manifest["svms"])

    @property
    def selection(self) -> dict[str, Any]:
        """modality -> file, or -> {"file": ..., extra keys} (both forms are accepted)."""
        return dict(self.manifest["selection"])

    def selection_file(self, modality: str) -> str:
        """The relative file of ``selection.<modality>`` (either form)."""
        spec = self.manifest["selection"].get(modality)
        if spec is None:
            raise _field_error(self.path, f"selection.{modality}", "no such modality")
        return str(spec["file"] if isinstance(spec, dict) else spec)

    @property
    def fuzzy(self) -> dict[str, Any]:
        return dict(self.manifest["fuzzy"])

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.manifest["metrics"])

    @property
    def provenance(self) -> dict[str, Any]:
        return dict(self.manifest["provenance"])

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        return dict(self.manifest["files"])

    def file(self, rel: str) -> Path:
        """Absolute path of a listed file (no hashing here: use the ``read_*``/``load_*`` methods)."""
        if rel not in self.manifest["files"]:
            raise _file_error(self.path, rel, f"not listed in {MANIFEST} files")
        target = _inside(self.path, rel)
        if target is None:
            raise _file_error(self.path, rel, "resolves outside the bundle directory")
        return target

    def read_bytes(self, rel: str) -> bytes:
        """The file's bytes, checked against the manifest's size and sha256 (the bytes returned
        are the bytes hashed: no window between check and use)."""
        target = self.file(rel)
        entry = self.manifest["files"][rel]
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            raise _file_error(self.path, rel, "missing (listed in manifest.json files)") from None
        except OSError as exc:
            raise _file_error(self.path, rel, f"cannot read: {exc.strerror or exc}") from None
        if len(data) != entry["bytes"]:
            raise _file_error(
                self.path,
                rel,
                f"size mismatch (manifest says {entry['bytes']} bytes, file has {len(data)}): truncated or replaced",
            )
        digest = sha256_bytes(data)
        if digest != entry["sha256"]:
            raise _file_error(self.path, rel, f"sha256 mismatch (manifest says {entry['sha256']}, file has {digest})")
        return data

    def read_text(self, rel: str) -> str:
        data = self.read_bytes(rel)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _file_error(self.path, rel, f"not UTF-8 text (byte {exc.start})") from None

    def read_json(self, rel: str) -> Any:
        try:
            return json.loads(self.read_text(rel), parse_constant=_reject_constant)
        except ValueError as exc:
            raise _file_error(self.path, rel, f"not valid JSON: {exc}") from None

    def load_tensors(self, rel: str) -> dict[str, np.ndarray]:
        """A safetensors file as numpy arrays (hash verified at load time)."""
        data = self.read_bytes(rel)
        try:
            return dict(_st_load(data))
        except Exception as exc:  # safetensors raises its own error type on malformed input
            raise _file_error(self.path, rel, f"not a valid safetensors file: {exc}") from None

    def load_svm(self, channel: str) -> TrainedSVM:
        """The LIBSVM model of ``svms.<channel>`` with its scaling (hash verified at load time)."""
        from edge_mmer.svm import SVMModelError, svm_from_bytes

        entry = self.manifest["svms"].get(channel)
        if entry is None:
            raise _field_error(
                self.path,
                f"svms.{channel}",
                f"no such SVM channel (have: {', '.join(self.manifest['svms']) or 'none'})",
            )
        data = self.read_bytes(entry["model"])
        try:
            return svm_from_bytes(
                data,
                entry["scaling"],
                len(self.labels),
                source=f"{self.path}: bundle file '{entry['model']}'",
                c=entry["c"],
                cv_accuracy=entry["cv_accuracy"],
            )
        except SVMModelError as exc:
            raise _file_error(self.path, entry["model"], str(exc)) from None


def read_bundle(path: str | os.PathLike[str], verify: bool = True) -> Bundle:
    """Read a bundle. Always: strict JSON, schema id/version, manifest digest, every field.
    With ``verify`` (default) also every listed file's presence, size and sha256, path escapes
    and pickle files. Raises :class:`BundleError` on the first problem; warnings are logged."""
    bdir = Path(path)
    manifest = parse_manifest(_read_manifest_bytes(bdir), bdir)
    validate_manifest(manifest, bdir)
    warnings: list[str] = []
    if verify:
        errors, warnings = _check_files(bdir, manifest)
        if errors:
            raise errors[0]
        for w in warnings:
            logger.warning("%s", w)
    return Bundle(path=bdir, manifest=manifest, warnings=tuple(warnings))


def verify_bundle(path: str | os.PathLike[str]) -> list[str]:
    """Every problem of a bundle as text; empty when the bundle is valid. Warnings (unlisted,
    non-pickle files) start with ``"warning: "`` and do not make a bundle invalid."""
    bdir = Path(path)
    try:
        manifest = parse_manifest(_read_manifest_bytes(bdir), bdir)
        validate_manifest(manifest, bdir)
    except BundleError as exc:
        return [str(exc)]
    errors, warnings = _check_files(bdir, manifest)
    return [str(e) for e in errors] + [f"warning: {w}" for w in warnings]


# ---------------------------------------------------------------------------------- writing


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
        unregistered = sorted(set(_walk(self.staging)) - set(self._files))
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
            config = body.get("config")
            name = str(config.get("name", "model")) if isinstance(config, dict) else "model"
            identity = {
                "files": {rel: e["sha256"] for rel, e in files.items()},
                "config": body.get("config"),
                "labels": body.get("labels"),
                "synthetic": body.get("synthetic"),
            }
            digest = sha256_bytes(json.dumps(identity, sort_keys=True, ensure_ascii=True).encode("ascii"))
            body["model_id"] = f"{name}-{digest[:10]}"
        body["manifest_sha256"] = _ZERO_DIGEST
        body = _ordered(body)
        validate_manifest(body, self.out_dir)
        _write_atomic(self.staging / MANIFEST, _seal(body))
        self._commit()
        logger.info("bundle %s written: %s, %d files", self.out_dir, body["model_id"], len(files))
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
    keys = section.split(".")
    if not section or any(not k for k in keys):
        raise ValueError(f"update_manifest: bad section {section!r}")
    if keys[0] in _OWNED:
        raise ValueError(f"update_manifest: section {keys[0]!r} is maintained by the bundle module")
    if keys[0] not in _TOP_LEVEL:
        raise ValueError(
            f"update_manifest: unknown section {keys[0]!r} (known: {', '.join(k for k in _TOP_LEVEL if k not in _OWNED)})"
        )
    if isinstance(new_files, Mapping):
        to_write: dict[str, bytes | os.PathLike[str]] = dict(new_files)
        added = list(to_write)
    else:
        to_write = {}
        added = list(new_files)
    removed = list(remove_files)
    for rel in added + removed:
        problem = _rel_problem(rel)
        if problem:
            raise ValueError(f"{bdir}: bundle file {rel!r}: {problem}")

    manifest = parse_manifest(_read_manifest_bytes(bdir), bdir)
    validate_manifest(manifest, bdir)
    errors, _ = _check_files(bdir, manifest, skip=frozenset(added) | frozenset(removed))
    if errors:
        raise errors[0]

    for rel, data in to_write.items():
        target = _inside(bdir, rel)
        if target is None:
            raise _file_error(bdir, rel, "resolves outside the bundle directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, (bytes, bytearray, memoryview)):
            _write_atomic(target, bytes(data))
        elif Path(data).resolve() != target.resolve():
            shutil.copyfile(data, target.with_name(f".{target.name}.tmp"))
            os.replace(target.with_name(f".{target.name}.tmp"), target)
    files = dict(manifest["files"])
    for rel in removed:
        files.pop(rel, None)
    for rel in added:
        target = _inside(bdir, rel)
        if target is None or not target.is_file():
            raise _file_error(bdir, rel, "new file is missing or outside the bundle directory")
        files[rel] = {"sha256": sha256_file(target), "bytes": target.stat().st_size}
    manifest["files"] = dict(sorted(files.items()))

    parent: Any = manifest
    for i, key in enumerate(keys[:-1]):
        if not isinstance(parent, dict) or key not in parent or not isinstance(parent[key], dict):
            raise ValueError(f"update_manifest: {'.'.join(keys[: i + 1])!r} is not an existing object in the manifest")
        parent = parent[key]
    parent[keys[-1]] = json.loads(json.dumps(value, allow_nan=False))
    validate_manifest(manifest, bdir)
    _write_atomic(bdir / MANIFEST, _seal(_ordered(manifest)))
    for rel in removed:
        target = _inside(bdir, rel)
        if target is not None and target.is_file():
            target.unlink()
    logger.info("bundle %s: updated %s (%d new files, %d removed)", bdir, section, len(added), len(removed))
    return read_bundle(bdir, verify=False)


def reseal_manifest(bundle_dir: str | os.PathLike[str]) -> Bundle:
    """Recompute ``manifest_sha256`` after a deliberate hand edit of manifest.json.

    The edited manifest must still be valid and every listed file must verify."""
    bdir = Path(bundle_dir)
    data = _read_manifest_bytes(bdir)
    try:
        manifest = json.loads(data.decode("utf-8"), object_pairs_hook=_strict_pairs, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BundleError(bdir, MANIFEST, f"not valid JSON: {exc}") from None
    if isinstance(manifest, dict):
        manifest["manifest_sha256"] = _ZERO_DIGEST
    validate_manifest(manifest, bdir)
    errors, _ = _check_files(bdir, manifest)
    if errors:
        raise errors[0]
    _write_atomic(bdir / MANIFEST, _seal(_ordered(manifest)))
    return read_bundle(bdir)


# --------------------------------------------------------------------------------- describe


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def _shape(shape: list[Any]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _scalars(obj: Any, prefix: str = "", depth: int = 0) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    if isinstance(obj, dict) and depth < 3:
        for key, value in obj.items():
            out.extend(_scalars(value, f"{prefix}{key}." if isinstance(value, dict) else f"{prefix}{key}", depth + 1))
    elif not isinstance(obj, (dict, list)):
        out.append((prefix.rstrip("."), obj))
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return _short(value, 80) if not isinstance(value, str) else value


def describe_bundle(bundle: Bundle) -> str:
    """A human summary (``edge-mmer bundle show DIR``)."""
    m = bundle.manifest
    lines = [f"bundle      {bundle.path}", f"model id    {m['model_id']}"]
    if m["synthetic"]:
        lines.append(
            "synthetic   YES  *** SYNTHETIC MODEL: trained on generated data, NOT a real emotion recogniser ***"
        )
    else:
        lines.append(f"synthetic   no (dataset: {_fmt(m['provenance'].get('dataset', 'unknown'))})")
    if m.get("description"):
        lines.append(f"description {m['description']}")
    lines.append(f"created     {m['created']}")
    lines.append(f"labels      {', '.join(m['labels'])}")
    cfg = m["config"]
    audio = cfg.get("audio", {}) if isinstance(cfg, dict) else {}
    face = cfg.get("face", {}) if isinstance(cfg, dict) else {}
    if audio:
        lines.append(
            f"audio       {audio.get('sample_rate')} Hz, {audio.get('n_mels')} mels, hop {audio.get('hop_length')}, utterances {audio.get('min_utterance_s')}-{audio.get('max_utterance_s')} s"
        )
    if face:
        lines.append(
            f"face        {face.get('detector')} detector, crop {face.get('crop_size')} px, {face.get('analysis_fps')} fps, {face.get('frames_per_utterance')} frames/utterance"
        )
    lines.append("networks" if m["networks"] else "networks    none")
    for name, net in m["networks"].items():
        size = m["files"].get(net["weights"], {}).get("bytes", 0)
        lines.append(f"  {name}: {net['weights']} ({_size(size)})")
        for kind, arrow in (("inputs", "in "), ("outputs", "out")):
            for io in net[kind]:
                lines.append(f"    {arrow} {io['name']} {io['dtype']} {_shape(io['shape'])}")
        if net["artifacts"]:
            for art, spec in net["artifacts"].items():
                extra = ", ".join(
                    f"{k}={_fmt(v)}" for k, v in spec.items() if k != "file" and not isinstance(v, (dict, list))
                )
                lines.append(f"    artifact {art}: {spec['file']}" + (f" ({extra})" if extra else ""))
        else:
            lines.append("    artifacts: none (run the converter)")
    if m["selection"]:
        parts = []
        for modality, spec in m["selection"].items():
            if isinstance(spec, dict):
                extra = ", ".join(
                    f"{k}={_fmt(v)}" for k, v in spec.items() if k != "file" and not isinstance(v, (dict, list))
                )
                parts.append(f"{modality}: {spec['file']}" + (f" ({extra})" if extra else ""))
            else:
                parts.append(f"{modality}: {spec}")
        lines.append("selection   " + "; ".join(parts))
    lines.append("svms" if m["svms"] else "svms        none")
    for channel, svm in m["svms"].items():
        lines.append(
            f"  {channel}: C={svm['c']:g} gamma={svm['gamma']:g} cv accuracy={svm['cv_accuracy']:.3f} "
            f"features={len(svm['scaling']['lo'])} ({svm['model']})"
        )
    fuzzy = m["fuzzy"]
    if fuzzy:
        method = fuzzy.get("integral", fuzzy.get("method", "?"))
        parts = [f"{method} integral"]
        if "channels" in fuzzy:
            parts.append(f"channels {_fmt(fuzzy['channels'])}")
        for key in ("densities", "lambdas", "lambda"):
            if key in fuzzy:
                parts.append(f"{key} {_fmt(fuzzy[key])}")
        lines.append("fuzzy       " + ", ".join(parts))
    else:
        lines.append("fuzzy       none")
    accuracy = m["metrics"].get("test_accuracy")
    if isinstance(accuracy, dict) and all(_is_num(v) for v in accuracy.values()):
        shown = ", ".join(f"{k} {100 * v:.1f} %" for k, v in accuracy.items())
        where = m["metrics"].get("split", "test")
        lines.append(f"accuracy    {shown} ({where})")
    metrics = _scalars(m["metrics"])
    if metrics:
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in metrics[:8])
        lines.append(f"metrics     {shown}" + (f" (+{len(metrics) - 8} more)" if len(metrics) > 8 else ""))
    total = sum(int(e["bytes"]) for e in m["files"].values())
    lines.append(f"files       {len(m['files'])} files, {_size(total)} (+ {MANIFEST})")
    prov = m["provenance"]
    if prov:
        keys = (
            "dataset",
            "seed",
            "code_version",
            "git_commit",
            "git_dirty",
            "python",
            "torch",
            "calibration_set_sha256",
        )
        shown = ", ".join(f"{k}={_fmt(prov[k])}" for k in keys if k in prov and prov[k] is not None)
        lines.append(f"provenance  {shown}")
    if bundle.warnings:
        lines.extend(f"warning     {w}" for w in bundle.warnings)
    return "\n".join(lines)
