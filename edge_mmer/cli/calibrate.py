"""``edge-mmer calibrate build | record``: INT8 calibration sets, from a dataset split or on the device."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge_mmer.cli.args import (
    SOURCES_USAGE,
    Subparsers,
    add_bundle,
    add_command,
    add_progress,
    add_settings,
    add_sources,
    missing_extra,
    progress,
    text,
)
from edge_mmer.errors import UsageError
from edge_mmer.runtime.settings import load_settings, with_run_overrides
from edge_mmer.vocab import SPLITS

CALIBRATION_SPLITS = tuple(s for s in SPLITS if s != "test")  # the held-out split is never calibrated on

RECORD_DESCRIPTION = """\
Run the runtime loop on a camera + microphone (or files) with the bundle's FP32 ONNX networks and
keep every network's inputs until N utterances and M face windows are recorded. The file holds what
the networks see (log-mel matrices, face crops): it is written because you ask for it; keep it as
private as the recordings it comes from.
"""

RECORD_EPILOG = """\
example: edge-mmer calibrate record --bundle runs/demo --camera 0 --mic USB --utterances 200 --out calib-device.npz

""" + SOURCES_USAGE


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser("calibrate", help="build INT8 calibration sets (real inputs per network, with provenance)",
                    description="Calibration sets for INT8 quantization: the inputs every network of a bundle sees, "
                    "through the training front ends, saved as .npz (no pickle) with their provenance and sha256.")
    csub = p.add_subparsers(dest="calibrate_command", required=True)
    b = add_command(csub, "build", help="from a dataset split (train or val; never test)",
                    description="Run the training front ends and the bundle's torch networks over the first N "
                    "utterances of a train/val split and save every network's inputs.")
    add_bundle(b)
    b.add_argument("--data", type=Path, default=None,
                   help="dataset directory (default: the manifest's provenance.dataset.path)")
    b.add_argument("--split", default="train", choices=CALIBRATION_SPLITS,
                   help="split to sample (the test split is never used for calibration) (default: %(default)s)")
    b.add_argument("--utterances", type=int, default=200, metavar="N", help="utterances to use (default: %(default)s)")
    b.add_argument("--out", type=Path, required=True, help="output .npz file")
    add_progress(b)
    r = add_command(csub, "record", help="on the device: through the runtime's own sources and front ends (torch-free)",
                    description=RECORD_DESCRIPTION, epilog=RECORD_EPILOG,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    add_bundle(r, default="the committed demo bundle")
    add_settings(r)
    add_sources(r)
    r.add_argument("--utterances", type=int, default=200, metavar="N",
                   help="utterances to record (default: %(default)s)")
    r.add_argument("--faces", type=int, default=200, metavar="M",
                   help="face windows to record (utterances with a face in view; default: %(default)s)")
    r.add_argument("--out", type=Path, required=True, help="output .npz file")


def run(args: argparse.Namespace) -> int:
    if args.calibrate_command == "record":
        return _record(args)
    return _build(args)


def _build(args: argparse.Namespace) -> int:
    if args.utterances < 1:
        raise UsageError("--utterances must be >= 1")
    try:  # torch: the builder runs the bundle's encoders
        from edge_mmer.calibration.from_dataset import build_from_dataset
        from edge_mmer.calibration.sets import save_calibration_set
    except ImportError as exc:
        raise missing_extra(exc, "'train' extra") from exc
    cs = build_from_dataset(args.bundle, args.data, args.split, args.utterances, progress=progress(args))
    digest = save_calibration_set(cs, args.out)
    _report(args.out, cs.provenance, cs.counts(), digest)
    return 0


def _record(args: argparse.Namespace) -> int:
    if args.utterances < 1 or args.faces < 0:
        raise UsageError(f"need --utterances >= 1 and --faces >= 0, got {args.utterances}, {args.faces}")
    from edge_mmer.calibration.record import record_calibration_set
    from edge_mmer.calibration.sets import save_calibration_set

    settings = with_run_overrides(load_settings(args.config), bundle=text(args.bundle), camera=args.camera,
                                  mic=args.mic, realtime=args.realtime)
    cs = record_calibration_set(settings, utterances=args.utterances, faces=args.faces)
    digest = save_calibration_set(cs, args.out)
    _report(args.out, cs.provenance, cs.counts(), digest)
    return 0


def _report(out: Path, provenance: dict[str, object], counts: dict[str, int], digest: str) -> None:
    per_network = ", ".join(f"{k} {v}" for k, v in counts.items())
    sys.stdout.write(f"OK: {out}: {provenance['source']}, {provenance['utterances']} utterances; "
                     f"samples per network: {per_network}; sha256 {digest}\n")
