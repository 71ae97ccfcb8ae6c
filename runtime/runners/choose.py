"""Which artifact of which network runs on which backend: pure rules over a bundle's artifact tables.

Nothing here touches a device or loads a model; :mod:`.load` probes the machine and builds the
runners from what these functions choose. The rules (docs "Runtime backends"):

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

from edge_mmer.errors import RunnerError
from edge_mmer.vocab import ArtifactKind

__all__ = ["ONNX_CHAINS", "PLAN_CHAINS", "PLAN_SOURCES", "Notes", "OnnxChoice", "PlanChoice", "choose_onnx",
           "choose_plans", "missing_plans_reason"]

_K = ArtifactKind
ONNX_CHAINS: dict[tuple[str, bool], tuple[str, ...]] = {
    # (precision, ONNX Runtime has the TensorRT EP) -> kinds to try, best first
    ("fp32", False): (_K.ONNX_FP32.value,),
    ("fp32", True): (_K.ONNX_FP32.value,),
    ("fp16", False): (_K.ONNX_FP16.value, _K.ONNX_FP32.value),
    ("fp16", True): (_K.ONNX_FP16.value, _K.ONNX_FP32.value),
    ("int8", False): (_K.INT8_CPU.value, _K.ONNX_FP32.value),
    ("int8", True): (_K.INT8_TRT.value, _K.ONNX_FP32.value),
}
PLAN_CHAINS: dict[str, tuple[str, ...]] = {
    "fp32": (_K.TENSORRT_FP32.value,),
    "fp16": (_K.TENSORRT_FP16.value, _K.TENSORRT_FP32.value),
    "int8": (_K.TENSORRT_INT8.value, _K.TENSORRT_FP16.value, _K.TENSORRT_FP32.value),
}
PLAN_SOURCES: dict[str, str] = {_K.TENSORRT_INT8.value: _K.INT8_TRT.value}
"""A plan kind -> the ONNX kind it is built from (whose ``deployable`` mark the plan inherits)."""
_INT8_ONNX = (_K.INT8_CPU.value, _K.INT8_TRT.value)


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


def _drift_text(art: Mapping[str, Any]) -> str:
    reasons = [str(r) for r in art.get("not_deployable_because") or []]
    if reasons:
        return "; ".join(reasons)
    drift = art.get("drift") or {}
    net, e2e = drift.get("network") or {}, drift.get("end_to_end") or {}
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


def _pick(artifacts: Mapping[str, Any], name: str, chain: Sequence[str], notes: Notes,
          sources: Mapping[str, str] | None = None) -> str | None:
    """The first usable kind of ``chain`` for network ``name``. An INT8 artifact (or a plan built from
    one, ``sources``: plan kind -> its ONNX kind) marked not deployable is refused with a warning."""
    refused: list[tuple[str, Mapping[str, Any]]] = []
    for kind in chain:
        art = artifacts.get(kind)
        if art is None:
            continue
        source_kind = (sources or {}).get(kind, kind)
        source = artifacts.get(source_kind, art)
        if source.get("deployable") is False:
            refused.append((source_kind, source))
            continue
        for bad_kind, bad in refused:
            notes.add(f"{name}: refusing INT8 artifact '{bad_kind}' ({bad['file']}): not deployable, its drift is "
                      f"over the conversion's thresholds ({_drift_text(bad)}); running {kind} instead",
                      logging.WARNING)
        return kind
    return None


def _why_not(artifacts: Mapping[str, Any], bundle_path: Path, wanted: str, precision: str) -> str | None:
    """Why ``wanted`` is not what a network runs (None when a refusal note said it already)."""
    if wanted in artifacts:
        return None  # refused as not deployable: the warning names it
    if precision == "int8" and not any(k in artifacts for k in _INT8_ONNX):
        return "no INT8 artifact (LSTM step graphs are never quantized)"
    if wanted in _INT8_ONNX:
        return f"no '{wanted}' artifact (edge-mmer convert --bundle {bundle_path} --precision {wanted} adds it)"
    return f"no '{wanted}' artifact"


@dataclass(frozen=True)
class OnnxChoice:
    kinds: dict[str, str]  # network -> the ONNX artifact kind it runs
    notes: Notes


def choose_onnx(tables: Mapping[str, Mapping[str, Any]], networks: Sequence[str], precision: str, trt_ep: bool,
                bundle_path: Path) -> OnnxChoice:
    """The ONNX artifact of each of ``networks`` (``tables``: network -> its manifest ``artifacts``).

    Raises :class:`RunnerError` when a network has none for ``precision``."""
    chain = ONNX_CHAINS[(precision, trt_ep)]
    notes = Notes()
    fallback: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}
    for name in networks:
        artifacts = tables[name]
        kind = _pick(artifacts, name, chain, notes)
        if kind is None:
            have = ", ".join(artifacts) or "none"
            raise RunnerError(f"{bundle_path}: network '{name}' has no usable ONNX artifact for precision {precision} "
                              f"(it has: {have}); run: edge-mmer convert --bundle {bundle_path}")
        why = _why_not(artifacts, bundle_path, chain[0], precision) if kind != chain[0] else None
        if why:
            fallback.setdefault(f"{why}; running {kind}", []).append(name)
        kinds[name] = kind
    for text in _group(fallback):
        notes.add(text)
    return OnnxChoice(kinds, notes)


@dataclass(frozen=True)
class PlanChoice:
    kinds: dict[str, str]  # network -> the plan kind it runs
    missing: list[str]  # networks with no usable plan
    notes: Notes  # said only if TensorRT is what runs


def choose_plans(tables: Mapping[str, Mapping[str, Any]], networks: Sequence[str], precision: str,
                 bundle_path: Path) -> PlanChoice:
    """The TensorRT plan of each of ``networks``, and which have none."""
    chain = PLAN_CHAINS[precision]
    notes = Notes()
    kinds: dict[str, str] = {}
    missing: list[str] = []
    fallback: dict[str, list[str]] = {}
    for name in networks:
        artifacts = tables[name]
        kind = _pick(artifacts, name, chain, notes, sources=PLAN_SOURCES)
        if kind is None:
            missing.append(name)
            continue
        why = _why_not(artifacts, bundle_path, chain[0], precision) if kind != chain[0] else None
        if why:
            fallback.setdefault(f"{why.replace('artifact', 'plan')}; running {kind}", []).append(name)
        kinds[name] = kind
    for text in _group(fallback):
        notes.add(text)
    return PlanChoice(kinds, missing, notes)


def missing_plans_reason(bundle_path: Path, networks: Sequence[str], missing: Sequence[str], precision: str) -> str:
    """Why TensorRT cannot run: the plans that are not in the bundle, and how to build them."""
    which = "any network" if len(missing) == len(networks) else ", ".join(missing)
    return (f"{bundle_path} has no TensorRT {' / '.join(PLAN_CHAINS[precision])} plan for {which} (build them on this "
            f"device: edge-mmer convert --bundle {bundle_path} --tensorrt --plan-precision {precision})")
