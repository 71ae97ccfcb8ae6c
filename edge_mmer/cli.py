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

log = logging.getLogger(__name__)

DEFAULT_DATASET = "synthetic"
DEFAULT_SYNTH_DIR = Path("data/synthetic")
DEFAULT_OUT = Path("runs/demo")

DESCRIPTION = """\
edge-mmer: multimodal (speech + face) emotion recognition for robots and kiosks.

Run with no subcommand to do the embedded default job: train the demo configuration on the
built-in synthetic audio-visual set (generated on first use into data/synthetic) and print its
metrics. The demo model is trained on SYNTHETIC data: its figures say the code works, not how
well it recognises real people.
"""

EPILOG = """\
examples:
  edge-mmer                                   train the demo on the synthetic set, print metrics
  edge-mmer synth --out data/synthetic        generate the synthetic dataset
  edge-mmer train --dataset synthetic:data/synthetic --config demo --out runs/demo
  edge-mmer bundle verify runs/demo           check every file of a bundle against its manifest
  edge-mmer bundle show runs/demo             what a bundle holds, before you deploy it
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
    p.add_argument("--dataset", default=DEFAULT_DATASET,
                   help="'synthetic' (generated into data/synthetic on first use) or 'synthetic:DIR' (default: %(default)s)")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-mmer", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"edge-mmer {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="{synth,train,bundle}")
    _add_synth(sub)
    _add_train(sub)
    _add_bundle(sub)
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
    dataset = _resolve_synthetic(args.dataset, seed=0, progress=progress)
    from edge_mmer.train import TrainOptions, format_metrics, train  # torch: only once the arguments are good

    opts = TrainOptions(
        dataset=dataset, out=args.out, seed=seed, device=args.device or cfg.train.device,
        epochs_scale=args.epochs_scale, ablation=not args.no_ablation, overwrite=args.overwrite, progress=progress,
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose, args.quiet)
    if args.command is None:
        # The embedded default: train the demo configuration on the synthetic set into runs/demo,
        # which belongs to this default job and is replaced on every run.
        args = parser.parse_args([*(sys.argv[1:] if argv is None else argv), "train", "--overwrite"])
        _setup_logging(args.verbose, args.quiet)
    handlers = {"synth": cmd_synth, "train": cmd_train, "bundle": cmd_bundle}
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        sys.stderr.write("edge-mmer: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
