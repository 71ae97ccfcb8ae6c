"""``edge-mmer bundle verify | show``: check what you deploy (torch-free)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge_mmer.cli.args import Subparsers, add_command


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser("bundle", help="verify or describe a model bundle", description="Check what you deploy.")
    bsub = p.add_subparsers(dest="bundle_command", required=True)
    v = add_command(bsub, "verify",
                    help="verify every file's sha256 and the manifest schema; exit 1 on the first problem",
                    description="Verify a bundle: manifest schema and version, every listed file present with the "
                    "recorded size and sha256, no pickles, no paths outside the bundle. Exit 0 when all is well.")
    v.add_argument("dir", type=Path, help="bundle directory")
    s = add_command(bsub, "show", help="print what a bundle holds (labels, networks, SVMs, fuzzy measure, metrics)",
                    description="Describe a bundle after verifying it.")
    s.add_argument("dir", type=Path, help="bundle directory")
    s.add_argument("--no-verify", action="store_true", help="describe without checking hashes")


def run(args: argparse.Namespace) -> int:
    from edge_mmer.bundle import describe_bundle, read_bundle

    bundle = read_bundle(args.dir, verify=not getattr(args, "no_verify", False))
    if args.bundle_command == "verify":
        n = len(bundle.files)
        sys.stdout.write(f"OK: {args.dir}: manifest and all {n} files verified (sha256)\n")
        if bundle.synthetic:
            sys.stdout.write("note: this model was trained on SYNTHETIC data\n")
    else:
        sys.stdout.write(describe_bundle(bundle) + "\n")
    return 0
