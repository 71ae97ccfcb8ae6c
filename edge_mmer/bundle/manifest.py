"""The manifest's schema: its id and version, the strict JSON parse and the validation of every field.

Validation is declared, not coded field by field: :data:`_FIELDS` gives every top-level field's type,
:data:`_CHECKS` the value checks in the order they run (the cross-reference pass last: every file a
network, selection or SVM names must be listed in ``files``). Each error names the field:
``<bundle>: manifest.json field 'networks.fusion.weights': ...``. A manifest that passes is turned
into its read-only views (:mod:`edge_mmer.bundle.views`). Nothing here touches the filesystem.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from edge_mmer.bundle.views import BundleSpec, build_spec
from edge_mmer.config import ConfigError, ModelConfig, config_from_dict
from edge_mmer.errors import BundleError
from edge_mmer.hashing import is_sha256_hex, sha256_bytes

__all__ = ["DTYPES", "MANIFEST", "PICKLE_SUFFIXES", "SCHEMA", "SCHEMA_VERSION", "parse_manifest", "validate_manifest"]

SCHEMA = "edge-mmer/bundle"
SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".joblib"})
DTYPES = frozenset({"float32", "float16", "bfloat16", "float64", "int8", "uint8", "int16", "int32", "int64", "bool"})
_ZERO_DIGEST = "0" * 64
_MAX_MANIFEST_BYTES = 64 << 20
_TOP_LEVEL = ("schema", "schema_version", "model_id", "created", "synthetic", "description", "labels", "config",
              "networks", "selection", "svms", "fuzzy", "metrics", "provenance", "files", "manifest_sha256")
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


_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
               float: "a number", type(None): "null"}


def _tname(v: object) -> str:
    return _TYPE_NAMES.get(type(v), type(v).__name__)


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


def _loads_strict(text: str) -> Any:
    """JSON without NaN / Infinity and without duplicate keys."""
    return json.loads(text, object_pairs_hook=_strict_pairs, parse_constant=_reject_constant)


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
        manifest = _loads_strict(data.decode("utf-8"))
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


@dataclass
class _Context:
    """One validation run: where errors point, the manifest, and what earlier checks established."""

    bdir: Path
    manifest: dict[str, Any]
    config: ModelConfig | None = None

    def err(self, field_path: str, message: str) -> BundleError:
        return _field_error(self.bdir, field_path, message)

    def ref(self, field_path: str, value: Any) -> None:
        """``value`` must be a file listed in ``files`` (the cross-reference rule)."""
        if not isinstance(value, str):
            raise self.err(field_path, f"expected a file path string, got {_tname(value)}")
        problem = _rel_problem(value)
        if problem:
            raise self.err(field_path, problem)
        if value not in self.manifest["files"]:
            raise self.err(field_path, f"file {value!r} is not listed in files")

    def name(self, field_path: str, key: object) -> None:
        if not isinstance(key, str) or not _NAME.match(key):
            raise self.err(field_path, f"expected a name of 1-128 characters [A-Za-z0-9_.+-], got {_short(key)}")

    def require(self, field_path: str, entry: Mapping[str, Any], keys: Iterable[str]) -> None:
        for key in keys:
            if key not in entry:
                raise self.err(f"{field_path}.{key}", "missing")


@dataclass(frozen=True)
class _Field:
    """A top-level field: its JSON type, what the message calls that type, and whether it must be there."""

    path: str
    type: type
    expected: str
    required: bool = True


#: Presence and type of every top-level field, checked in this order.
_FIELDS: tuple[_Field, ...] = (
    _Field("model_id", str, "a string"),
    _Field("created", str, "a string"),
    _Field("synthetic", bool, "true or false"),
    _Field("labels", list, "a list"),
    _Field("config", dict, "an object"),
    _Field("networks", dict, "an object"),
    _Field("selection", dict, "an object"),
    _Field("svms", dict, "an object"),
    _Field("fuzzy", dict, "an object"),
    _Field("metrics", dict, "an object"),
    _Field("provenance", dict, "an object"),
    _Field("files", dict, "an object"),
    _Field("manifest_sha256", str, "a string"),
    _Field("description", str, "a string", required=False),
)


def _check_model_id(ctx: _Context, value: str) -> None:
    if not _MODEL_ID.match(value):
        raise ctx.err("model_id", f"expected 1-128 characters [A-Za-z0-9._+-], got {_short(value)}")


def _check_created(ctx: _Context, created: str) -> None:
    try:
        stamp = _dt.datetime.fromisoformat(created[:-1] + "+00:00" if created.endswith("Z") else created)
    except ValueError:
        raise ctx.err("created", f"expected an ISO-8601 UTC time, got {_short(created)}") from None
    if stamp.tzinfo is None:
        raise ctx.err("created", f"expected a timezone (UTC), got {_short(created)}")


def _check_digest(ctx: _Context, value: str) -> None:
    if not is_sha256_hex(value):
        raise ctx.err("manifest_sha256", "expected 64 lower-case hex digits")


def _check_labels(ctx: _Context, labels: list[Any]) -> None:
    if len(labels) < 2 or not all(isinstance(v, str) and v for v in labels) or len(set(labels)) != len(labels):
        raise ctx.err("labels", f"expected two or more distinct non-empty strings, got {_short(labels)}")


def _check_config(ctx: _Context, data: dict[str, Any]) -> None:
    try:
        ctx.config = config_from_dict(data)
    except (ConfigError, TypeError, ValueError) as exc:
        raise ctx.err("config", str(exc)) from None
    labels = ctx.manifest["labels"]
    if list(ctx.config.labels) != labels:
        raise ctx.err("labels", f"{_short(labels)} differ from config.labels {_short(list(ctx.config.labels))}")


def _check_files(ctx: _Context, files: dict[str, Any]) -> None:
    for rel, entry in files.items():
        fp = f"files.{rel}"
        problem = _rel_problem(rel)
        if problem:
            raise ctx.err(fp, problem)
        if not isinstance(entry, dict) or set(entry) != {"sha256", "bytes"}:
            raise ctx.err(fp, f"expected an object with exactly 'sha256' and 'bytes', got {_short(entry)}")
        if not is_sha256_hex(entry["sha256"]):
            raise ctx.err(f"{fp}.sha256", f"expected 64 lower-case hex digits, got {_short(entry['sha256'])}")
        if not _is_int(entry["bytes"]) or entry["bytes"] < 0:
            raise ctx.err(f"{fp}.bytes", f"expected a non-negative integer, got {_short(entry['bytes'])}")


def _valid_shape(shape: Any) -> bool:
    return (
        isinstance(shape, list)
        and len(shape) <= 16
        and all((_is_int(d) and 0 <= d < 2**31) or (isinstance(d, str) and 0 < len(d) <= 64) for d in shape)
    )


#: An input's or output's fields after its name: (key, valid?, what the message expects).
_IO_FIELDS: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("shape", _valid_shape, "a list of non-negative ints or dynamic-axis names"),
    ("dtype", lambda v: isinstance(v, str) and v in DTYPES, f"one of {', '.join(sorted(DTYPES))}"),
)


def _check_io(ctx: _Context, items: Any, fp: str) -> None:
    if not isinstance(items, list):
        raise ctx.err(fp, f"expected a list, got {_tname(items)}")
    seen: set[str] = set()
    for i, io in enumerate(items):
        ip = f"{fp}[{i}]"
        if not isinstance(io, dict) or set(io) != {"name", "shape", "dtype"}:
            raise ctx.err(ip, f"expected an object with exactly name, shape, dtype, got {_short(io)}")
        if not isinstance(io["name"], str) or not io["name"] or len(io["name"]) > 128:
            raise ctx.err(f"{ip}.name", f"expected a non-empty string, got {_short(io['name'])}")
        if io["name"] in seen:
            raise ctx.err(f"{ip}.name", f"duplicate name {io['name']!r}")
        seen.add(io["name"])
        for key, valid, expected in _IO_FIELDS:
            if not valid(io[key]):
                raise ctx.err(f"{ip}.{key}", f"expected {expected}, got {_short(io[key])}")


def _check_artifacts(ctx: _Context, artifacts: Any, fp: str) -> None:
    if not isinstance(artifacts, dict):
        raise ctx.err(fp, f"expected an object, got {_tname(artifacts)}")
    for art, spec in artifacts.items():
        ap = f"{fp}.{art}"
        ctx.name(ap, art)
        if not isinstance(spec, dict):
            raise ctx.err(ap, f"expected an object with a 'file', got {_tname(spec)}")
        ctx.require(ap, spec, ("file",))
        ctx.ref(f"{ap}.file", spec["file"])


def _check_networks(ctx: _Context, networks: dict[str, Any]) -> None:
    for net, entry in networks.items():
        fp = f"networks.{net}"
        ctx.name(fp, net)
        if not isinstance(entry, dict):
            raise ctx.err(fp, f"expected an object, got {_tname(entry)}")
        ctx.require(fp, entry, ("weights", "inputs", "outputs", "artifacts"))
        ctx.ref(f"{fp}.weights", entry["weights"])
        for kind in ("inputs", "outputs"):
            _check_io(ctx, entry[kind], f"{fp}.{kind}")
        _check_artifacts(ctx, entry["artifacts"], f"{fp}.artifacts")


def _check_selection(ctx: _Context, selection: dict[str, Any]) -> None:
    for modality, spec in selection.items():
        fp = f"selection.{modality}"
        ctx.name(fp, modality)
        if isinstance(spec, dict):
            ctx.require(fp, spec, ("file",))
            ctx.ref(f"{fp}.file", spec["file"])
        else:
            ctx.ref(fp, spec)


#: An SVM's numbers: (key, valid?, what the message expects).
_SVM_NUMBERS: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("c", lambda v: _is_num(v) and v > 0, "a positive number"),
    ("gamma", lambda v: _is_num(v) and v > 0, "a positive number"),
    ("cv_accuracy", lambda v: _is_num(v) and 0 <= v <= 1, "a number in [0, 1]"),
)


def _check_scaling(ctx: _Context, scaling: Any, fp: str) -> None:
    if not isinstance(scaling, dict):
        raise ctx.err(fp, f"expected an object, got {_tname(scaling)}")
    for key in scaling:
        if key not in ("lower", "upper", "lo", "hi"):
            raise ctx.err(f"{fp}.{key}", "unknown field (known: lower, upper, lo, hi)")
    for key, only in (("lower", -1.0), ("upper", 1.0)):
        if scaling.get(key, only) != only or isinstance(scaling.get(key), bool):
            raise ctx.err(f"{fp}.{key}", f"only {only:g} is supported, got {_short(scaling.get(key))}")
    for key in ("lo", "hi"):
        values = scaling.get(key)
        if not isinstance(values, list) or not values or not all(_is_num(v) for v in values):
            raise ctx.err(f"{fp}.{key}", "expected a non-empty list of finite numbers")
    if len(scaling["lo"]) != len(scaling["hi"]):
        raise ctx.err(f"{fp}.hi", f"length {len(scaling['hi'])} differs from lo ({len(scaling['lo'])})")
    for i, (lo, hi) in enumerate(zip(scaling["lo"], scaling["hi"], strict=True)):
        if hi < lo:
            raise ctx.err(f"{fp}.hi", f"hi[{i}] = {hi} < lo[{i}] = {lo}")


def _check_svms(ctx: _Context, svms: dict[str, Any]) -> None:
    for channel, entry in svms.items():
        fp = f"svms.{channel}"
        ctx.name(fp, channel)
        if not isinstance(entry, dict):
            raise ctx.err(fp, f"expected an object, got {_tname(entry)}")
        ctx.require(fp, entry, ("model", "scaling", "c", "gamma", "cv_accuracy"))
        ctx.ref(f"{fp}.model", entry["model"])
        for key, valid, expected in _SVM_NUMBERS:
            if not valid(entry[key]):
                raise ctx.err(f"{fp}.{key}", f"expected {expected}, got {_short(entry[key])}")
        _check_scaling(ctx, entry["scaling"], f"{fp}.scaling")
        if "n_features" in entry and entry["n_features"] != len(entry["scaling"]["lo"]):
            raise ctx.err(
                f"{fp}.n_features",
                f"{_short(entry['n_features'])} differs from the scaling's {len(entry['scaling']['lo'])} features",
            )


#: The value checks, in the order they run, once every field has its type. ``config`` parses the
#: model configuration (and compares its labels); the file references are checked from ``files`` on.
_CHECKS: tuple[tuple[str, Callable[[_Context, Any], None]], ...] = (
    ("model_id", _check_model_id),
    ("created", _check_created),
    ("manifest_sha256", _check_digest),
    ("labels", _check_labels),
    ("config", _check_config),
    ("files", _check_files),
    ("networks", _check_networks),
    ("selection", _check_selection),
    ("svms", _check_svms),
)


def validate_manifest(manifest: Any, path: str | os.PathLike[str] = ".") -> BundleSpec:
    """Validate every field of a manifest dict (types, values, paths, cross-references) and return
    its read-only views (:class:`~edge_mmer.bundle.views.BundleSpec`).

    Does not touch the filesystem or the digest. Raises :class:`BundleError` naming the field.
    """
    bdir = Path(path)
    if not isinstance(manifest, dict):
        raise BundleError(bdir, MANIFEST, f"expected a JSON object, got {_tname(manifest)}")
    _check_schema_id(manifest, bdir)
    ctx = _Context(bdir, manifest)
    for key in manifest:
        if key not in _TOP_LEVEL:
            raise ctx.err(str(key), f"unknown field (known: {', '.join(_TOP_LEVEL)})")
    for row in _FIELDS:
        if row.path not in manifest:
            if row.required:
                raise ctx.err(row.path, "missing")
        elif not isinstance(manifest[row.path], row.type):
            raise ctx.err(row.path, f"expected {row.expected}, got {_tname(manifest[row.path])}")
    for key, check in _CHECKS:
        check(ctx, manifest[key])
    assert ctx.config is not None  # set by _check_config
    return build_spec(manifest, ctx.config)
