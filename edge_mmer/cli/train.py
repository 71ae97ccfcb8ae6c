"""``edge-mmer train``: the paper's pipeline end to end, into a verified model bundle."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge_mmer.cli.args import (
    Subparsers,
    add_command,
    add_dataset,
    add_progress,
    check_out_dir,
    progress,
    resolve_dataset,
)
from edge_mmer.config import load_config

DEFAULT_OUT = Path("runs/demo")


def add_parser(sub: Subparsers) -> None:
    p = add_command(
        sub, "train",
        help="train the full pipeline (encoders, context LSTMs, chi-square, fusion, LIBSVMs, fuzzy integral) "
        "into a bundle",
        description="Train the paper's pipeline end to end and write a verified model bundle with metrics "
        "(per channel and per class, with and without chi-square selection) and a confusion-matrix PNG.",
    )
    add_dataset(p, note="its labels become the bundle's")
    p.add_argument("--config", default="demo", help="'demo', 'paper' or a TOML file (default: %(default)s)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="bundle directory to write (default: %(default)s)")
    p.add_argument("--seed", type=int, default=None, help="override the config's seed")
    p.add_argument("--device", default=None, help="'auto', 'cpu', 'cuda' or 'cuda:N' (default: the config's, 'auto')")
    p.add_argument("--epochs-scale", type=float, default=1.0,
                   help="multiply every epoch count (e.g. 0.2 for a quick smoke run; default: %(default)s)")
    p.add_argument("--no-ablation", action="store_true", help="skip the without-chi-square ablation (faster)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing bundle directory")
    add_progress(p)


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    check_out_dir(args.out, args.overwrite)
    show = progress(args)
    seed = cfg.train.seed if args.seed is None else args.seed
    dataset, workers, cache = resolve_dataset(args, show)
    from edge_mmer.train import TrainOptions, format_metrics, train  # torch: only once the arguments are good

    opts = TrainOptions(
        dataset=dataset, out=args.out, seed=seed, device=args.device or cfg.train.device,
        epochs_scale=args.epochs_scale, ablation=not args.no_ablation, overwrite=args.overwrite, progress=show,
        workers=workers, cache_dir=cache,
    )
    result = train(cfg, opts)
    sys.stdout.write(format_metrics(result.metrics) + "\n")
    sys.stdout.write(f"bundle written to {result.bundle_dir}\n")
    return 0
