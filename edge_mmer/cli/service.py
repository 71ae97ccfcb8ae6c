"""``edge-mmer service unit`` / ``service install``: the loop as a systemd service (torch-free)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from edge_mmer.cli.args import Subparsers, add_command, add_settings
from edge_mmer.errors import UsageError
from edge_mmer.runtime.settings import load_settings

log = logging.getLogger(__name__)

DESCRIPTION = """\
The runtime loop as a systemd service: Type=notify (READY=1 once sources and runners are up),
WatchdogSec= (the loop pings only while the stream moves, so a stalled pipeline is restarted),
Restart=always with a start-rate limit, and hardening (NoNewPrivileges, ProtectSystem=strict,
ProtectHome, PrivateTmp, writable only its state folder, where the MQTT spool keeps events across a
restart; the video and audio groups). Logs go to the journal as JSON lines (--log-format json).
"""

EPILOG = """\
examples:
  edge-mmer service unit --config /etc/edge-mmer/unit.toml          print the unit
  sudo edge-mmer service install --config /etc/edge-mmer/unit.toml  write it, create the user 'edge-mmer'
  sudo systemctl daemon-reload && sudo systemctl enable --now edge-mmer
  journalctl -u edge-mmer -o cat                                     the JSON log lines
"""


def _add_unit_options(p: argparse.ArgumentParser) -> None:
    add_settings(p, note="the settings file the service runs with (absolute path in the unit)")
    p.add_argument("--user", default="edge-mmer", metavar="NAME",
                   help="the service's dedicated user (default edge-mmer)")
    p.add_argument("--watchdog", type=int, default=30, metavar="S",
                   help="WatchdogSec: restart when the stream stalls this long (default 30)")


def add_parser(sub: Subparsers) -> None:
    group = sub.add_parser("service", help="run the loop as a systemd service (unit, install)",
                           description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    leaves = group.add_subparsers(dest="service_command", required=True, metavar="{unit,install}")
    unit = add_command(leaves, "unit", help="print the systemd unit", description="Print the systemd unit on stdout.")
    _add_unit_options(unit)
    install = add_command(leaves, "install", help="write the unit and create its user (as root)",
                          description="Write the unit to /etc/systemd/system/edge-mmer.service and create its "
                                      "dedicated user; then: systemctl daemon-reload && systemctl enable --now "
                                      "edge-mmer.")
    _add_unit_options(install)
    install.add_argument("--unit-dir", type=Path, default=None, metavar="DIR",
                         help="where the unit goes (default /etc/systemd/system)")
    install.add_argument("--no-create-user", action="store_true", help="the user exists already (or is made elsewhere)")


def _unit_text(args: argparse.Namespace) -> str:
    from edge_mmer.runtime.service.unit import UnitOptions, render_unit

    settings = load_settings(args.config)  # a broken file fails here, not at the service's first start
    try:
        return render_unit(settings, UnitOptions(config=args.config, user=args.user, watchdog_s=args.watchdog))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def run(args: argparse.Namespace) -> int:
    text = _unit_text(args)
    if args.service_command == "unit":
        sys.stdout.write(text)
        return 0
    from edge_mmer.runtime.service.install import UNIT_DIR, create_user, install_unit

    if args.config is None:
        log.warning("no --config: the service runs the built-in defaults (the demo bundle on the demo clip)")
    created = False if args.no_create_user else create_user(args.user)
    path = install_unit(text, args.unit_dir or UNIT_DIR)
    sys.stdout.write(f"wrote {path}" + (f"; created the system user {args.user!r}" if created else "") + "\n"
                     "next: systemctl daemon-reload && systemctl enable --now edge-mmer\n")
    return 0
