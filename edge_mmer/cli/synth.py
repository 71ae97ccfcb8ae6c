"""``edge-mmer synth``: the deterministic synthetic audio-visual emotion dataset (and the demo clip)."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from edge_mmer.cli.args import DEFAULT_SYNTH_DIR, Subparsers, add_command, check_out_dir, progress


def add_parser(sub: Subparsers) -> None:
    p = add_command(
        sub, "synth",
        help="generate the synthetic audio-visual emotion dataset (espeak-ng speech + rendered faces)",
        description="Generate a deterministic synthetic dataset: sessions of utterances, each a talking-face "
        "video and espeak-ng speech whose expression and prosody depend on the emotion. Speakers are split "
        "train/validation/test (speaker-independent). Optionally also write the demo clip.",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_SYNTH_DIR, help="output directory (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed; the same seed gives the same files (default: %(default)s)")
    p.add_argument("--speakers", type=int, default=None, help="number of speakers (default: the generator's)")
    p.add_argument("--sessions", type=int, default=None, help="sessions per speaker (default: the generator's)")
    p.add_argument("--utterances", type=int, default=None, help="utterances per session (default: the generator's)")
    p.add_argument("--demo-clip", type=Path, default=None, metavar="MP4",
                   help="also write the ~25 s demo clip (video + audio, ground truth beside it) to this path")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset directory")


def run(args: argparse.Namespace) -> int:
    replace = check_out_dir(args.out, args.overwrite)
    from edge_mmer.synth import SynthConfig, generate_dataset, make_demo_clip

    overrides = {k: v for k, v in (("n_speakers", args.speakers), ("sessions_per_speaker", args.sessions),
                                   ("utterances_per_session", args.utterances)) if v is not None}
    cfg = SynthConfig(seed=args.seed, **overrides)
    if replace:
        shutil.rmtree(args.out)
    path = generate_dataset(args.out, cfg, progress=progress(args))
    sys.stdout.write(f"synthetic dataset written to {path}\n")
    if args.demo_clip is not None:
        clip = make_demo_clip(args.demo_clip, seed=args.seed, cfg=cfg)
        sys.stdout.write(f"demo clip written to {clip}\n")
    return 0
