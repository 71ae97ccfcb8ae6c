"""``edge-mmer doctor``: check a unit before it is left alone (torch-free)."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from edge_mmer.cli.args import Subparsers, add_bundle, add_command, add_settings, text
from edge_mmer.runtime.settings import load_settings, with_run_overrides

log = logging.getLogger(__name__)

DESCRIPTION = """\
Check this unit with these settings: the bundle verifies (and what it was trained on); ONNX Runtime's
providers, TensorRT's version and whether each TensorRT plan fits this device; the runners load; the
cameras and microphones found (the configured ones opened for a second; one the settings do not ask
for is reported absent, not failed); the MQTT broker reached with the configured credentials and TLS;
the spool's folder writable and its free space; on a Jetson the power mode and the clocks; the
versions. Exit 0 when everything needed works, 1 when something fails (each failure says what to do).
"""


def add_parser(sub: Subparsers) -> None:
    p = add_command(sub, "doctor", help="check a unit before deploying it (bundle, backends, devices, broker, spool)",
                    description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_settings(p, note="what the unit will run with")
    add_bundle(p, default="[run] bundle of --config, else the committed demo bundle")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout (for scripts) instead of a table")
    p.add_argument("--broker-timeout", type=float, default=5.0, metavar="S",
                   help="seconds to wait for the broker's answer (default 5)")


def run(args: argparse.Namespace) -> int:
    from edge_mmer.runtime.service.doctor import run_doctor
    from edge_mmer.runtime.service.report import render_table, to_json

    settings = with_run_overrides(load_settings(args.config), bundle=text(args.bundle))
    checks = run_doctor(settings, broker_timeout_s=args.broker_timeout)
    report = to_json(checks)
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2, default=str) + "\n")
    else:
        sys.stdout.write(render_table(checks) + "\n")
    return 0 if report["ok"] else 1
