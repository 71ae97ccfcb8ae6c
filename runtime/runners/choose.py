"""Which artifact of which network runs on which backend: pure rules over a bundle's artifact tables.

Nothing here touches a device or loads a model; :mod:`.load` probes the machine and builds the
runners from what these functions choose. The rules (docs/backends.md):

* precision ``fp32`` -> ``onnx-fp32`` (ONNX Runtime) / ``tensorrt-fp32`` (TensorRT);
* ``fp16`` -> ``onnx-fp16`` / ``tensorrt-fp16``;
* ``int8`` -> ``int8-cpu`` for ONNX Runtime on the CPU, ``int8-trt`` when ONNX Runtime has the
  TensorRT EP, a ``tensorrt-int8`` plan for TensorRT. A network without an artifact of that precision
  (the LSTMs are never quantized) runs ``onnx-fp32`` on ONNX Runtime and its ``tensorrt-fp16`` plan on
  TensorRT, and the notes say so once. An INT8 artifact marked ``deployable: false`` (its drift is over
  the conversion's thresholds) is refused, with a warning naming the network and the drift.

Each rule is a row of :data:`ONNX_CHAINS` / :data:`PLAN_CHAINS`: the kinds to try, best first.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_mmer.bundle.views import ArtifactSpec, NetworkSpec
from edge_mmer.errors import RunnerError
from edge_mmer.vocab import ArtifactKind

__all__ = ["ONNX_CHAINS", "PLAN_CHAINS", "PLAN_SOURCES", "Notes", "OnnxChoice", "PlanChoice", "choose_onnx",
           "choose_plans", "missing_plans_reason"]

_K = ArtifactKind
ONNX_CHAINS: dict[tuple[str, bool], tuple[ArtifactKind, ...]] = {
    # (precision, ONNX Runtime has the TensorRT EP) -> kinds to try, best first
    ("fp32", False): (_K.ONNX_FP32,),
    ("fp32", True): (_K.ONNX_FP32,),
    ("fp16", False): (_K.ONNX_FP16, _K.ONNX_FP32),
    ("fp16", True): (_K.ONNX_FP16, _K.ONNX_FP32),
    ("int8", False): (_K.INT8_CPU, _K.ONNX_FP32),
    ("int8", True): (_K.INT8_TRT, _K.ONNX_FP32),
}
PLAN_CHAINS: dict[str, tuple[ArtifactKind, ...]] = {
    "fp32": (_K.TENSORRT_FP32,),
    "fp16": (_K.TENSORRT_FP16, _K.TENSORRT_FP32),
    "int8": (_K.TENSORRT_INT8, _K.TENSORRT_FP16, _K.TENSORRT_FP32),
}
PLAN_SOURCES: dict[ArtifactKind, ArtifactKind] = {_K.TENSORRT_INT8: _K.INT8_TRT}
"""A plan kind -> the ONNX kind it is built from (whose ``deployable`` mark the plan inherits)."""
_INT8_ONNX = (_K.INT8_CPU, _K.INT8_TRT)


@dataclass
class Notes:
    """What was chosen and why, for the user: each text once, with its log level."""

    items: list[str] = field(default_factory=list)
    levels: list[int] = field(default_factory=list)

    def add(self, text: str, level: int = logging.INFO) -> None:
        if text not in self.items:
            self.items.append(text)
            self.levels.append(level)

    def extend(self, other: Notes) -> None:
        for text, level in zip(other.items, other.levels, strict=True):
            self.add(text, level)

    def __iter__(self) -> Any:
        return iter(zip(self.items, self.levels, strict=True))


def _drift_text(art: ArtifactSpec) -> str:
    reasons = art.not_deployable_because
    if reasons:
        return "; ".join(reasons)
    net, e2e = art.drift.get("network") or {}, art.drift.get("end_to_end") or {}
    parts = []
    if "cosine" in net:
        parts.append(f"output cosine {net['cosine']:.6f}")
    if "agreement" in e2e:
        parts.append(f"end-to-end agreement {e2e['agreement']:.4f}")
    if "accuracy_delta" in e2e:
        parts.append(f"accuracy change {e2e['accuracy_delta']:+.4f}")
    return ", ".join(parts) or "no drift recorded"


def _group(by_reason: Mapping[str, list[str]]) -> list[str]:
    return [f"{', '.join(nets)}: {reason}" for reason, nets in by_reason.items()]


def _pick(net: NetworkSpec, chain: Sequence[ArtifactKind], notes: Notes,
          sources: Mapping[ArtifactKind, ArtifactKind] | None = None) -> ArtifactKind | None:
    """The first usable kind of ``chain`` for network ``net``. An INT8 artifact (or a plan built from
    one, ``sources``: plan kind -> its ONNX kind) marked not deployable is refused with a warning."""
    refused: list[ArtifactSpec] = []
    for kind in chain:
        art = net.artifact(kind)
        if art is None:
            continue
        source = net.artifact((sources or {}).get(kind, kind)) or art
        bad = next((a for a in (art, source) if not a.deployable), None)  # a checked plan's own verdict, its source's
        if bad is not None:
            refused.append(bad)
            continue
        for bad in refused:
            what = "INT8 artifact" if bad.kind.is_int8 else "plan"  # a plan can fail its own check
            notes.add(f"{net.name}: refusing {what} '{bad.kind}' ({bad.file}): not deployable, its drift is "
                      f"over the conversion's thresholds ({_drift_text(bad)}); running {kind} instead",
                      logging.WARNING)
        return kind
    return None


def _why_not(net: NetworkSpec, bundle_path: Path, wanted: ArtifactKind, precision: str) -> str | None:
    """Why ``wanted`` is not what a network runs (None when a refusal note said it already)."""
    if wanted in net.artifacts:
        return None  # refused as not deployable: the warning names it
    if precision == "int8" and not any(k in net.artifacts for k in _INT8_ONNX):
        return "no INT8 artifact (LSTM step graphs are never quantized)"
    if wanted in _INT8_ONNX:
        return f"no '{wanted}' artifact (edge-mmer convert --bundle {bundle_path} --precision {wanted} adds it)"
    return f"no '{wanted}' artifact"


@dataclass(frozen=True)
class OnnxChoice:
    kinds: dict[str, ArtifactKind]  # network -> the ONNX artifact kind it runs
    notes: Notes


@dataclass(frozen=True)
class PlanChoice:
    kinds: dict[str, ArtifactKind]  # network -> the plan kind it runs
    missing: list[str]  # networks with no usable plan
    notes: Notes  # said only if TensorRT is what runs


def _choose(specs: Mapping[str, NetworkSpec], networks: Sequence[str], chain: Sequence[ArtifactKind], precision: str,
            bundle_path: Path, *, sources: Mapping[ArtifactKind, ArtifactKind] | None = None,
            what: str = "artifact") -> PlanChoice:
    """The first usable kind of ``chain`` per network, the networks with none, and the notes: a
    refused INT8 artifact once per network, each fallback reason once with the networks it applies to
    (``what`` names the kind of thing missing: ``artifact`` or ``plan``)."""
    notes = Notes()
    kinds: dict[str, ArtifactKind] = {}
    missing: list[str] = []
    fallback: dict[str, list[str]] = {}
    for name in networks:
        net = specs[name]
        kind = _pick(net, chain, notes, sources=sources)
        if kind is None:
            missing.append(name)
            continue
        why = _why_not(net, bundle_path, chain[0], precision) if kind != chain[0] else None
        if why:
            fallback.setdefault(f"{why.replace('artifact', what)}; running {kind}", []).append(name)
        kinds[name] = kind
    for text in _group(fallback):
        notes.add(text)
    return PlanChoice(kinds, missing, notes)


def choose_onnx(specs: Mapping[str, NetworkSpec], networks: Sequence[str], precision: str, trt_ep: bool,
                bundle_path: Path) -> OnnxChoice:
    """The ONNX artifact of each of ``networks`` (``specs``: network -> its view, :attr:`Bundle.network_specs`).

    Raises :class:`RunnerError` when a network has none for ``precision``."""
    choice = _choose(specs, networks, ONNX_CHAINS[(precision, trt_ep)], precision, bundle_path)
    if choice.missing:
        name = choice.missing[0]
        have = ", ".join(specs[name].artifact_entries) or "none"
        raise RunnerError(f"{bundle_path}: network '{name}' has no usable ONNX artifact for precision {precision} "
                          f"(it has: {have}); run: edge-mmer convert --bundle {bundle_path}")
    return OnnxChoice(choice.kinds, choice.notes)


def choose_plans(specs: Mapping[str, NetworkSpec], networks: Sequence[str], precision: str,
                 bundle_path: Path) -> PlanChoice:
    """The TensorRT plan of each of ``networks`` (``specs`` as for :func:`choose_onnx`), and which have none."""
    return _choose(specs, networks, PLAN_CHAINS[precision], precision, bundle_path, sources=PLAN_SOURCES,
                   what="plan")


def missing_plans_reason(bundle_path: Path, networks: Sequence[str], missing: Sequence[str], precision: str) -> str:
    """Why TensorRT cannot run: the plans that are not in the bundle, and how to build them."""
    which = "any network" if len(missing) == len(networks) else ", ".join(missing)
    return (f"{bundle_path} has no TensorRT {' / '.join(PLAN_CHAINS[precision])} plan for {which} (build them on this "
            f"device: edge-mmer convert --bundle {bundle_path} --tensorrt --plan-precision {precision})")
