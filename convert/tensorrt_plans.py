"""``edge-mmer convert --tensorrt``: build a TensorRT plan per network from its recorded ONNX artifact.

Runs on the target device (a plan is tied to its TensorRT version and GPU): for every network the
ONNX artifact of the requested precision must already be in the bundle; profiles come from the
manifest (:mod:`edge_mmer.bundle.shapes`); the build facts (:func:`.tensorrt_build.build_plan`) are recorded
beside the plan as ``networks.<name>.artifacts["tensorrt-<precision>"]`` so the runtime can refuse a
plan built for another device. Nothing is written unless every network built. Torch-free.

Which ONNX artifact each plan precision compiles (:func:`plan_requests`):

* ``fp32`` -> ``onnx-fp32``; ``fp16`` -> ``onnx-fp16`` (``BuilderFlag.FP16``);
* ``int8`` -> the ``int8-trt`` Q/DQ model with ``BuilderFlag.INT8`` + ``FP16`` (explicit quantization:
  no calibrator; the unquantized layers run FP16), recorded as ``tensorrt-int8`` with the calibration
  set hash and the INT8 artifact's ``deployable`` flag. A network with no ``int8-trt`` artifact (the
  context LSTMs are never quantized) or with one marked not deployable gets an FP16 plan instead,
  recorded as what it is, ``tensorrt-fp16`` (built from ``onnx-fp16``, or from ``onnx-fp32`` with the
  FP16 flag); an existing ``tensorrt-fp16`` plan is kept unless ``overwrite``. The runtime's INT8
  precision runs ``tensorrt-int8`` where it exists and ``tensorrt-fp16`` elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_mmer.bundle import Bundle, read_bundle, update_manifest
from edge_mmer.bundle.shapes import derive_profiles, static_profile_for_dla
from edge_mmer.bundle.views import ArtifactSpec, NetworkSpec
from edge_mmer.errors import BuildOptionsError, TensorRTBuildError, TensorRTPlanError
from edge_mmer.vocab import PLAN_PRECISIONS as PRECISIONS
from edge_mmer.vocab import ArtifactKind

from .plan_check import check_plan
from .tensorrt_build import (
    TensorRTBuildOptions,
    build_plan,
    preflight,
    tensorrt_available,
)
from .tensorrt_preflight import dla_precision_refusal

log = logging.getLogger(__name__)

__all__ = [
    "DLA_NETWORKS",
    "SOURCE_KINDS",
    "PlanOptions",
    "PlanRequest",
    "TensorRTPlanError",
    "build_bundle_plans",
    "missing_plan_sources",
    "plan_requests",
]

# Loops (LSTMs) cannot run on DLA: only the face CNN is a DLA candidate (reference/tensorrt.md).
DLA_NETWORKS = ("face_encoder",)

_K = ArtifactKind
SOURCE_KINDS: dict[str, ArtifactKind] = {"fp32": _K.ONNX_FP32, "fp16": _K.ONNX_FP16, "int8": _K.INT8_TRT}
"""Plan precision -> the ONNX artifact it compiles."""
_SOURCE_FLAGS: dict[ArtifactKind, str] = {_K.INT8_TRT: "int8-trt", _K.ONNX_FP16: "fp16", _K.ONNX_FP32: "fp32"}
"""An ONNX kind -> the ``edge-mmer convert --precision`` that writes it."""


@dataclass(frozen=True)
class PlanOptions:
    precision: str = "fp16"  # which ONNX artifact to compile: fp16, fp32, or int8 (the int8-trt Q/DQ model)
    workspace_mib: int = 1024
    dla_core: int | None = None  # face encoder on this DLA core, GPU fallback
    timing_cache: Path | None = None
    strongly_typed: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        refusal = dla_precision_refusal(self.precision, self.dla_core)
        if refusal is not None:
            raise BuildOptionsError(f"DLA core {self.dla_core}: {refusal}")


@dataclass(frozen=True)
class PlanRequest:
    """One plan to build (or an existing one to keep): everything but the TensorRT call."""

    network: str
    kind: ArtifactKind  # tensorrt-int8, or tensorrt-fp16 for a network without INT8
    precision: str  # the plan's precision: "int8", "fp16", "fp32"
    onnx_kind: ArtifactKind  # int8-trt, onnx-fp16, ...
    onnx_file: str  # relative to the bundle
    options: TensorRTBuildOptions | None  # None: an existing plan is kept
    note: str = ""  # why this differs from what was asked

    @property
    def file(self) -> str:
        return f"tensorrt/{self.network}.{self.precision}.plan"


def _int8_fallback(net: NetworkSpec, opts: PlanOptions) -> tuple[str, ArtifactKind] | None:
    """Why network ``net`` gets an FP16 plan instead of INT8, and from which ONNX kind; None: INT8 it is."""
    art = net.artifact(_K.INT8_TRT)
    if art is not None and art.deployable:
        return None
    if art is None:
        why = "no int8-trt artifact (LSTM step graphs are never quantized)"
    else:
        because = "; ".join(art.not_deployable_because) or "drift over the thresholds"
        why = f"its int8-trt artifact is not deployable ({because})"
    if _K.ONNX_FP16 in net.artifacts:
        return why, _K.ONNX_FP16
    if _K.ONNX_FP32 in net.artifacts and not opts.strongly_typed:  # weakly typed: the FP16 flag converts it
        return why, _K.ONNX_FP32
    return why, _K.ONNX_FP16  # reported missing


def _wanted(net: NetworkSpec, opts: PlanOptions) -> tuple[str, ArtifactKind, str]:
    """(plan precision, ONNX kind, note) for one network."""
    if opts.precision != "int8":
        return opts.precision, SOURCE_KINDS[opts.precision], ""
    fallback = _int8_fallback(net, opts)
    if fallback is None:
        return "int8", _K.INT8_TRT, ""
    why, onnx_kind = fallback
    return "fp16", onnx_kind, f"{why}: FP16 plan from {onnx_kind}"


def missing_plan_sources(networks: Mapping[str, NetworkSpec] | Iterable[NetworkSpec],
                         precision: str, strongly_typed: bool = False) -> list[str]:
    """``"<network>: <kind>"`` for every ONNX artifact a ``precision`` plan build needs and the bundle lacks.

    ``networks`` is :attr:`Bundle.network_specs <edge_mmer.bundle.Bundle.network_specs>` (or its values)."""
    if precision not in PRECISIONS:
        raise ValueError(f"plan precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    nets = list(networks.values()) if isinstance(networks, Mapping) else list(networks)
    opts = PlanOptions(precision=precision, strongly_typed=strongly_typed)
    if precision == "int8" and not any(_K.INT8_TRT in net.artifacts for net in nets):
        return [f"{net.name}: {_K.INT8_TRT}" for net in nets]
    out = []
    for net in nets:
        _, onnx_kind, _ = _wanted(net, opts)
        if onnx_kind not in net.artifacts:
            out.append(f"{net.name}: {onnx_kind}")
    return out


def plan_requests(bundle: Bundle, opts: PlanOptions) -> list[PlanRequest]:
    """What :func:`build_bundle_plans` will build, checked without TensorRT (:func:`preflight` on every
    ONNX file against its profile and precision). Raises :class:`TensorRTPlanError`."""
    if opts.precision not in PRECISIONS:
        raise TensorRTPlanError(f"plan precision must be one of {', '.join(PRECISIONS)}, got {opts.precision!r}")
    bundle_dir = bundle.path
    if opts.precision == "int8" and not any(_K.INT8_TRT in n.artifacts for n in bundle.network_specs.values()):
        raise TensorRTPlanError(f"{bundle_dir}: no network has an 'int8-trt' artifact (the Q/DQ model INT8 plans are "
                                "built from): "
                                f"run 'edge-mmer convert --bundle {bundle_dir} --precision int8-trt' first")
    out: list[PlanRequest] = []
    for name, net in bundle.network_specs.items():
        precision, onnx_kind, note = _wanted(net, opts)
        kind = ArtifactKind.plan(precision)
        source = net.artifact(onnx_kind)
        if source is None:
            raise TensorRTPlanError(f"{bundle_dir}: network '{name}' has no '{onnx_kind}' artifact: run "
                                    f"'edge-mmer convert --bundle {bundle_dir} --precision {_SOURCE_FLAGS[onnx_kind]}' "
                                    "first")
        onnx_file = source.file
        if kind in net.artifacts and not opts.overwrite:
            if precision == opts.precision:
                raise TensorRTPlanError(f"{bundle_dir}: network '{name}' already has a '{kind}' plan; "
                                        "pass --overwrite-artifacts to rebuild it")
            out.append(PlanRequest(name, kind, precision, onnx_kind, onnx_file, None,
                                   f"{note}; keeping the existing {kind} plan"))
            continue
        profiles: Any = derive_profiles(name, net, bundle.config)
        dla = opts.dla_core if name in DLA_NETWORKS else None
        if dla is not None:
            profiles = static_profile_for_dla(profiles)
        try:
            build = TensorRTBuildOptions(precision=precision, workspace_mib=opts.workspace_mib,
                                         timing_cache=opts.timing_cache, dla_core=dla,
                                         strongly_typed=opts.strongly_typed, profiles=profiles)
            preflight(bundle.file(onnx_file), build)
        except BuildOptionsError as exc:
            raise TensorRTPlanError(f"{name}: {exc}") from exc
        out.append(PlanRequest(name, kind, precision, onnx_kind, onnx_file, build, note))
    return out


def _record(req: PlanRequest, source: ArtifactSpec | None, facts: Mapping[str, Any],
            check: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The manifest entry of a plan built from ``source`` (the ONNX artifact ``req.onnx_kind``), with
    the plan's own check against FP32 ONNX (:func:`~.plan_check.check_plan`): its ``drift`` and
    ``deployable``. An INT8 plan also keeps its source's calibration hash and verdict
    (``onnx_deployable``: the end-to-end accuracy measured on held-out utterances at conversion)."""
    spec: dict[str, Any] = {"file": req.file, "format": "tensorrt-plan", "precision": req.precision,
                            "onnx": req.onnx_file, "onnx_artifact": req.onnx_kind, **facts}
    if req.precision == "int8" and source is not None:
        spec["calibration_sha256"] = (source.get("calibration") or {}).get("sha256")
        spec["onnx_deployable"] = source.get("deployable")
    if check is not None:
        spec["drift"] = dict(check["drift"])
        spec["deployable"] = bool(check["deployable"]) and spec.get("onnx_deployable") is not False
        if check.get("not_deployable_because"):
            spec["not_deployable_because"] = list(check["not_deployable_because"])
    return spec


