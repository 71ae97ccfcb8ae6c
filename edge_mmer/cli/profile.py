"""``edge-mmer profile``: where the time goes on this device, per stage and per network (torch-free)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from edge_mmer.cli.args import Subparsers, add_bundle, add_command, add_inference, add_settings
from edge_mmer.errors import EdgeMmerError

log = logging.getLogger(__name__)

DESCRIPTION = """\
Profile the real pipeline on this device: per-stage latency (capture wait, VAD, log-mel, speech
encoder, face detection, face encoder, context LSTMs, mask, fusion, SVMs, fuzzy integral, sink),
end-to-end decision latency, throughput (real-time factor, analysed fps), drops, CPU % and peak RSS.
--micro times each network alone (warm-up, then >= 1000 runs) for comparison with trtexec.
--compare runs several variants in one process, interleaved, with speed-ups against the first.

Writes profile.json (schema edge-mmer/profile/v1), profile.md, PNG plots (with matplotlib) and the
events of each variant (events-<variant>.jsonl) to --out, and prints a summary. On a Jetson it
records L4T, nvpmodel, jetson_clocks, clocks, temperatures and power (tegrastats) and warns when
clocks are not pinned. Exit status 1 when the per-stage sums do not add up to the end-to-end figures.
"""

EPILOG = """\
examples:
  edge-mmer profile                                   demo bundle on the demo clip, one pass
  edge-mmer profile --compare fp32,int8               FP32 vs INT8, interleaved, with speed-ups
  edge-mmer profile --micro --runs 1000               each network alone, like trtexec
  edge-mmer profile --bundle runs/demo --compare onnxruntime,tensorrt --runs 5
  edge-mmer profile --source live --duration 120      the live loop on camera 0 + the default microphone
  edge-mmer profile --source talk.mp4 --realtime      a recording through the live loop, paced like a camera
"""

DEFAULT_OUT = Path("runs/profile")


def add_parser(sub: Subparsers) -> None:
    p = add_command(sub, "profile", help="per-stage latency of the real pipeline on this device",
                    description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_bundle(p, default="--config's [run] bundle, else the committed demo bundle")
    add_settings(p, note="the profile takes its VAD, faces and decision, and [run] camera / mic for --source live")
    add_inference(p, int8_flavours=True)
    p.add_argument("--source", default="demo", metavar="demo|live|PATH",
                   help="demo (the demo clip), live (camera + microphone through the running loop), or a media "
                        "file (default: demo)")
    lim = p.add_mutually_exclusive_group()
    lim.add_argument("--duration", dest="duration_s", type=float, default=None, metavar="S",
                     help="pipeline: the first S seconds of the source (live: S seconds; default 60); "
                          "micro: S seconds per network and variant instead of --runs")
    lim.add_argument("--utterances", type=int, default=None, metavar="N", help="stop after N utterances")
    p.add_argument("--compare", default=None, metavar="A,B[,...]",
                   help="variants to compare in one run, interleaved: precisions (fp32,int8 or fp32,int8-cpu), "
                        "backends (onnxruntime,tensorrt) or backend:precision; ratios are against the first")
    p.add_argument("--micro", action="store_true", help="time each network alone instead of the pipeline")
    p.add_argument("--networks", default=None, metavar="A,B", help="micro: networks to time (default: all five)")
    p.add_argument("--runs", type=int, default=None, metavar="N",
                   help="pipeline: passes over the source per variant (default 1, 3 with --compare); "
                        "micro: timed runs per network (default 1000)")
    p.add_argument("--warmup", type=int, default=None, metavar="N",
                   help="untimed inferences per network first (default 3; micro 50)")
    p.add_argument("--emit", choices=("every", "change"), default="every",
                   help="every decision is an event and timed end to end (default), or only changes (as deployed)")
    p.add_argument("--realtime", action="store_true",
                   help="a file source through the running loop, paced to real time like a camera (drops counted)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                   help="where profile.json, profile.md, the plots and the events go (default: %(default)s)")
    p.add_argument("--no-plots", dest="plots", action="store_false", help="skip the PNG plots")
    p.add_argument("--no-device-probes", dest="probe_device", action="store_false",
                   help="do not run nvpmodel / jetson_clocks / tegrastats")


def run(args: argparse.Namespace) -> int:
    from edge_mmer.runtime.profiling.profiler import ProfileOptions, command_line, run_profile

    opts = ProfileOptions(
        bundle=args.bundle, source=args.source, backend=args.backend or "auto", precision=args.precision or "fp32",
        compare=args.compare, duration_s=args.duration_s, utterances=args.utterances, micro=args.micro,
        runs=args.runs, warmup=args.warmup,
        networks=[n.strip() for n in args.networks.split(",") if n.strip()] if args.networks else None,
        threads=0 if args.threads is None else args.threads, emit=args.emit, realtime=args.realtime,
        config=args.config, out=args.out, plots=args.plots, probe_device=args.probe_device, command=command_line())
    result = run_profile(opts)
    sys.stdout.write(result.console)
    if not result.consistent:
        raise EdgeMmerError("the per-stage sums do not add up to the end-to-end figures "
                            f"(see {result.files['markdown']})")
    return 0
