"""What is profiled: one or more variants (backend x precision) of a bundle's networks, loaded side by side.

``--compare fp32,int8`` / ``--compare onnxruntime,tensorrt`` / ``--compare onnxruntime:fp32,tensorrt:fp16``:
an item is a precision, a backend, or ``backend:precision``; what an item leaves out comes from
``--backend`` / ``--precision``. Precisions are the runtime's (``fp32``, ``fp16``, ``int8``) plus the
conversion's INT8 flavour names: ``int8-cpu`` (the Q/DQ graph for ONNX Runtime's CPU provider) and
``int8-trt`` (the TensorRT Q/DQ graph: TensorRT, or ONNX Runtime's TensorRT EP).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from edge_mmer.bundle import Bundle
from edge_mmer.errors import VariantError
from edge_mmer.runtime.networks import Networks
from edge_mmer.runtime.runners.base import RunnerError
from edge_mmer.runtime.runners.load import BACKENDS, LoadedRunners, load_runners
from edge_mmer.vocab import PRECISIONS, ArtifactKind

log = logging.getLogger(__name__)

INT8_FLAVOURS = (ArtifactKind.INT8_CPU, ArtifactKind.INT8_TRT)
"""The conversion's INT8 flavours, profiled by the name of the artifact each runs."""
PRECISION_NAMES = (*PRECISIONS, *(kind.value for kind in INT8_FLAVOURS))


@dataclass(frozen=True)
class Variant:
    label: str
    backend: str  # auto | onnxruntime | tensorrt
    precision: str  # one of PRECISION_NAMES

    @property
    def runtime_precision(self) -> str:
        """What ``load_runners`` takes: int8-cpu / int8-trt are both ``int8``."""
        return "int8" if self.precision.startswith("int8") else self.precision

    @property
    def providers(self) -> list[str] | None:
        """ONNX Runtime providers an INT8 flavour needs (None: the runtime's automatic choice)."""
        if self.backend == "tensorrt":
            return None
        if self.precision == ArtifactKind.INT8_CPU:
            return ["cpu"]
        if self.precision == ArtifactKind.INT8_TRT:
            return ["tensorrt"]
        return None


def _one(item: str, backend: str, precision: str) -> Variant:
    text = item.strip()
    if not text:
        raise VariantError("--compare: an empty item (expected e.g. 'fp32,int8' or 'onnxruntime,tensorrt')")
    b, p = backend, precision
    if ":" in text:
        b, _, p = text.partition(":")
    elif text in BACKENDS:
        b = text
    else:
        p = text
    if b not in BACKENDS:
        raise VariantError(f"--compare item {text!r}: backend {b!r} is not one of {', '.join(BACKENDS)}")
    if p not in PRECISION_NAMES:
        raise VariantError(f"--compare item {text!r}: precision {p!r} is not one of {', '.join(PRECISION_NAMES)}")
    if p == ArtifactKind.INT8_CPU and b == "tensorrt":
        raise VariantError(f"--compare item {text!r}: int8-cpu is the ONNX Runtime CPU graph; "
                           "TensorRT runs int8 (its tensorrt-int8 plan, from the int8-trt graph)")
    return Variant(text, b, p)


def parse_variants(compare: str | None, backend: str = "auto", precision: str = "fp32") -> list[Variant]:
    """The variants to profile, in order (the first is the baseline of every ratio)."""
    if backend not in BACKENDS:
        raise VariantError(f"--backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    if precision not in PRECISION_NAMES:
        raise VariantError(f"--precision {precision!r}: expected one of {', '.join(PRECISION_NAMES)}")
    if not compare:
        v = _one(precision, backend, precision)
        return [Variant(f"{backend}:{precision}" if backend != "auto" else precision, v.backend, v.precision)]
    variants = [_one(x, backend, precision) for x in compare.split(",")]
    labels = [v.label for v in variants]
    if len(set(labels)) != len(labels):
        raise VariantError(f"--compare {compare!r}: an item appears twice")
    if len(variants) < 2:
        raise VariantError(f"--compare {compare!r}: name at least two variants (e.g. fp32,int8)")
    return variants


@dataclass
class LoadedVariant:
    """A variant's runners, loaded and activated, and what was chosen for it."""

    variant: Variant
    loaded: LoadedRunners
    load_s: float
    networks: Networks
    first_inference_ms: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.variant.label

    def describe(self) -> dict[str, Any]:
        return {
            "label": self.variant.label,
            "backend_asked": self.variant.backend,
            "precision_asked": self.variant.precision,
            "backend": self.loaded.backend,
            "precision": self.loaded.precision,
            "artifacts": dict(self.loaded.artifacts),
            "runners": {n: r.description for n, r in self.loaded.runners.items()},
            "providers": sorted({p for r in self.loaded.runners.values() for p in getattr(r, "providers_used", [])}),
            "notes": list(self.loaded.notes),
            "load_s": self.load_s,
            "first_inference_ms": dict(self.first_inference_ms),
        }

    def close(self) -> None:
        self.loaded.close()


def load_variant(bundle: Bundle, variant: Variant, threads: int = 0) -> LoadedVariant:
    """Load and activate every network of ``bundle`` for ``variant``; RunnerError says what is missing."""
    t0 = time.perf_counter()
    try:
        loaded = load_runners(bundle, backend=variant.backend, precision=variant.runtime_precision, threads=threads,
                              providers=variant.providers)
    except RunnerError as exc:
        raise RunnerError(f"variant {variant.label!r}: {exc}") from exc
    if variant.precision in INT8_FLAVOURS and loaded.backend == "onnxruntime":
        kinds = set(loaded.artifacts.values())
        if variant.precision not in kinds:
            loaded.close()
            raise RunnerError(f"variant {variant.label!r}: no network runs the '{variant.precision}' artifact "
                              f"(it runs {', '.join(sorted(kinds))}); convert it: edge-mmer convert --bundle "
                              f"{bundle.path} --precision {variant.precision}")
    load_s = time.perf_counter() - t0
    networks = loaded.networks()
    networks.activate()
    return LoadedVariant(variant, loaded, load_s, networks)
