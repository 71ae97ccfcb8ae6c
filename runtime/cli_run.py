"""``edge-mmer run``: the command-line face of the runtime loop (torch-free)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

log = logging.getLogger(__name__)

RUN_HELP = """\
Run the live loop: camera + microphone -> speech/face encoders -> chi-square masks -> LIBSVMs ->
fuzzy integral -> emotion events (one JSON object per line on stdout, a JSONL file, or MQTT).

With no options it runs the embedded default: the committed demo bundle (trained on SYNTHETIC
data) on the committed demo clip, events on stdout, and exits when the clip ends. Every option can
also be set in a TOML file (--config); the command line wins over the file. Logs go to stderr,
events to the sink. SIGINT / SIGTERM stop cleanly: the current utterance is finished, the spool
flushed and 'offline' published.
"""

RUN_EPILOG = """\
examples:
  edge-mmer run                                         the demo bundle on the demo clip, events on stdout
  edge-mmer run --bundle runs/demo --camera 0 --mic default
  edge-mmer run --camera "nvarguscamerasrc ! video/x-raw(memory:NVMM),width=1280,height=720 ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! appsink drop=1" --mic USB
  edge-mmer run --camera talk.mp4 --realtime            a recording, paced like a live camera
  edge-mmer run --camera talk.mp4 --mic talk.wav        video and audio from separate files
  edge-mmer run --sink mqtt://broker.local:1883/edge-mmer --config unit.toml
  edge-mmer run --sink jsonl:events.jsonl --precision int8
"""


def add_run_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run the live loop (camera + microphone -> emotion events)", description=RUN_HELP,
                       epilog=RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", metavar="FILE.toml", default=None,
                   help="runtime settings file ([run], [vad], [faces], [decision], [watchdog], [queues], [mqtt])")
    p.add_argument("--bundle", metavar="DIR", default=None,
                   help="model bundle (default: the committed demo bundle, trained on synthetic data)")
    p.add_argument("--camera", metavar="SRC", default=None,
                   help="camera index (0), video file, rtsp:// URL, GStreamer pipeline (contains '!'), or 'none' "
                        "(default: the demo clip with the demo bundle, else 0)")
    p.add_argument("--mic", metavar="SRC", default=None,
                   help="'default', device index, device name substring, a 16 kHz mono .wav, or 'none' "
                        "(default: a video file's own audio track, else the default input device)")
    p.add_argument("--backend", choices=("auto", "onnxruntime", "tensorrt"), default=None,
                   help="inference backend (default auto: TensorRT plans when they fit this device, else ONNX Runtime)")
    p.add_argument("--precision", choices=("fp32", "fp16", "int8"), default=None,
                   help="which converted networks to run (default fp32; int8 = int8-cpu on ONNX Runtime, "
                        "int8-trt on TensorRT; networks without that artifact run fp32)")
    p.add_argument("--sink", metavar="SPEC", default=None,
                   help="stdout | jsonl:PATH | mqtt://HOST:PORT/PREFIX | mqtts://HOST:PORT/PREFIX (default stdout); "
                        "MQTT credentials and TLS files go in the [mqtt] section of --config, the password in a "
                        "file or $EDGE_MMER_MQTT_PASSWORD, never on the command line")
    p.add_argument("--device-id", default=None, help="this unit's id in events and MQTT topics (default: host name)")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--realtime", dest="realtime", action="store_true", default=None,
                      help="pace file sources to real time (as a live camera would deliver them)")
    pace.add_argument("--fast", dest="realtime", action="store_false",
                      help="read file sources as fast as possible (the default)")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (default 0 = all cores)")
    p.add_argument("--stats-interval", dest="stats_interval_s", type=float, default=None, metavar="S",
                   help="publish per-stage statistics every S seconds (stats topic / stderr; default 60, 0 = off)")
    p.add_argument("--max-events", type=int, default=0, metavar="N", help="stop after N events (default: no limit)")


def cmd_run(args: argparse.Namespace) -> int:
    from edge_mmer.config import ConfigError
    from edge_mmer.errors import RunError
    from edge_mmer.runtime.loop import RuntimeLoop
    from edge_mmer.runtime.settings import load_settings, with_run_overrides

    try:
        settings = load_settings(args.config)
        settings = with_run_overrides(
            settings, bundle=args.bundle, camera=args.camera, mic=args.mic, backend=args.backend,
            precision=args.precision, sink=args.sink, device_id=args.device_id, realtime=args.realtime,
            threads=args.threads, stats_interval_s=args.stats_interval_s)
    except ConfigError as exc:
        sys.stderr.write(f"edge-mmer run: {exc}\n")
        return 2
    stop = threading.Event()
    previous: dict[signal.Signals, Any] = {}

    def on_signal(signum: int, _frame: Any) -> None:
        if stop.is_set():  # a second signal: do not wait for the clean stop
            sys.stderr.write("edge-mmer run: second signal, exiting now\n")
            raise SystemExit(130)
        log.info("signal %s: stopping (finishing the current utterance, flushing the sink)", signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, on_signal)
    try:
        loop = RuntimeLoop(settings, max_events=args.max_events)
        summary = loop.run(stop)
    except (RunError, ConfigError) as exc:
        sys.stderr.write(f"edge-mmer run: {exc}\n")
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("%s", summary.describe())
    return 0
