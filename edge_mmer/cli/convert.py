"""``edge-mmer convert``: ONNX (FP32, FP16, INT8) and TensorRT artifacts of a bundle's networks, checked."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from edge_mmer.cli.args import Subparsers, add_bundle, add_command, add_progress, missing_extra, progress
from edge_mmer.errors import ConvertError, UsageError
from edge_mmer.vocab import CONVERT_PRECISIONS, PLAN_PRECISIONS

TRT_RELEASES = ("8.6", "10.3", "10.15")  # whose ONNX parser operator lists convert/data holds


def add_parser(sub: Subparsers) -> None:
    p = add_command(
        sub, "convert",
        help="export the bundle's networks to ONNX (FP32, FP16), check them, and record them in the bundle",
        description="Export every network of a bundle to ONNX (opset 17), clean it up (onnxslim), check its "
        "operators against a TensorRT release's ONNX parser, and measure its parity with PyTorch on real "
        "validation samples of the bundle's dataset (FP32 must be within 1e-4). The ONNX files and their "
        "facts are added to the bundle's manifest (networks.<name>.artifacts); nothing is written if a check fails.",
    )
    add_bundle(p, in_place=True)
    p.add_argument("--precision", default="fp32,fp16",
                   help="comma-separated precisions to write: fp32, fp16, int8-cpu (Q/DQ, UINT8 activations, for "
                   "ONNX Runtime on CPUs), int8-trt (Q/DQ, symmetric INT8, TensorRT's rules) (default: %(default)s)")
    p.add_argument("--data", type=Path, default=None,
                   help="dataset for the parity samples (default: the manifest's provenance.dataset.path)")
    p.add_argument("--trt-version", default="10.3", choices=TRT_RELEASES,
                   help="TensorRT release whose ONNX operator list the graphs must pass (default: %(default)s)")
    p.add_argument("--samples", type=int, default=16, help="validation utterances for parity (default: %(default)s)")
    p.add_argument("--overwrite-artifacts", action="store_true",
                   help="replace ONNX artifacts an earlier conversion wrote (their files are removed)")
    add_progress(p)
    q = p.add_argument_group("INT8 (quantized from the onnx-fp32 artifacts; drift measured on the test split)")
    q.add_argument("--calibration", type=Path, default=None,
                   help="calibration set (.npz from `edge-mmer calibrate build`); default: build one from the "
                   "dataset's train split and save it beside the bundle as <bundle>.calibration.npz")
    q.add_argument("--calibration-utterances", type=int, default=200,
                   help="train utterances for a calibration set built here (default: %(default)s)")
    q.add_argument("--calibrate-method", default="minmax", choices=("minmax", "entropy", "percentile"),
                   help="activation range calibration (default: %(default)s)")
    q.add_argument("--drift-utterances", type=int, default=None,
                   help="test utterances for the drift figures (default: the whole test split)")
    q.add_argument("--min-agreement", type=float, default=0.99,
                   help="end-to-end top-1 agreement with FP32 below which an INT8 artifact is not deployable "
                   "(default: %(default)s)")
    q.add_argument("--max-accuracy-drop", type=float, default=0.01,
                   help="test accuracy drop vs FP32 above which it is not deployable (default: %(default)s)")
    q.add_argument("--min-cosine", type=float, default=0.99,
                   help="per-network output cosine vs FP32 below which it is not deployable (default: %(default)s)")
    trt = p.add_argument_group("TensorRT plans (run on the target device: a plan is tied to its TensorRT and GPU)")
    trt.add_argument("--tensorrt", action="store_true",
                     help="also build a TensorRT plan per network from its ONNX artifact and record the build facts; "
                     "existing ONNX artifacts of --plan-precision are used as they are (no torch needed)")
    trt.add_argument("--plan-precision", default="fp16", choices=PLAN_PRECISIONS,
                     help="which ONNX artifact to compile: fp16 -> onnx-fp16, fp32 -> onnx-fp32, int8 -> the int8-trt "
                     "Q/DQ model (INT8 + FP16 flags; networks without one, the LSTMs, get an FP16 plan) "
                     "(default: %(default)s)")
    trt.add_argument("--workspace-mib", type=int, default=1024, help="builder workspace limit (default: %(default)s)")
    trt.add_argument("--dla-core", type=int, default=None,
                     help="put the face encoder on this DLA core with GPU fallback (Orin AGX / NX); static batch")
    trt.add_argument("--timing-cache", type=Path, default=None, help="timing cache file to reuse and update")
    trt.add_argument("--strongly-typed", action="store_true",
                     help="strongly typed network (types from the ONNX file; TensorRT 10 and 11)")


def _precisions(spec: str) -> tuple[str, ...]:
    precisions = tuple(p.strip() for p in spec.split(",") if p.strip())
    if not precisions or any(p not in CONVERT_PRECISIONS for p in precisions):
        raise UsageError(f"--precision {spec!r}: expected a comma-separated list of {', '.join(CONVERT_PRECISIONS)}")
    return precisions


def run(args: argparse.Namespace) -> int:
    precisions = _precisions(args.precision)
    if args.samples < 1:
        raise UsageError("--samples must be >= 1")
    if args.calibration_utterances < 1:
        raise UsageError("--calibration-utterances must be >= 1")
    export = True
    if args.tensorrt:
        _check_dla(args)
        export = _needs_export(args)
    if export:
        _export(args, precisions)
    if args.tensorrt:
        _build_plans(args)
    return 0


def _check_dla(args: argparse.Namespace) -> None:
    """--dla-core with a precision DLA cannot run is refused here, before TensorRT or torch is needed."""
    from edge_mmer.convert.tensorrt_preflight import dla_precision_refusal

    refusal = dla_precision_refusal(args.plan_precision, args.dla_core)
    if refusal is not None:
        raise UsageError(f"--dla-core {args.dla_core} with --plan-precision {args.plan_precision}: {refusal}")
    if args.dla_core is not None and args.dla_core < 0:
        raise UsageError(f"--dla-core must be >= 0, got {args.dla_core}")


def _needs_export(args: argparse.Namespace) -> bool:
    """With --tensorrt: TensorRT is here (nothing is written without it), and whether ONNX must be exported first."""
    from edge_mmer.bundle import read_bundle
    from edge_mmer.convert.tensorrt_build import tensorrt_available
    from edge_mmer.convert.tensorrt_plans import missing_plan_sources

    ok, reason = tensorrt_available()
    if not ok:
        raise ConvertError(f"--tensorrt: {reason}. Build plans on the target device.")
    networks = read_bundle(args.bundle).network_specs
    have_onnx = not missing_plan_sources(networks, args.plan_precision, strongly_typed=args.strongly_typed)
    return not have_onnx or bool(args.overwrite_artifacts)


def _export(args: argparse.Namespace, precisions: tuple[str, ...]) -> None:
    try:  # torch, onnx: only once the arguments are good
        from edge_mmer.convert.onnx_artifacts import ConvertOptions, convert_bundle
    except ImportError as exc:
        raise missing_extra(exc, "'train' and 'convert' extras") from exc
    opts = ConvertOptions(bundle=args.bundle, precisions=precisions, data=args.data, trt_version=args.trt_version,
                          overwrite_artifacts=args.overwrite_artifacts, samples=args.samples,
                          progress=progress(args), calibration=args.calibration,
                          calibration_utterances=args.calibration_utterances,
                          calibrate_method=args.calibrate_method, drift_utterances=args.drift_utterances,
                          min_agreement=args.min_agreement, max_accuracy_drop=args.max_accuracy_drop,
                          min_cosine=args.min_cosine)
    result = convert_bundle(opts)
    for name, kinds in result.artifacts.items():
        for kind, spec in kinds.items():
            sys.stdout.write(_artifact_line(name, kind, spec))
    sys.stdout.write(f"OK: {result.bundle_dir}: {result.added_bytes / 1e6:.2f} MB added; operators "
                     f"checked for TensorRT {args.trt_version}; bundle verified\n")


def _artifact_line(name: str, kind: str, spec: dict[str, Any]) -> str:
    if "drift" in spec:
        net, e2e = spec["drift"]["network"], spec["drift"]["end_to_end"]
        return (f"{name:15s} {kind:10s} {spec['file']:34s} cosine {net['cosine']:.6f}  max abs "
                f"{net['max_abs']:.2e}  agreement {e2e['agreement']:.4f}  accuracy "
                f"{e2e['accuracy_fp32']:.4f} -> {e2e['accuracy_int8']:.4f}  "
                f"{'deployable' if spec['deployable'] else 'NOT DEPLOYABLE'}\n")
    par = spec["parity"]
    return (f"{name:15s} {kind:10s} {spec['file']:34s} max abs {par['max_abs']:.2e}  "
            f"cosine {par['cosine']:.8f}  ({par['samples']} outputs)\n")


def _build_plans(args: argparse.Namespace) -> None:
    from edge_mmer.convert.tensorrt_plans import PlanOptions, build_bundle_plans

    plan_opts = PlanOptions(precision=args.plan_precision, workspace_mib=args.workspace_mib,
                            dla_core=args.dla_core, timing_cache=args.timing_cache,
                            strongly_typed=args.strongly_typed, overwrite=args.overwrite_artifacts)
    plans = build_bundle_plans(args.bundle, plan_opts)
    for name, spec in plans.items():
        sys.stdout.write(f"{name:15s} tensorrt-{spec['precision']} {spec['file']}  TensorRT "
                         f"{spec.get('tensorrt_version')} on {spec.get('gpu_name')}\n")
