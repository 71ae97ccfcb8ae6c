"""Each TensorRT plan checked after its build, against the FP32 ONNX model: its own drift and verdict.

A plan is not the ONNX model it came from: TensorRT fuses layers, picks kernels, runs FP16 where the
weak typing allows it (the LSTMs over up to 799 steps in an FP16 plan) and rounds INT8 its own way.
So after :func:`~edge_mmer.convert.tensorrt_build.build_plan`, :func:`check_plan` runs the plan and
the network's ``onnx-fp32`` artifact (ONNX Runtime, CPU) on the same feeds and compares them through
the one comparator, :mod:`edge_mmer.convert.compare` (cosine, max-abs, per output). The plan's
record gets ``drift`` (the figures, the reference, the shapes run) and ``deployable`` (every output's
cosine at or over :data:`PLAN_MIN_COSINE` for its precision) — its own, not the ONNX artifact's.

The feeds: seeded random inputs at the profile's min, opt and max shape of each dynamic axis (so the
speech encoder runs at three time lengths, the face encoder at three batch sizes), two runs each, or
the caller's own held-out feeds. Random inputs test the arithmetic of the plan, not the accuracy on
real data; the end-to-end accuracy of INT8 is the ONNX artifact's drift record (measured on held-out
utterances at conversion).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from edge_mmer.bundle import Bundle
from edge_mmer.bundle.shapes import derive_profiles
from edge_mmer.runtime.runners.base import Runner
from edge_mmer.runtime.runners.onnxruntime_runner import OnnxRuntimeRunner
from edge_mmer.runtime.runners.tensorrt_runner import TensorRTRunner
from edge_mmer.vocab import ArtifactKind

from .compare import compare

__all__ = ["PLAN_MIN_COSINE", "check_plan", "profile_feeds"]

log = logging.getLogger(__name__)

PLAN_MIN_COSINE = {"fp32": 0.9999, "fp16": 0.999, "int8": 0.99}
"""The lowest per-output cosine against FP32 ONNX at which a plan of each precision is deployable
(INT8: the conversion's own ``min_cosine``)."""

Feeds = dict[str, np.ndarray]


def profile_feeds(bundle: Bundle, network: str, runs_per_shape: int = 2, seed: int = 0) -> list[Feeds]:
    """Seeded random feeds at the min, opt and max shape of the network's profile (one shape for a step graph)."""
    ranges = derive_profiles(network, bundle.network(network), bundle.config)
    dtypes = {s.name: s.dtype for s in bundle.network(network).inputs}
    rng = np.random.default_rng(seed)
    shapes: list[dict[str, tuple[int, ...]]] = []
    for i in range(3):
        shape = {name: tuple(r[i]) for name, r in ranges.items()}
        if shape not in shapes:
            shapes.append(shape)
    return [{name: rng.standard_normal(shape).astype(dtypes[name]) for name, shape in s.items()}
            for s in shapes for _ in range(runs_per_shape)]


def _reference_runner(bundle: Bundle, network: str) -> Runner:
    art = bundle.artifact(network, ArtifactKind.ONNX_FP32)
    if art is None:
        raise ValueError(f"{network}: no onnx-fp32 artifact to check the plan against")
    net = bundle.network(network)
    return OnnxRuntimeRunner(network, bundle.read_bytes(art.file), net.inputs, net.outputs)


def _plan_runner(bundle: Bundle, network: str, plan: bytes, facts: Mapping[str, Any]) -> Runner:
    net = bundle.network(network)
    return TensorRTRunner(network, plan, net.inputs, net.outputs, build_facts=facts)


def _run(runner: Runner, feeds: Sequence[Feeds]) -> list[dict[str, np.ndarray]]:
    with runner:
        return [runner.infer(f) for f in feeds]


def check_plan(bundle: Bundle, network: str, plan: bytes, facts: Mapping[str, Any], *,
               feeds: Sequence[Feeds] | None = None,
               plan_runner: Callable[[], Runner] | None = None) -> dict[str, Any]:
    """``{"drift": ..., "deployable": bool, "not_deployable_because": [...]}`` for one built plan.

    ``plan_runner`` replaces the TensorRT runner of ``plan`` (a test runs another backend through the
    same comparison)."""
    precision = str(facts.get("precision", "fp16"))
    runs = list(feeds) if feeds is not None else profile_feeds(bundle, network)
    reference = _run(_reference_runner(bundle, network), runs)
    candidate = _run(plan_runner() if plan_runner is not None else _plan_runner(bundle, network, plan, facts), runs)
    names = [s.name for s in bundle.network(network).outputs]
    result = compare(reference, candidate, names)
    threshold = PLAN_MIN_COSINE.get(precision, PLAN_MIN_COSINE["fp16"])
    because = [f"{name} cosine {c.cosine:.6f} < {threshold}" for name, c in result.items()
               if not c.cosine >= threshold]
    shapes = sorted({", ".join(f"{k} {list(v.shape)}" for k, v in f.items()) for f in runs})
    drift = {"reference": "onnx-fp32 on ONNX Runtime (CPU)", "feeds": "caller" if feeds is not None else
             "seeded random at the profile's min / opt / max", "runs": len(runs), "shapes": shapes,
             "min_cosine": threshold,
             "outputs": {n: {"cosine": c.cosine, "max_abs": c.max_abs, "samples": c.samples}
                         for n, c in result.items()}}
    if because:
        log.warning("%s: the %s plan drifts from FP32 ONNX: %s", network, precision, "; ".join(because))
    return {"drift": drift, "deployable": not because, "not_deployable_because": because}
