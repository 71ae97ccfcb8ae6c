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
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing bundle directory (and an earlier run's checkpoints)")
    p.add_argument("--modalities", default="speech,face", type=_modalities,
                   help="'speech', 'face' or 'speech,face' (default: %(default)s)")
    g = p.add_argument_group("long runs")
    g.add_argument("--face-init", metavar="SOURCE", default=None,
                   help="start the face backbone from pretrained weights: a .safetensors / .pth file in timm's "
                   "inception_resnet_v2 key layout, or a timm model name (fetched by timm; needs the network)")
    g.add_argument("--face-freeze-epochs", type=int, default=0, metavar="N",
                   help="keep the face backbone's stem frozen for the first N face-encoder epochs (default: 0)")
    g.add_argument("--checkpoint-dir", type=Path, default=None, metavar="DIR",
                   help="per-epoch checkpoints and the training log (default: OUT.checkpoints beside --out)")
    g.add_argument("--no-checkpoints", action="store_true", help="write no checkpoints")
    g.add_argument("--resume", action="store_true",
                   help="continue the run whose checkpoints are in --checkpoint-dir from its last epoch")
    g.add_argument("--patience", type=int, default=0, metavar="N",
                   help="stop a network after N epochs without a better validation accuracy (default: 0, never)")
    g.add_argument("--amp", choices=("auto", "off"), default="auto",
                   help="mixed precision for the encoders: 'auto' (bf16 on GPUs that have it, else fp16 with a "
                   "gradient scaler; fp32 on the CPU) or 'off' (default: %(default)s)")
    g.add_argument("--loader-workers", type=int, default=0, metavar="N",
                   help="DataLoader processes building the encoders' batches, pinned on a GPU (default: 0)")
    add_progress(p)


def _modalities(value: str) -> tuple[str, ...]:
    from edge_mmer.vocab import MODALITIES

    parts = tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    if not parts or any(v not in MODALITIES for v in parts):
        raise argparse.ArgumentTypeError(f"expected 'speech', 'face' or 'speech,face', got {value!r}")
    return tuple(m for m in MODALITIES if m in parts)


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
        workers=workers, cache_dir=cache, modalities=args.modalities, face_init=args.face_init,
        face_freeze_epochs=max(0, args.face_freeze_epochs), checkpoint_dir=args.checkpoint_dir,
        checkpoints=not args.no_checkpoints, resume=args.resume, patience=max(0, args.patience), amp=args.amp,
        loader_workers=max(0, args.loader_workers),
    )
    result = train(cfg, opts)
    if not result.writer:  # another torchrun rank: rank 0 reports
        return 0
    if result.resumed_from is not None:
        sys.stdout.write(f"resumed the run in {result.resumed_from}\n")
    sys.stdout.write(format_metrics(result.metrics) + "\n")
    sys.stdout.write(f"bundle written to {result.bundle_dir}\n")
    return 0
