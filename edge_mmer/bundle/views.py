"""Typed, read-only views of a validated manifest: networks, their tensors and artifacts, SVMs, selection.

:func:`edge_mmer.bundle.validate_manifest` builds them (:func:`build_spec`) once every field has been
checked, so a view never meets a value of the wrong type. They are what readers use; the raw
``manifest`` dict stays for writers (:class:`~edge_mmer.bundle.BundleWriter`,
:func:`~edge_mmer.bundle.update_manifest`), which change it and have it validated again.

Everything here is frozen: the dataclasses, and every nested JSON value they carry (objects become
read-only mappings, lists become tuples; :func:`~edge_mmer.jsonvalues.thawed` turns them back into
plain JSON values). Artifact names outside :class:`~edge_mmer.vocab.ArtifactKind` are valid in a
manifest (the schema accepts any name) and are listed in :attr:`NetworkSpec.artifact_entries`, but
only the known kinds get an :class:`ArtifactSpec`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from edge_mmer.bundle.plans import DeviceFacts
from edge_mmer.jsonvalues import frozen, thawed
from edge_mmer.vocab import ArtifactKind

if TYPE_CHECKING:
    from edge_mmer.config import ModelConfig

__all__ = [
    "ArtifactSpec",
    "BundleSpec",
    "NetworkSpec",
    "SelectionSpec",
    "SvmSpec",
    "TensorSpec",
    "build_spec",
    "frozen",
    "thawed",
]

_KINDS = {kind.value: kind for kind in ArtifactKind}
_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _empty() -> Mapping[Any, Any]:
    return _EMPTY


def _facts(entry: Mapping[str, Any], *skip: str) -> Mapping[str, Any]:
    return MappingProxyType({k: frozen(v) for k, v in entry.items() if k not in skip})


@dataclass(frozen=True)
class TensorSpec:
    """One named input or output: fixed dims are ints, dynamic dims are names (``"batch"``, ``"time"``)."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str = "float32"

    @classmethod
    def from_manifest(cls, entry: Mapping[str, Any]) -> TensorSpec:
        return cls(name=str(entry["name"]), shape=tuple(entry["shape"]), dtype=str(entry.get("dtype", "float32")))

    @property
    def dynamic_axes(self) -> tuple[str, ...]:
        """The names of the dynamic dimensions, in order."""
        return tuple(d for d in self.shape if isinstance(d, str))


@dataclass(frozen=True)
class ArtifactSpec:
    """One converted form of a network (``networks.<name>.artifacts.<kind>``): its kind, its file and
    every other fact the converter recorded (read-only), with typed accessors for what consumers use."""

    kind: ArtifactKind
    file: str
    facts: Mapping[str, Any] = field(default_factory=_empty, repr=False)

    def get(self, key: str, default: Any = None) -> Any:
        """A recorded fact (read-only), or ``default``."""
        return self.facts.get(key, default)

    @property
    def precision(self) -> str | None:
        """``fp32`` / ``fp16`` / ``int8`` as the converter recorded it (None when it did not)."""
        value = self.facts.get("precision")
        return value if isinstance(value, str) else None

    @property
    def deployable(self) -> bool:
        """False only when the converter marked it so (an INT8 artifact whose drift is over its thresholds)."""
        return self.facts.get("deployable") is not False

    @property
    def not_deployable_because(self) -> tuple[str, ...]:
        return tuple(str(r) for r in self.facts.get("not_deployable_because") or ())

    @property
    def drift(self) -> Mapping[str, Any]:
        """The INT8 drift record (``network`` and ``end_to_end``); empty when none was measured."""
        value = self.facts.get("drift")
        return value if isinstance(value, Mapping) else _EMPTY

    @property
    def build_facts(self) -> DeviceFacts | None:
        """For a TensorRT plan, the device facts it was built with (what it is tied to); None otherwise."""
        return DeviceFacts.from_record(self.facts) if self.kind.is_plan else None

    @property
    def profiles(self) -> Mapping[str, Any]:
        """For a TensorRT plan, the recorded shape ranges ``{input: {min, opt, max}}``; empty otherwise."""
        value = self.facts.get("profiles")
        return value if isinstance(value, Mapping) else _EMPTY

    def to_dict(self) -> dict[str, Any]:
        """The manifest entry as a plain dict (``file`` first), for writers that change a copy."""
        return {"file": self.file, **thawed(self.facts)}


