"""Reading a bundle: :func:`read_bundle` (raises on the first problem), :func:`verify_bundle` (every
problem as text), and :class:`Bundle`, whose file accessors check each file's sha256 again as they read it.

A :class:`Bundle` carries the raw manifest (for writers and free-form sections such as ``metrics``)
and the typed views the validator built from it (:meth:`Bundle.network`, :meth:`Bundle.artifact`,
:meth:`Bundle.svm`, :meth:`Bundle.selection_spec`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from safetensors.numpy import load as _st_load

from edge_mmer.bundle.files import check_files, inside, read_manifest_bytes
from edge_mmer.bundle.manifest import (
    MANIFEST,
    _field_error,
    _file_error,
    _reject_constant,
    parse_manifest,
    validate_manifest,
)
from edge_mmer.bundle.views import ArtifactSpec, BundleSpec, NetworkSpec, SelectionSpec, SvmSpec
from edge_mmer.config import ModelConfig
from edge_mmer.errors import BundleError
from edge_mmer.hashing import sha256_bytes
from edge_mmer.vocab import ArtifactKind

if TYPE_CHECKING:
    from edge_mmer.svm import TrainedSVM

__all__ = ["Bundle", "read_bundle", "verify_bundle"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bundle:
    """A read (and normally verified) bundle; file accessors verify hashes again at load time.

    ``spec`` holds the read-only views of ``manifest``, built by :func:`validate_manifest` (at
    construction, unless the caller has just validated it and passes its ``views``), so a
    :class:`Bundle` always holds a valid manifest.
    """

    path: Path
    manifest: dict[str, Any]
    warnings: tuple[str, ...] = field(default=(), compare=False)
    views: InitVar[BundleSpec | None] = None
    spec: BundleSpec = field(init=False, compare=False, repr=False)

    def __post_init__(self, views: BundleSpec | None) -> None:
        object.__setattr__(self, "spec", views if views is not None else validate_manifest(self.manifest, self.path))

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
        return self.spec.config

    # ------------------------------------------------------------------------------- typed views

    @property
    def network_specs(self) -> Mapping[str, NetworkSpec]:
        """Every network's view, in manifest order (read-only)."""
        return self.spec.networks

    def network(self, name: str) -> NetworkSpec:
        """The view of ``networks.<name>``; raises :class:`BundleError` when there is no such network."""
        spec = self.spec.networks.get(name)
        if spec is None:
            raise _field_error(self.path, f"networks.{name}",
                               f"no such network (have: {', '.join(self.spec.networks) or 'none'})")
        return spec

    def artifact(self, name: str, kind: ArtifactKind | str) -> ArtifactSpec | None:
        """The ``kind`` artifact of network ``name``, or None when the network has none of that kind.

        Raises :class:`BundleError` when there is no network ``name`` (a missing artifact is normal: a
        bundle straight from training has none; a missing network is a wrong bundle)."""
        return self.network(name).artifact(kind)

    @property
    def svm_specs(self) -> Mapping[str, SvmSpec]:
        return self.spec.svms

    def svm(self, channel: str) -> SvmSpec:
        """The view of ``svms.<channel>``; raises :class:`BundleError` when there is no such channel."""
        spec = self.spec.svms.get(channel)
        if spec is None:
            raise _field_error(self.path, f"svms.{channel}",
                               f"no such SVM channel (have: {', '.join(self.spec.svms) or 'none'})")
        return spec

    @property
    def selection_specs(self) -> Mapping[str, SelectionSpec]:
        return self.spec.selection

    def selection_spec(self, modality: str) -> SelectionSpec:
        """The view of ``selection.<modality>``; raises :class:`BundleError` when there is none."""
        spec = self.spec.selection.get(modality)
        if spec is None:
            raise _field_error(self.path, f"selection.{modality}", "no such modality")
        return spec

    # --------------------------------------------------------------------- raw manifest sections

    @property
    def networks(self) -> dict[str, Any]:
        """The raw ``networks`` section (a shallow copy); readers use :meth:`network`."""
        return dict(self.manifest["networks"])

    @property
    def svms(self) -> dict[str, Any]:
        """The raw ``svms`` section (a shallow copy); readers use :meth:`svm`."""
        return dict(self.manifest["svms"])

    @property
    def selection(self) -> dict[str, Any]:
        """modality -> file, or -> {"file": ..., extra keys} (both forms are accepted)."""
        return dict(self.manifest["selection"])

    def selection_file(self, modality: str) -> str:
        """The relative file of ``selection.<modality>`` (either form)."""
        return self.selection_spec(modality).file

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

    # ------------------------------------------------------------------------------------ files

    def file(self, rel: str) -> Path:
        """Absolute path of a listed file (no hashing here: use the ``read_*``/``load_*`` methods)."""
        if rel not in self.manifest["files"]:
            raise _file_error(self.path, rel, f"not listed in {MANIFEST} files")
        target = inside(self.path, rel)
        if target is None:
            raise _file_error(self.path, rel, "resolves outside the bundle directory")
        return target

    def sha256(self, rel: str) -> str:
        """The sha256 the manifest lists for a file (what its bytes are checked against)."""
        if rel not in self.manifest["files"]:
            raise _file_error(self.path, rel, f"not listed in {MANIFEST} files")
        return str(self.manifest["files"][rel]["sha256"])

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

        spec = self.svm(channel)
        data = self.read_bytes(spec.model)
        source = f"{self.path}: bundle file '{spec.model}'"
        try:
            return svm_from_bytes(
                data,
                spec.scaling_dict(),
                len(self.labels),
                source=source,
                c=spec.c,
                cv_accuracy=spec.cv_accuracy,
            )
        except SVMModelError as exc:
            text = str(exc).removeprefix(f"{source}: ")  # _file_error names the file once, not twice
            raise _file_error(self.path, spec.model, text) from None


def read_bundle(path: str | os.PathLike[str], verify: bool = True) -> Bundle:
    """Read a bundle. Always: strict JSON, schema id/version, manifest digest, every field.
    With ``verify`` (default) also every listed file's presence, size and sha256, path escapes
    and pickle files. Raises :class:`BundleError` on the first problem; warnings are logged."""
    bdir = Path(path)
    manifest = parse_manifest(read_manifest_bytes(bdir), bdir)
    spec = validate_manifest(manifest, bdir)
    warnings: list[str] = []
    if verify:
        errors, warnings = check_files(bdir, manifest)
        if errors:
            raise errors[0]
        for w in warnings:
            log.warning("%s", w)
    return Bundle(path=bdir, manifest=manifest, warnings=tuple(warnings), views=spec)


def verify_bundle(path: str | os.PathLike[str]) -> list[str]:
    """Every problem of a bundle as text; empty when the bundle is valid. Warnings (unlisted,
    non-pickle files) start with ``"warning: "`` and do not make a bundle invalid."""
    bdir = Path(path)
    try:
        manifest = parse_manifest(read_manifest_bytes(bdir), bdir)
        validate_manifest(manifest, bdir)
    except BundleError as exc:
        return [str(exc)]
    errors, warnings = check_files(bdir, manifest)
    return [str(e) for e in errors] + [f"warning: {w}" for w in warnings]
