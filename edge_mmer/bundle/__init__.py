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

The modules, one job each: :mod:`~edge_mmer.bundle.manifest` (schema, strict parse, validation),
:mod:`~edge_mmer.bundle.views` (the typed read-only views the validator builds),
:mod:`~edge_mmer.bundle.reader` (:class:`Bundle`, :func:`read_bundle`, :func:`verify_bundle`),
:mod:`~edge_mmer.bundle.writer` (:class:`BundleWriter`, :func:`update_manifest`, :func:`reseal_manifest`),
:mod:`~edge_mmer.bundle.files` (the directory on disk), :mod:`~edge_mmer.bundle.describe`
(``bundle show``), and what a TensorRT plan is tied to: :mod:`~edge_mmer.bundle.plans` (device facts)
and :mod:`~edge_mmer.bundle.shapes` (optimization-profile shape ranges).

Readers: :func:`read_bundle` (raises :class:`BundleError` on the first problem) and
:func:`verify_bundle` (returns every problem as text). Pickle-format files (``.pkl``, ``.pickle``,
``.pt``, ``.pth``, ``.ckpt``, ``.joblib``) are refused outright, listed or not; other unlisted files
are warnings. Readers use the views (``bundle.network(name).inputs``, ``bundle.artifact(name,
ArtifactKind.ONNX_FP32)``); the raw ``bundle.manifest`` stays for writers.
"""

from __future__ import annotations

from edge_mmer.bundle.describe import describe_bundle
from edge_mmer.bundle.manifest import (
    _TOP_LEVEL as _TOP_LEVEL,
)
from edge_mmer.bundle.manifest import (
    DTYPES,
    MANIFEST,
    PICKLE_SUFFIXES,
    SCHEMA,
    SCHEMA_VERSION,
    parse_manifest,
    validate_manifest,
)
from edge_mmer.bundle.reader import Bundle, read_bundle, verify_bundle
from edge_mmer.bundle.views import ArtifactSpec, BundleSpec, NetworkSpec, SelectionSpec, SvmSpec, TensorSpec
from edge_mmer.bundle.writer import BundleWriter, reseal_manifest, update_manifest
from edge_mmer.bundle.writer import _seal as _seal
from edge_mmer.errors import BundleError
from edge_mmer.hashing import sha256_file
from edge_mmer.provenance import provenance as default_provenance

__all__ = [
    "DTYPES",
    "MANIFEST",
    "PICKLE_SUFFIXES",
    "SCHEMA",
    "SCHEMA_VERSION",
    "ArtifactSpec",
    "Bundle",
    "BundleError",
    "BundleSpec",
    "BundleWriter",
    "NetworkSpec",
    "SelectionSpec",
    "SvmSpec",
    "TensorSpec",
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