def build_bundle_plans(bundle_dir: Path, opts: PlanOptions) -> dict[str, dict[str, Any]]:
    """Build and record one plan per network; returns ``network -> artifact spec`` (its ``precision``
    says what each network got: with ``int8``, FP16 for the networks without INT8)."""
    ok, reason = tensorrt_available()
    if not ok:
        raise TensorRTPlanError(f"--tensorrt: {reason}. Build plans on the target device (Jetson or a "
                                "GPU with TensorRT 10): "
                                "a plan only runs on the TensorRT version and GPU it was built on")
    bundle = read_bundle(bundle_dir)
    requests = plan_requests(bundle, opts)
    staged: dict[str, tuple[dict[str, Any], dict[str, bytes], list[str]]] = {}
    result: dict[str, dict[str, Any]] = {}
    for req in requests:
        net = bundle.network(req.network)
        artifacts = net.artifact_table()
        if req.note:
            log.info("%s: %s", req.network, req.note)
        if req.options is None:
            result[req.network] = artifacts[req.kind]
            continue
        bundle.read_bytes(req.onnx_file)  # verify its sha256 before compiling it
        try:
            plan, facts = build_plan(bundle.file(req.onnx_file), req.options)
        except (BuildOptionsError, TensorRTBuildError) as exc:
            raise TensorRTPlanError(f"{req.network}: {exc}") from exc
        old = ([artifacts[req.kind]["file"]] if req.kind in artifacts and artifacts[req.kind]["file"] != req.file
               else [])
        try:
            check = check_plan(bundle, req.network, plan, facts)
        except Exception as exc:  # a plan that cannot run here is recorded as not checked, not deployable
            log.warning("%s: the %s plan could not be checked against FP32 ONNX: %s", req.network, req.precision, exc)
            check = {"drift": {"error": str(exc)}, "deployable": False,
                     "not_deployable_because": [f"the plan could not be checked: {exc}"]}
        artifacts[req.kind] = _record(req, net.artifact(req.onnx_kind), facts, check)
        staged[req.network] = (artifacts, {req.file: plan}, old)
        result[req.network] = artifacts[req.kind]
        log.info("%s: %s plan built from %s (%d bytes)", req.network, req.precision, req.onnx_kind, len(plan))
    for name, (artifacts, files, old) in staged.items():
        update_manifest(bundle_dir, f"networks.{name}.artifacts", artifacts, new_files=files, remove_files=old)
    read_bundle(bundle_dir)  # what we wrote must verify
    return result
