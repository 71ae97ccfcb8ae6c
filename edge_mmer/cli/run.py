"""``edge-mmer run``: the command-line face of the runtime loop (torch-free)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

from edge_mmer.cli.args import (
    SOURCES_USAGE,
    Subparsers,
    add_bundle,
    add_command,
    add_inference,
    add_settings,
    add_sources,
    text,
)
from edge_mmer.runtime.settings import load_settings, with_run_overrides

log = logging.getLogger(__name__)

DESCRIPTION = """\
Run the live loop: camera + microphone -> speech/face encoders -> chi-square masks -> LIBSVMs ->
fuzzy integral -> emotion events (one JSON object per line on stdout, a JSONL file, or MQTT).

With no options it runs the embedded default: the committed demo bundle (trained on SYNTHETIC
data) on the committed demo clip, events on stdout, and exits when the clip ends. Every option can
also be set in a TOML file (--config); the command line wins over the file. Logs go to stderr,
events to the sink. SIGINT / SIGTERM stop cleanly: the current utterance is finished, the spool
flushed and 'offline' published.
"""

_CSI_CAMERA = ("nvarguscamerasrc ! video/x-raw(memory:NVMM),width=1280,height=720 ! nvvidconv ! "
               "video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! appsink drop=1")
"""A Jetson CSI camera as a GStreamer pipeline (one line in the help, so it can be copied)."""

EPILOG = f"""\
examples:
  edge-mmer run                                         the demo bundle on the demo clip, events on stdout
  edge-mmer run --bundle runs/demo --camera 0 --mic default
  edge-mmer run --camera "{_CSI_CAMERA}" --mic USB
  edge-mmer run --camera talk.mp4 --realtime            a recording, paced like a live camera
  edge-mmer run --camera talk.mp4 --mic talk.wav        video and audio from separate files
  edge-mmer run --sink mqtt://broker.local:1883/edge-mmer --config unit.toml
  edge-mmer run --sink jsonl:events.jsonl --precision int8

""" + SOURCES_USAGE


def add_parser(sub: Subparsers) -> None:
    p = add_command(sub, "run", help="run the live loop (camera + microphone -> emotion events)",
                    description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_settings(p)
    add_bundle(p, default="the committed demo bundle, trained on synthetic data")
    add_sources(p)
    add_inference(p)
    out = p.add_argument_group("output")
    out.add_argument("--sink", metavar="SPEC", default=None,
                     help="stdout | jsonl:PATH | mqtt://HOST:PORT/PREFIX | mqtts://HOST:PORT/PREFIX (default stdout); "
                          "MQTT credentials and TLS files go in the [mqtt] section of --config, the password in a "
                          "file or $EDGE_MMER_MQTT_PASSWORD, never on the command line")
    out.add_argument("--device-id", default=None, help="this unit's id in events and MQTT topics (default: host name)")
    out.add_argument("--stats-interval", dest="stats_interval_s", type=float, default=None, metavar="S",
                     help="publish per-stage statistics every S seconds (stats topic / stderr; default 60, 0 = off)")
    out.add_argument("--max-events", type=int, default=0, metavar="N", help="stop after N events (default: no limit)")


def run(args: argparse.Namespace) -> int:
    from edge_mmer.runtime.loop import RuntimeLoop

    settings = with_run_overrides(
        load_settings(args.config), bundle=text(args.bundle), camera=args.camera, mic=args.mic,
        backend=args.backend, precision=args.precision, sink=args.sink, device_id=args.device_id,
        realtime=args.realtime, threads=args.threads, stats_interval_s=args.stats_interval_s)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if stop.is_set():  # a second signal: do not wait for the clean stop
            log.warning("second signal: exiting now")
            raise KeyboardInterrupt
        log.info("signal %s: stopping (finishing the current utterance, flushing the sink)",
                 signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        summary = RuntimeLoop(settings, max_events=args.max_events).run(stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("%s", summary.describe())
    return 0
