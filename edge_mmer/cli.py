"""The ``edge-mmer`` command line: one console script, one subcommand per job.

Heavy imports (torch, OpenCV, libsvm) happen inside the subcommand that needs them, so
``edge-mmer --help`` and ``edge-mmer bundle verify`` stay fast and torch-free.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from edge_mmer import __version__
from edge_mmer.vocab import CONVERT_PRECISIONS as PRECISION_CHOICES

log = logging.getLogger(__name__)

DEFAULT_DATASET = "synthetic"
DEFAULT_SYNTH_DIR = Path("data/synthetic")
DEFAULT_OUT = Path("runs/demo")

DESCRIPTION = """\
edge-mmer: multimodal (speech + face) emotion recognition for robots and kiosks.

Run with no subcommand to do the embedded default job: the live loop ('edge-mmer run') with the
committed demo bundle on the committed demo clip, one emotion event per line on stdout, exiting
when the clip ends. The demo model is trained on SYNTHETIC data: its events show that the loop
works, not how well it recognises real people.
"""

EPILOG = """\
examples:
  edge-mmer                                   the live loop: demo bundle on the demo clip, events on stdout
  edge-mmer run --bundle runs/demo --camera 0 --mic default --sink mqtt://localhost:1883/edge-mmer
  edge-mmer synth --out data/synthetic        generate the synthetic dataset
  edge-mmer train --dataset synthetic:data/synthetic --config demo --out runs/demo
  edge-mmer bundle verify runs/demo           check every file of a bundle against its manifest
  edge-mmer bundle show runs/demo             what a bundle holds, before you deploy it
  edge-mmer convert --bundle runs/demo        add ONNX FP32/FP16 networks, checked against PyTorch
  edge-mmer calibrate build --bundle runs/demo --out calib.npz   INT8 calibration set (train split)
  edge-mmer convert --bundle runs/demo --precision int8-cpu,int8-trt --calibration calib.npz
