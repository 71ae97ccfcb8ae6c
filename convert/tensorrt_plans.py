"""``edge-mmer convert --tensorrt``: build a TensorRT plan per network from its recorded ONNX artifact.

Runs on the target device (a plan is tied to its TensorRT version and GPU): for every network the
ONNX artifact of the requested precision must already be in the bundle; profiles come from the
manifest (:mod:`.profiles`); the build facts (:func:`.tensorrt_build.build_plan`) are recorded
beside the plan as ``networks.<name>.artifacts["tensorrt-<precision>"]`` so the runtime can refuse a
plan built for another device. Nothing is written unless every network built. Torch-free.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_mmer.bundle import read_bundle, update_manifest

from .profiles import derive_profiles, static_profile_for_dla
from .tensorrt_build import BuildOptionsError, TensorRTBuildError, TensorRTBuildOptions, build_plan, tensorrt_available

logger = logging.getLogger(__name__)

__all__ = ["DLA_NETWORKS", "PlanOptions", "TensorRTPlanError", "build_bundle_plans"]

# Loops (LSTMs) cannot run on DLA: only the face CNN is a DLA candidate (reference/tensorrt.md).
DLA_NETWORKS = ("face_encoder",)


class TensorRTPlanError(RuntimeError):
    """Plans could not be built; nothing was written."""


@dataclass(frozen=True)
class PlanOptions:
    precision: str = "fp16"  # which ONNX artifact to compile: fp16 (or fp32)
    workspace_mib: int = 1024
    dla_core: int | None = None  # face encoder on this DLA core, GPU fallback
    timing_cache: Path | None = None
    strongly_typed: bool = False
    overwrite: bool = False


def build_bundle_plans(bundle_dir: Path, opts: PlanOptions) -> dict[str, dict[str, Any]]:
    """Build and record one plan per network; returns ``network -> artifact spec``."""
    ok, reason = tensorrt_available()
    if not ok:
        raise TensorRTPlanError(f"--tensorrt: {reason}. Build plans on the target device (Jetson or a "
                                "GPU with TensorRT 10): a plan only runs on the TensorRT version and GPU it was built on")
    bundle = read_bundle(bundle_dir)
    onnx_kind, plan_kind = f"onnx-{opts.precision}", f"tensorrt-{opts.precision}"
    staged: dict[str, tuple[dict[str, Any], dict[str, bytes], list[str]]] = {}
    for name, entry in bundle.networks.items():
        artifacts = dict(entry["artifacts"])
        if onnx_kind not in artifacts:
            raise TensorRTPlanError(f"{bundle_dir}: network '{name}' has no '{onnx_kind}' artifact: run "
                                    f"'edge-mmer convert --bundle {bundle_dir} --precision {opts.precision}' first")
        if plan_kind in artifacts and not opts.overwrite:
            raise TensorRTPlanError(f"{bundle_dir}: network '{name}' already has a '{plan_kind}' plan; "
                                    "pass --overwrite-artifacts to rebuild it")
        profiles: Any = derive_profiles(name, entry, bundle.config)
        dla = opts.dla_core if name in DLA_NETWORKS else None
        if dla is not None:
            profiles = static_profile_for_dla(profiles)
        onnx_path = bundle.file(artifacts[onnx_kind]["file"])
        bundle.read_bytes(artifacts[onnx_kind]["file"])  # verify its sha256 before compiling it
        try:
            build = TensorRTBuildOptions(precision=opts.precision, workspace_mib=opts.workspace_mib,
                                         timing_cache=opts.timing_cache, dla_core=dla,
                                         strongly_typed=opts.strongly_typed, profiles=profiles)
            plan, facts = build_plan(onnx_path, build)
        except (BuildOptionsError, TensorRTBuildError) as exc:
            raise TensorRTPlanError(f"{name}: {exc}") from exc
        rel = f"tensorrt/{name}.{opts.precision}.plan"
        old = [artifacts[plan_kind]["file"]] if plan_kind in artifacts and artifacts[plan_kind]["file"] != rel else []
        artifacts[plan_kind] = {"file": rel, "format": "tensorrt-plan", "precision": opts.precision,
                                "onnx": artifacts[onnx_kind]["file"], **facts}
        staged[name] = (artifacts, {rel: plan}, old)
        logger.info("%s: %s plan built (%d bytes)", name, opts.precision, len(plan))
    for name, (artifacts, files, old) in staged.items():
        update_manifest(bundle_dir, f"networks.{name}.artifacts", artifacts, new_files=files, remove_files=old)
    read_bundle(bundle_dir)  # what we wrote must verify
    return {name: artifacts[plan_kind] for name, (artifacts, _, _) in staged.items()}