@dataclass(frozen=True)
class NetworkSpec:
    """One network of a bundle (``networks.<name>``): weights, named inputs and outputs, artifacts."""

    name: str
    weights: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    artifacts: Mapping[ArtifactKind, ArtifactSpec] = field(default_factory=_empty)
    artifact_entries: Mapping[str, Mapping[str, Any]] = field(default_factory=_empty, repr=False)
    """Every artifact as listed (``file`` included), known kind or not, in manifest order; read-only."""
    extras: Mapping[str, Any] = field(default_factory=_empty, repr=False)
    """The entry's other keys (``class``, ``arch``, training notes), read-only."""

    @classmethod
    def from_entry(cls, name: str, entry: Mapping[str, Any]) -> NetworkSpec:
        """The view of one ``networks.<name>`` entry, as the validator builds it; for an entry that is
        in no bundle yet (what :func:`edge_mmer.train.outputs.network_entries` gives, before writing)
        with no ``weights`` or ``artifacts``, those are empty."""
        return _network(name, {"weights": "", "artifacts": {}, **entry})

    def artifact(self, kind: ArtifactKind | str) -> ArtifactSpec | None:
        """The artifact of ``kind``, or None when this network has none (or ``kind`` is no known kind)."""
        known = _KINDS.get(str(kind))
        return None if known is None else self.artifacts.get(known)

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.outputs)

    def artifact_table(self, without: Iterable[ArtifactKind | str] = ()) -> dict[str, dict[str, Any]]:
        """The ``artifacts`` section as plain JSON (a copy, manifest order, unknown kinds included)
        less the kinds in ``without``: what a writer starts from when it replaces those kinds."""
        drop = {str(k) for k in without}
        return {k: thawed(a) for k, a in self.artifact_entries.items() if k not in drop}

    def artifact_files(self, kinds: Iterable[ArtifactKind | str]) -> set[str]:
        """The files of this network's artifacts of ``kinds`` (those it has)."""
        return {art.file for kind in kinds if (art := self.artifact(kind)) is not None}

    def extra(self, key: str, default: Any = None) -> Any:
        """One of the entry's other keys as a plain JSON value (a copy), or ``default``."""
        return thawed(self.extras[key]) if key in self.extras else default

    @property
    def kinds(self) -> tuple[ArtifactKind, ...]:
        """The known artifact kinds this network has, in manifest order."""
        return tuple(self.artifacts)

    @property
    def network_class(self) -> str | None:
        """The manifest's ``class`` (``SpeechEncoder`` ...), None when absent or not a string."""
        value = self.extras.get("class")
        return value if isinstance(value, str) else None

    @property
    def arch(self) -> Mapping[str, Any] | None:
        """The manifest's ``arch`` object (read-only), None when absent or not an object."""
        value = self.extras.get("arch")
        return value if isinstance(value, Mapping) else None


@dataclass(frozen=True)
class SvmSpec:
    """One decision channel's LIBSVM (``svms.<channel>``): model file, scaling and how it was chosen."""

    channel: str
    model: str
    scaling: Mapping[str, Any] = field(repr=False)
    c: float
    gamma: float
    cv_accuracy: float
    extras: Mapping[str, Any] = field(default_factory=_empty)

    @property
    def n_features(self) -> int:
        return len(self.scaling["lo"])

    def scaling_dict(self) -> dict[str, Any]:
        """The scaling as plain JSON, as :meth:`edge_mmer.svm.FeatureScaling.from_dict` reads it."""
        out: dict[str, Any] = thawed(self.scaling)
        return out


@dataclass(frozen=True)
class SelectionSpec:
    """One modality's chi-square selection (``selection.<modality>``, a file or ``{file, ...}``)."""

    modality: str
    file: str
    facts: Mapping[str, Any] = field(default_factory=_empty)
    """The object form's other keys (``keep_fraction``, ``n_selected`` ...); empty for the plain form."""


@dataclass(frozen=True)
class BundleSpec:
    """Every view of one validated manifest."""

    config: ModelConfig
    networks: Mapping[str, NetworkSpec]
    svms: Mapping[str, SvmSpec]
    selection: Mapping[str, SelectionSpec]


def _network(name: str, entry: Mapping[str, Any]) -> NetworkSpec:
    listed = entry["artifacts"]
    artifacts = {_KINDS[k]: ArtifactSpec(_KINDS[k], str(a["file"]), _facts(a, "file"))
                 for k, a in listed.items() if k in _KINDS}
    return NetworkSpec(
        name=name,
        weights=str(entry["weights"]),
        inputs=tuple(TensorSpec.from_manifest(i) for i in entry["inputs"]),
        outputs=tuple(TensorSpec.from_manifest(o) for o in entry["outputs"]),
        artifacts=MappingProxyType(artifacts),
        artifact_entries=MappingProxyType({k: frozen(a) for k, a in listed.items()}),
        extras=_facts(entry, "weights", "inputs", "outputs", "artifacts"),
    )


def _svm(channel: str, entry: Mapping[str, Any]) -> SvmSpec:
    return SvmSpec(channel=channel, model=str(entry["model"]), scaling=frozen(entry["scaling"]), c=float(entry["c"]),
                   gamma=float(entry["gamma"]), cv_accuracy=float(entry["cv_accuracy"]),
                   extras=_facts(entry, "model", "scaling", "c", "gamma", "cv_accuracy"))


def _selection(modality: str, spec: Any) -> SelectionSpec:
    if isinstance(spec, Mapping):
        return SelectionSpec(modality, str(spec["file"]), _facts(spec, "file"))
    return SelectionSpec(modality, str(spec))


def build_spec(manifest: Mapping[str, Any], config: ModelConfig) -> BundleSpec:
    """The views of a manifest that :func:`~edge_mmer.bundle.validate_manifest` has just accepted."""
    return BundleSpec(
        config=config,
        networks=MappingProxyType({n: _network(n, e) for n, e in manifest["networks"].items()}),
        svms=MappingProxyType({c: _svm(c, e) for c, e in manifest["svms"].items()}),
        selection=MappingProxyType({m: _selection(m, s) for m, s in manifest["selection"].items()}),
    )