"""



def _add_synth(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "synth",
        help="generate the synthetic audio-visual emotion dataset (espeak-ng speech + rendered faces)",
        description="Generate a deterministic synthetic dataset: sessions of utterances, each a talking-face "
        "video and espeak-ng speech whose expression and prosody depend on the emotion. Speakers are split "
        "train/validation/test (speaker-independent). Optionally also write the demo clip.",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_SYNTH_DIR, help="output directory (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same files (default: %(default)s)")
    p.add_argument("--speakers", type=int, default=None, help="number of speakers (default: the generator's)")
    p.add_argument("--sessions", type=int, default=None, help="sessions per speaker (default: the generator's)")
    p.add_argument("--utterances", type=int, default=None, help="utterances per session (default: the generator's)")
    p.add_argument("--demo-clip", type=Path, default=None, metavar="MP4",
                   help="also write the ~25 s demo clip (video + audio, ground truth beside it) to this path")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset directory")


def _add_train(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "train",
        help="train the full pipeline (encoders, context LSTMs, chi-square, fusion, LIBSVMs, fuzzy integral) into a bundle",
        description="Train the paper's pipeline end to end and write a verified model bundle with metrics "
        "(per channel and per class, with and without chi-square selection) and a confusion-matrix PNG.",
    )
    p.add_argument("--dataset", default=DEFAULT_DATASET, metavar="KIND:PATH",
                   help="'synthetic' (generated into data/synthetic on first use), 'synthetic:DIR', or a real dataset: "
                   "ravdess:DIR, cremad:DIR, meld:DIR[?target=sentiment], mosi:DIR|FILE.pkl, csv:FILE.csv; options "
                   "after '?' (see the README's Datasets section). Its labels become the bundle's (default: %(default)s)")
    p.add_argument("--workers", type=int, default=0,
                   help="front-end worker processes for decoding and face detection (0 = up to 4; default: %(default)s)")
    p.add_argument("--cache", type=Path, default=None, metavar="DIR",
                   help="feature cache (log-mels and face crops, npz): a second run skips decoding, an interrupted one "
                   "resumes (default for real datasets: $XDG_CACHE_HOME/edge-mmer/features; none for synthetic)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the feature cache")
    p.add_argument("--config", default="demo", help="'demo', 'paper' or a TOML file (default: %(default)s)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="bundle directory to write (default: %(default)s)")
    p.add_argument("--seed", type=int, default=None, help="override the config's seed")
    p.add_argument("--device", default=None, help="'auto', 'cpu', 'cuda' or 'cuda:N' (default: the config's, 'auto')")
    p.add_argument("--epochs-scale", type=float, default=1.0,
                   help="multiply every epoch count (e.g. 0.2 for a quick smoke run; default: %(default)s)")
    p.add_argument("--no-ablation", action="store_true", help="skip the without-chi-square ablation (faster)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing bundle directory")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _add_bundle(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bundle", help="verify or describe a model bundle", description="Check what you deploy.")
    bsub = p.add_subparsers(dest="bundle_command", metavar="{verify,show}", required=True)
    v = bsub.add_parser("verify", help="verify every file's sha256 and the manifest schema; exit 1 on the first problem",
                        description="Verify a bundle: manifest schema and version, every listed file present with the "
                        "recorded size and sha256, no pickles, no paths outside the bundle. Exit 0 when all is well.")
    v.add_argument("dir", type=Path, help="bundle directory")
    s = bsub.add_parser("show", help="print what a bundle holds (labels, networks, SVMs, fuzzy measure, metrics)",
                        description="Describe a bundle after verifying it.")
    s.add_argument("dir", type=Path, help="bundle directory")
    s.add_argument("--no-verify", action="store_true", help="describe without checking hashes")


def _add_convert(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "convert",
        help="export the bundle's networks to ONNX (FP32, FP16), check them, and record them in the bundle",
        description="Export every network of a bundle to ONNX (opset 17), clean it up (onnxslim), check its "
        "operators against a TensorRT release's ONNX parser, and measure its parity with PyTorch on real "
        "validation samples of the bundle's dataset (FP32 must be within 1e-4). The ONNX files and their "
        "facts are added to the bundle's manifest (networks.<name>.artifacts); nothing is written if a check fails.",
    )
    p.add_argument("--bundle", type=Path, required=True, help="bundle directory to convert (updated in place)")
    p.add_argument("--precision", default="fp32,fp16",
                   help="comma-separated precisions to write: fp32, fp16, int8-cpu (Q/DQ, UINT8 activations, for "
                   "ONNX Runtime on CPUs), int8-trt (Q/DQ, symmetric INT8, TensorRT's rules) (default: %(default)s)")
    p.add_argument("--data", type=Path, default=None,
                   help="dataset for the parity samples (default: the manifest's provenance.dataset.path)")
    p.add_argument("--trt-version", default="10.3", choices=("8.6", "10.3", "10.15"),
                   help="TensorRT release whose ONNX operator list the graphs must pass (default: %(default)s)")
    p.add_argument("--samples", type=int, default=16, help="validation utterances for parity (default: %(default)s)")
    p.add_argument("--overwrite-artifacts", action="store_true",
                   help="replace ONNX artifacts an earlier conversion wrote (their files are removed)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
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
    trt.add_argument("--plan-precision", default="fp16", choices=("fp16", "fp32", "int8"),
                     help="which ONNX artifact to compile: fp16 -> onnx-fp16, fp32 -> onnx-fp32, int8 -> the int8-trt "
                     "Q/DQ model (INT8 + FP16 flags; networks without one, the LSTMs, get an FP16 plan) "
                     "(default: %(default)s)")
    trt.add_argument("--workspace-mib", type=int, default=1024, help="builder workspace limit (default: %(default)s)")
    trt.add_argument("--dla-core", type=int, default=None,
                     help="put the face encoder on this DLA core with GPU fallback (Orin AGX / NX); static batch")
    trt.add_argument("--timing-cache", type=Path, default=None, help="timing cache file to reuse and update")
    trt.add_argument("--strongly-typed", action="store_true",
                     help="strongly typed network (types from the ONNX file; TensorRT 10 and 11)")


def _add_calibrate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("calibrate", help="build INT8 calibration sets (real inputs per network, with provenance)",
                       description="Calibration sets for INT8 quantization: the inputs every network of a bundle sees, "
                       "through the training front ends, saved as .npz (no pickle) with their provenance and sha256.")
    csub = p.add_subparsers(dest="calibrate_command", metavar="{build,record}", required=True)
    b = csub.add_parser("build", help="from a dataset split (train or val; never test)",
                        description="Run the training front ends and the bundle's torch networks over the first N "
                        "utterances of a train/val split and save every network's inputs.")
    b.add_argument("--bundle", type=Path, required=True, help="bundle directory")
    b.add_argument("--data", type=Path, default=None,
                   help="dataset directory (default: the manifest's provenance.dataset.path)")
    b.add_argument("--split", default="train", choices=("train", "val"),
                   help="split to sample (the test split is never used for calibration) (default: %(default)s)")
    b.add_argument("--utterances", type=int, default=200, help="utterances to use (default: %(default)s)")
    b.add_argument("--out", type=Path, required=True, help="output .npz file")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    r = csub.add_parser(
        "record", help="on the device: through the runtime's own sources and front ends (torch-free)",
        description="Run the runtime loop on a camera + microphone (or files) with the bundle's FP32 ONNX networks "
        "and keep every network's inputs until N utterances and M face windows are recorded. The file holds "
        "what the networks see (log-mel matrices, face crops): it is written because you ask for it; keep it "
        "as private as the recordings it comes from.",
        epilog="example: edge-mmer calibrate record --bundle runs/demo --camera 0 --mic USB --utterances 200 "
        "--out calib-device.npz",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--bundle", default=None, help="bundle directory (default: the committed demo bundle)")
    r.add_argument("--camera", default=None, help="as for 'edge-mmer run' (index, file, rtsp://, GStreamer, none)")
    r.add_argument("--mic", default=None, help="as for 'edge-mmer run' (default, index, name, .wav, none)")
    r.add_argument("--config", default=None, metavar="FILE.toml", help="runtime settings (as for 'edge-mmer run')")
    r.add_argument("--utterances", type=int, default=200, help="utterances to record (default: %(default)s)")
    r.add_argument("--faces", type=int, default=200,
                   help="face windows to record (utterances with a face in view; default: %(default)s)")
    r.add_argument("--realtime", action="store_true", default=None, help="pace file sources to real time")
    r.add_argument("--out", type=Path, required=True, help="output .npz file")


def _add_evaluate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a bundle on a dataset split: the paper's Table 3 and Fig. 8, the dataset's official score",
        description="Run a bundle over a dataset split (sessions in order, the context carried, as in training) and "
        "write report.json, report.md and confusion.png: accuracy, weighted F1 and per-class accuracy for the "
        "speech, face and fused LIBSVMs and the fuzzy-integral decision; with vs without chi-square; for MELD the "
        "weighted F1 (its official score), for CMU-MOSI Acc-2 Has0 / Non0 with their F1.",
        epilog="example: edge-mmer evaluate --bundle runs/meld --dataset meld:/data/MELD --out runs/meld-eval",
    )
    p.add_argument("--bundle", type=Path, required=True, help="bundle directory")
    p.add_argument("--dataset", required=True, metavar="KIND:PATH",
                   help="the dataset (as for 'train'; same kind and target as the bundle was trained on)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="split to score (default: %(default)s)")
    p.add_argument("--out", type=Path, default=None,
                   help="report directory (default: <bundle>.eval/<kind>-<split> beside the bundle)")
    p.add_argument("--ablation", action="store_true",
                   help="measure 'without chi-square' here: retrain the back end keeping all features on the "
                   "dataset's train/val splits (slower); otherwise the bundle's training-time figures are quoted")
    p.add_argument("--epochs-scale", type=float, default=1.0, help="epoch multiplier for --ablation (default: %(default)s)")
    p.add_argument("--workers", type=int, default=0, help="front-end worker processes (0 = up to 4)")
    p.add_argument("--cache", type=Path, default=None, metavar="DIR", help="feature cache (as for 'train')")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the feature cache")
    p.add_argument("--device", default="cpu", help="'cpu', 'cuda' or 'cuda:N' for the networks (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from edge_mmer.bundle import BundleError

    progress = not (args.no_progress or args.quiet)
    dataset, workers, cache = _resolve_dataset(args, progress)
    from edge_mmer.datasets.base import DatasetError
    from edge_mmer.errors import EvaluationError
    from edge_mmer.evaluate import EvaluateOptions, evaluate_bundle  # torch when it runs

    opts = EvaluateOptions(bundle=args.bundle, dataset=dataset, out=args.out, split=args.split, workers=workers,
                           cache_dir=cache, device=args.device, ablation=args.ablation,
                           epochs_scale=args.epochs_scale, progress=progress)
    try:
        result = evaluate_bundle(opts)
    except (BundleError, DatasetError, EvaluationError) as exc:
        sys.stderr.write(f"edge-mmer evaluate: FAILED: {exc}\n")
        return 1
    sys.stdout.write(result.files["markdown"].read_text(encoding="utf-8"))
    sys.stdout.write(f"reports written to {result.out_dir} (report.json, report.md, confusion.png)\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-mmer", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"edge-mmer {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="{run,profile,synth,train,evaluate,bundle,convert,calibrate}")
    _add_synth(sub)
    _add_train(sub)
    _add_bundle(sub)
    _add_convert(sub)
    _add_calibrate(sub)
    _add_evaluate_parser(sub)
    from edge_mmer.runtime.cli_run import add_run_parser
    from edge_mmer.runtime.profiling.cli import add_profile_parser

    add_run_parser(sub)
    add_profile_parser(sub)
    return parser


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.DEBUG if verbose > 1 else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _resolve_synthetic(spec: str, seed: int, progress: bool) -> Path:
    """'synthetic' -> data/synthetic (generated when absent); 'synthetic:DIR' -> DIR (generated when absent)."""
    kind, _, rest = spec.partition(":")
    if kind != "synthetic":
        raise SystemExit(f"edge-mmer: --dataset {spec!r}: expected 'synthetic' or 'synthetic:DIR' "
                         "(real datasets arrive with the datasets issue)")
    path = Path(rest) if rest else DEFAULT_SYNTH_DIR
    if not (path / "dataset.json").is_file():
        from edge_mmer.synth import SynthConfig, generate_dataset

        log.info("synthetic dataset not found at %s: generating it (seed %d)", path, seed)
        generate_dataset(path, SynthConfig(seed=seed), progress=progress)
    return path


def _resolve_dataset(args: argparse.Namespace, progress: bool) -> tuple[Path | str, int, Path | None]:
    """--dataset, --workers, --cache / --no-cache -> (synthetic dir or KIND:PATH spec, workers, cache dir).
    Checked before torch is imported: an unknown kind or a missing path stops here."""
    from edge_mmer.datasets.base import DatasetError
    from edge_mmer.datasets.cache import default_cache_dir
    from edge_mmer.datasets.frontend import default_workers
    from edge_mmer.datasets.registry import parse_spec

    if args.workers < 0:
        raise SystemExit("edge-mmer: --workers must be >= 0")
    workers = args.workers or default_workers()
    if args.dataset == "synthetic" or args.dataset.startswith("synthetic:"):
        cache = None if args.no_cache else args.cache
        return _resolve_synthetic(args.dataset, seed=0, progress=progress), workers, cache
    try:
        spec = parse_spec(args.dataset)
    except DatasetError as exc:
        raise SystemExit(f"edge-mmer: --dataset: {exc}") from None
    if not spec.path.exists():
        raise SystemExit(f"edge-mmer: --dataset {args.dataset!r}: {spec.path} does not exist (expected KIND:PATH, "
                         "e.g. synthetic:DIR, ravdess:DIR, cremad:DIR, meld:DIR, mosi:DIR, csv:FILE.csv)")
    return spec.text, workers, None if args.no_cache else (args.cache or default_cache_dir())


def cmd_synth(args: argparse.Namespace) -> int:
    from edge_mmer.synth import SynthConfig, generate_dataset, make_demo_clip

    overrides = {k: v for k, v in (("n_speakers", args.speakers), ("sessions_per_speaker", args.sessions),
                                   ("utterances_per_session", args.utterances)) if v is not None}
    cfg = SynthConfig(seed=args.seed, **overrides)
    if args.out.exists() and any(args.out.iterdir()):
        if not args.overwrite:
            raise SystemExit(f"edge-mmer synth: {args.out} exists and is not empty (use --overwrite)")
        import shutil

        shutil.rmtree(args.out)
    path = generate_dataset(args.out, cfg, progress=not args.quiet)
    sys.stdout.write(f"synthetic dataset written to {path}\n")
    if args.demo_clip is not None:
        clip = make_demo_clip(args.demo_clip, seed=args.seed, cfg=cfg)
        sys.stdout.write(f"demo clip written to {clip}\n")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from edge_mmer.config import ConfigError, load_config

    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        raise SystemExit(f"edge-mmer train: {exc}") from exc
    if args.out.exists() and any(args.out.iterdir()) and not args.overwrite:
        raise SystemExit(f"edge-mmer train: {args.out} exists and is not empty (use --overwrite)")
    progress = not (args.no_progress or args.quiet)
    seed = cfg.train.seed if args.seed is None else args.seed
    dataset, workers, cache = _resolve_dataset(args, progress)
    from edge_mmer.train import TrainOptions, format_metrics, train  # torch: only once the arguments are good

    opts = TrainOptions(
        dataset=dataset, out=args.out, seed=seed, device=args.device or cfg.train.device,
        epochs_scale=args.epochs_scale, ablation=not args.no_ablation, overwrite=args.overwrite, progress=progress,
        workers=workers, cache_dir=cache,
    )
    result = train(cfg, opts)
    sys.stdout.write(format_metrics(result.metrics) + "\n")
    sys.stdout.write(f"bundle written to {result.bundle_dir}\n")
    return 0


def cmd_bundle(args: argparse.Namespace) -> int:
    from edge_mmer.bundle import BundleError, describe_bundle, read_bundle

    try:
        bundle = read_bundle(args.dir, verify=not getattr(args, "no_verify", False))
    except BundleError as exc:
        sys.stderr.write(f"edge-mmer bundle {args.bundle_command}: FAILED: {exc}\n")
        return 1
    if args.bundle_command == "verify":
        n = len(bundle.manifest.get("files", {}))
        sys.stdout.write(f"OK: {args.dir}: manifest and all {n} files verified (sha256)\n")
        if bundle.manifest.get("synthetic"):
            sys.stdout.write("note: this model was trained on SYNTHETIC data\n")
    else:
        sys.stdout.write(describe_bundle(bundle) + "\n")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    precisions = tuple(p.strip() for p in args.precision.split(",") if p.strip())
    if not precisions or any(p not in PRECISION_CHOICES for p in precisions):
        raise SystemExit(f"edge-mmer convert: --precision {args.precision!r}: expected a comma-separated list of "
                         f"{', '.join(PRECISION_CHOICES)}")
    if args.samples < 1:
        raise SystemExit("edge-mmer convert: --samples must be >= 1")
    if args.calibration_utterances < 1:
        raise SystemExit("edge-mmer convert: --calibration-utterances must be >= 1")
    from edge_mmer.bundle import BundleError

    try:  # torch, onnx: only once the arguments are good
        from edge_mmer.convert.bundle_convert import ConvertError, ConvertOptions, convert_bundle
    except ImportError as exc:
        raise SystemExit(f"edge-mmer convert: {exc}: install the 'train' and 'onnx' extras") from exc

    export = True
    if args.tensorrt:
        from edge_mmer.bundle import read_bundle
        from edge_mmer.convert.tensorrt_build import tensorrt_available

        ok, reason = tensorrt_available()  # before any work: nothing is written without it
        if not ok:
            sys.stderr.write(f"edge-mmer convert: FAILED: --tensorrt: {reason}. Build plans on the target device.\n")
            return 1
        try:
            networks = read_bundle(args.bundle).networks.values()
        except BundleError as exc:
            sys.stderr.write(f"edge-mmer convert: FAILED: {exc}\n")
            return 1
        from edge_mmer.convert.tensorrt_plans import missing_plan_sources

        have_onnx = not missing_plan_sources(list(networks), args.plan_precision, strongly_typed=args.strongly_typed)
        export = not have_onnx or args.overwrite_artifacts
    if export:
        opts = ConvertOptions(bundle=args.bundle, precisions=precisions, data=args.data, trt_version=args.trt_version,
                              overwrite_artifacts=args.overwrite_artifacts, samples=args.samples,
                              progress=not (args.no_progress or args.quiet), calibration=args.calibration,
                              calibration_utterances=args.calibration_utterances,
                              calibrate_method=args.calibrate_method, drift_utterances=args.drift_utterances,
                              min_agreement=args.min_agreement, max_accuracy_drop=args.max_accuracy_drop,
                              min_cosine=args.min_cosine)
        try:
            result = convert_bundle(opts)
        except (ConvertError, BundleError) as exc:
            sys.stderr.write(f"edge-mmer convert: FAILED: {exc}\n")
            return 1
        for name, kinds in result.artifacts.items():
            for kind, spec in kinds.items():
                if "drift" in spec:
                    net, e2e = spec["drift"]["network"], spec["drift"]["end_to_end"]
                    sys.stdout.write(f"{name:15s} {kind:10s} {spec['file']:34s} cosine {net['cosine']:.6f}  max abs "
                                     f"{net['max_abs']:.2e}  agreement {e2e['agreement']:.4f}  accuracy "
                                     f"{e2e['accuracy_fp32']:.4f} -> {e2e['accuracy_int8']:.4f}  "
                                     f"{'deployable' if spec['deployable'] else 'NOT DEPLOYABLE'}\n")
                    continue
                par = spec["parity"]
                sys.stdout.write(f"{name:15s} {kind:10s} {spec['file']:34s} max abs {par['max_abs']:.2e}  "
                                 f"cosine {par['cosine']:.8f}  ({par['samples']} outputs)\n")
        sys.stdout.write(f"OK: {result.bundle_dir}: {result.added_bytes / 1e6:.2f} MB added; operators "
                         f"checked for TensorRT {args.trt_version}; bundle verified\n")
    if args.tensorrt:
        from edge_mmer.convert.tensorrt_plans import PlanOptions, TensorRTPlanError, build_bundle_plans

        plan_opts = PlanOptions(precision=args.plan_precision, workspace_mib=args.workspace_mib,
                                dla_core=args.dla_core, timing_cache=args.timing_cache,
                                strongly_typed=args.strongly_typed, overwrite=args.overwrite_artifacts)
        try:
            plans = build_bundle_plans(args.bundle, plan_opts)
        except (TensorRTPlanError, BundleError) as exc:
            sys.stderr.write(f"edge-mmer convert: FAILED: {exc}\n")
            return 1
        for name, spec in plans.items():
            sys.stdout.write(f"{name:15s} tensorrt-{spec['precision']} {spec['file']}  TensorRT "
                             f"{spec.get('tensorrt_version')} on {spec.get('gpu_name')}\n")
    return 0


def cmd_calibrate_record(args: argparse.Namespace) -> int:
    from edge_mmer.calibration.record import record_calibration_set
    from edge_mmer.calibration.sets import CalibrationError, save_calibration_set
    from edge_mmer.config import ConfigError
    from edge_mmer.errors import RunError
    from edge_mmer.runtime.settings import load_settings, with_run_overrides

    try:
        settings = with_run_overrides(load_settings(args.config), bundle=args.bundle, camera=args.camera,
                                      mic=args.mic, realtime=args.realtime)
        cs = record_calibration_set(settings, utterances=args.utterances, faces=args.faces)
        digest = save_calibration_set(cs, args.out)
    except (ConfigError, RunError, CalibrationError, ValueError) as exc:
        sys.stderr.write(f"edge-mmer calibrate record: FAILED: {exc}\n")
        return 1
    counts = ", ".join(f"{k} {v}" for k, v in cs.counts().items())
    sys.stdout.write(f"OK: {args.out}: {cs.provenance['source']}, {cs.provenance['utterances']} utterances; "
                     f"samples per network: {counts}; sha256 {digest}\n")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    if args.calibrate_command == "record":
        return cmd_calibrate_record(args)
    if args.utterances < 1:
        raise SystemExit("edge-mmer calibrate build: --utterances must be >= 1")
    from edge_mmer.bundle import BundleError

    try:  # torch: the builder runs the bundle's encoders
        from edge_mmer.calibration.from_dataset import build_from_dataset
        from edge_mmer.calibration.sets import save_calibration_set
    except ImportError as exc:
        raise SystemExit(f"edge-mmer calibrate: {exc}: install the 'train' extra") from exc
    try:
        cs = build_from_dataset(args.bundle, args.data, args.split, args.utterances,
                                progress=not (args.no_progress or args.quiet))
        digest = save_calibration_set(cs, args.out)
    except (BundleError, ValueError, FileNotFoundError) as exc:
        sys.stderr.write(f"edge-mmer calibrate build: FAILED: {exc}\n")
        return 1
    counts = ", ".join(f"{k} {v}" for k, v in cs.counts().items())
    sys.stdout.write(f"OK: {args.out}: {cs.provenance['source']}, {cs.provenance['utterances']} utterances; "
                     f"samples per network: {counts}; sha256 {digest}\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose, args.quiet)
    if args.command is None:
        # The embedded default: the live loop with the committed demo bundle on the demo clip.
        args = parser.parse_args([*(sys.argv[1:] if argv is None else argv), "run"])
        _setup_logging(args.verbose, args.quiet)
    from edge_mmer.runtime.cli_run import cmd_run
    from edge_mmer.runtime.profiling.cli import cmd_profile

    handlers = {"synth": cmd_synth, "train": cmd_train, "bundle": cmd_bundle, "convert": cmd_convert,
                "calibrate": cmd_calibrate, "evaluate": _cmd_evaluate, "run": cmd_run,
                "profile": cmd_profile}
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        sys.stderr.write("edge-mmer: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
