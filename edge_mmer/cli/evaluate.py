"""``edge-mmer evaluate``: score a bundle on a dataset split (the paper's Table 3 and Fig. 8)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge_mmer.cli.args import (
    Subparsers,
    add_bundle,
    add_command,
    add_dataset,
    add_progress,
    progress,
    resolve_dataset,
)
from edge_mmer.vocab import SPLITS


def add_parser(sub: Subparsers) -> None:
    p = add_command(
        sub, "evaluate",
        help="score a bundle on a dataset split: the paper's Table 3 and Fig. 8, the dataset's official score",
        description="Run a bundle over a dataset split (sessions in order, the context carried, as in training) and "
        "write report.json, report.md and confusion.png: accuracy, weighted F1 and per-class accuracy for the "
        "speech, face and fused LIBSVMs and the fuzzy-integral decision; with vs without chi-square; for MELD the "
        "weighted F1 (its official score), for CMU-MOSI Acc-2 Has0 / Non0 with their F1.",
        epilog="example: edge-mmer evaluate --bundle runs/meld --dataset meld:/data/MELD --out runs/meld-eval",
    )
    add_bundle(p)
    add_dataset(p, default=None, note="the same kind and target as the bundle was trained on")
    p.add_argument("--split", default="test", choices=SPLITS, help="split to score (default: %(default)s)")
    p.add_argument("--out", type=Path, default=None,
                   help="report directory (default: <bundle>.eval/<kind>-<split> beside the bundle)")
    p.add_argument("--ablation", action="store_true",
                   help="measure 'without chi-square' here: retrain the back end keeping all features on the "
                   "dataset's train/val splits (slower); otherwise the bundle's training-time figures are quoted")
    p.add_argument("--epochs-scale", type=float, default=1.0,
                   help="epoch multiplier for --ablation (default: %(default)s)")
    p.add_argument("--device", default="cpu", help="'cpu', 'cuda' or 'cuda:N' for the networks (default: %(default)s)")
    add_progress(p)


def run(args: argparse.Namespace) -> int:
    show = progress(args)
    dataset, workers, cache = resolve_dataset(args, show)
    from edge_mmer.evaluate import EvaluateOptions, evaluate_bundle  # torch when it runs

    opts = EvaluateOptions(bundle=args.bundle, dataset=dataset, out=args.out, split=args.split, workers=workers,
                           cache_dir=cache, device=args.device, ablation=args.ablation,
                           epochs_scale=args.epochs_scale, progress=show)
    result = evaluate_bundle(opts)
    sys.stdout.write(result.files["markdown"].read_text(encoding="utf-8"))
    sys.stdout.write(f"reports written to {result.out_dir} (report.json, report.md, confusion.png)\n")
    return 0
