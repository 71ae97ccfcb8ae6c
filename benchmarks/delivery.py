"""Delivery under broker faults: ``edge-mmer run`` on a long clip, MQTT QoS 1 to a mosquitto that is
killed (``kill``) or not there yet (``late``), checked event by event against a JSONL reference.

``python -m benchmarks.delivery --case kill|late|both [--repeats 60] [--seed 1] [--out benchmarks/results]``

What runs: the demo clip remuxed ``--repeats`` times into one file (PyAV, no re-encoding; 60 times =
1,636 s of stream), then ``edge-mmer run --fast`` on it twice, as a user runs it (a subprocess):
once with ``--sink jsonl:`` (the reference), once with ``--sink mqtt://`` to a real mosquitto
(``tests/support/broker.py``) with persistence saved on every change, a persistent QoS 1 subscriber
(``clean_session=False``) recording every event. Cases:

- ``kill``: the broker is killed with SIGKILL every 4-12 s (random, seeded) and stays down 0.5-6 s,
  ``--kills`` times (default 9) or until the run ends;
- ``late``: no broker for the first ``--late-s`` seconds (default 40) of the run, then it comes up.

What it reports (``delivery.md`` / ``delivery.json`` in ``--out``): per case the events received
(distinct), missing, duplicated and out of order (by ``seq``, one session), the events whose content
differs from the reference (every field but ``session_id``, ``wall_time`` and
``decision_latency_ms``: the clock), the broker kills, the
sink's reconnects (its log lines), how long after the broker came up the sink reconnected (``late``),
and the wall time. Exit status 1 when any case lost, duplicated, reordered or changed an event.

A benchmark, not a test: the full clip takes minutes. Needs ``mosquitto`` (PATH or /usr/sbin).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import random
import re
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "tests") not in sys.path:  # tests/support, as the tests import it: the broker and CLI-child helpers
    sys.path.insert(0, str(ROOT / "tests"))

log = logging.getLogger("benchmarks.delivery")

SCHEMA = "edge-mmer/bench-delivery"
VERSION = 1
DEMO_CLIP = ROOT / "demo" / "demo_clip.mp4"
PREFIX = "adv"
DEVICE = "d1"
VOLATILE = ("session_id", "wall_time", "decision_latency_ms")  # differ between any two runs by design
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def remux_clip(src: Path, repeats: int, out: Path) -> Path:
    """``src`` played ``repeats`` times in one file: packets copied (no re-encoding), pass ``k``
    shifted by ``k`` times the clip's length (its longest stream, first dts to last end), so every
    stream's timestamps keep increasing across the joins."""
    import av

    with av.open(str(src)) as inp:
        streams = [s for s in inp.streams if s.type in ("video", "audio")]
        first: dict[int, Fraction] = {}
        last: dict[int, Fraction] = {}
        for pkt in inp.demux(streams):
            if pkt.dts is None or pkt.pts is None or pkt.time_base is None:
                continue  # the demuxer's flush packet
            tb, i = Fraction(pkt.time_base), pkt.stream.index
            first[i] = min(first.get(i, Fraction(pkt.dts) * tb), Fraction(pkt.dts) * tb)
            last[i] = max(last.get(i, Fraction(0)), (pkt.pts + (pkt.duration or 0)) * tb)
    length = max(last[i] - first[i] for i in first)
    with av.open(str(out), "w") as dst:
        outs: dict[int, Any] = {}
        for k in range(repeats):
            with av.open(str(src)) as inp:
                streams = [s for s in inp.streams if s.type in ("video", "audio")]
                for s in streams:
                    if s.index not in outs:
                        outs[s.index] = dst.add_stream_from_template(s)
                for pkt in inp.demux(streams):
                    if pkt.dts is None or pkt.pts is None or pkt.time_base is None:
                        continue
                    shift = int(k * length / Fraction(pkt.time_base))
                    pkt.pts += shift
                    pkt.dts += shift
                    pkt.stream = outs[pkt.stream.index]
                    dst.mux(pkt)
    return out


def write_config(path: Path, spool: Path) -> Path:
    """The run's settings: its own spool, and a stop that waits for the spool to drain."""
    path.write_text(f'[mqtt]\nspool_path = "{spool}"\nclose_timeout_s = 300\n')
    return path


def reference_events(clip: Path, workdir: Path) -> list[dict[str, Any]]:
    """The JSONL pass: what the MQTT pass must deliver, event by event."""
    from support.cli import run_cli

    out = workdir / "reference.jsonl"
    done = run_cli("run", "--camera", str(clip), "--fast", "--device-id", DEVICE, "--sink", f"jsonl:{out}",
                   timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"the reference pass failed (rc {done.returncode}):\n{done.stderr[-3000:]}")
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


@dataclass(frozen=True)
class CaseResult:
    case: str
    reference: int
    received: int  # distinct seqs
    missing: int
    duplicates: int
    out_of_order: int  # first arrivals with a lower seq than one that came before
    sessions: int
    content_diffs: int
    broker_kills: int
    reconnects: int
    reconnect_after_broker_up_s: float | None  # late: first connection minus broker start
    wall_s: float
    rc: int

    @property
    def ok(self) -> bool:
        return (self.rc == 0 and self.missing == 0 and self.duplicates == 0 and self.out_of_order == 0
                and self.content_diffs == 0 and self.sessions == 1)


def strip(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in VOLATILE}


def analyse(case: str, reference: list[dict[str, Any]], payloads: list[bytes], **facts: Any) -> CaseResult:
    """Compare what the subscriber got with the reference, by ``seq``."""
    events = [json.loads(p) for p in payloads]
    seqs = [int(e["seq"]) for e in events]
    first: dict[int, dict[str, Any]] = {}
    out_of_order, high = 0, 0
    for seq, event in zip(seqs, events, strict=True):
        if seq in first:
            continue
        first[seq] = event
        if seq < high:
            out_of_order += 1
        high = max(high, seq)
    by_seq = {int(e["seq"]): e for e in reference}
    diffs = [s for s, e in by_seq.items() if s in first and strip(first[s]) != strip(e)]
    for s in diffs[:3]:
        keys = sorted(k for k in {*first[s], *by_seq[s]} if first[s].get(k) != by_seq[s].get(k))
        log.warning("%s: event %d differs from the reference in %s", case, s, ", ".join(keys))
    return CaseResult(case=case, reference=len(reference), received=len(first),
                      missing=len(set(by_seq) - set(first)), duplicates=len(seqs) - len(first),
                      out_of_order=out_of_order, sessions=len({e["session_id"] for e in events}),
                      content_diffs=len(diffs) + len(set(first) - set(by_seq)), **facts)


def _log_time(line: str) -> float | None:
    m = LOG_TIME.match(line)
    if m is None:
        return None
    return _dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


def run_case(case: str, clip: Path, reference: list[dict[str, Any]], workdir: Path, *, seed: int, kills: int,
             late_s: float) -> CaseResult:
    """One MQTT pass under ``case``'s faults; the subscriber's record analysed against ``reference``."""
    from support.broker import Mosquitto, Recorder, wait_until
    from support.cli import cli_child

    work = workdir / case
    broker = Mosquitto(work / "broker", persistence=True)
    with broker.conf_path.open("a") as conf:
        conf.write("autosave_on_changes true\nautosave_interval 1\n")
    topic = f"{PREFIX}/{DEVICE}/emotion"
    broker.start()
    rec = Recorder(broker.port, [topic], client_id=f"delivery-{case}", clean=False).start()
    cfg = write_config(work / "cfg.toml", work / "spool.sqlite")
    rng = random.Random(seed)
    done_kills, broker_up_at = 0, 0.0
    t0 = time.monotonic()
    try:
        if case == "late":
            broker.stop()  # SIGTERM: the subscriber's session is saved
        with cli_child(cfg, "--camera", str(clip), "--fast", "--device-id", DEVICE,
                       "--sink", f"mqtt://127.0.0.1:{broker.port}/{PREFIX}") as child:
            if case == "late":
                child.wait_for(lambda: False, timeout=late_s)
                broker_up_at = time.time()
                broker.start()
            while case == "kill" and done_kills < kills and child.running:
                if child.wait_for(lambda: False, timeout=rng.uniform(4, 12)) or not child.running:
                    break
                broker.kill()
                done_kills += 1
                time.sleep(rng.uniform(0.5, 6))
                broker.start()
                log.info("%s: broker kill %d done (%.0f s in)", case, done_kills, time.monotonic() - t0)
            child.finish(timeout=3600)
            rc, stderr = child.returncode, child.stderr
        wait_until(lambda: len(rec.messages(topic)) >= len(reference), 60.0, step=0.1)
        rec.sync()
        payloads = rec.payloads(topic)
    finally:
        rec.stop()
        broker.kill()
    wall_s = time.monotonic() - t0
    lines = stderr.splitlines()
    connected = [t for line in lines if "mqtt sink: connected to" in line and (t := _log_time(line)) is not None]
    after = round(connected[0] - broker_up_at, 1) if case == "late" and connected else None
    if rc != 0:
        log.warning("%s: edge-mmer run exited %s:\n%s", case, rc, stderr[-2000:])
    return analyse(case, reference, payloads, broker_kills=done_kills,
                   reconnects=sum("mqtt sink: reconnected to" in line for line in lines),
                   reconnect_after_broker_up_s=after, wall_s=round(wall_s, 1), rc=-1 if rc is None else rc)


def render_markdown(doc: dict[str, Any]) -> str:
    rows = [f"| {r['case']} | {r['received']} / {r['reference']} | {r['missing']} | {r['duplicates']} | "
            f"{r['out_of_order']} | {r['content_diffs']} | {r['broker_kills']} | {r['reconnects']} | "
            f"{'' if r['reconnect_after_broker_up_s'] is None else r['reconnect_after_broker_up_s']} | "
            f"{r['wall_s']} | {r['rc']} |" for r in doc["cases"]]
    return "\n".join([
        "# Delivery under broker faults", "",
        f"`{doc['command']}` — {doc['date']}; the demo clip remuxed {doc['repeats']} times "
        f"({doc['stream_s']:.0f} s of stream, {doc['reference_events']} reference events).", "",
        "| case | received / reference | missing | duplicates | out of order | content diffs | broker kills "
        "| reconnects | connected after broker up (s) | wall (s) | rc |",
        "|---|---|---|---|---|---|---|---|---|---|---|", *rows, ""])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.delivery", description=__doc__.split("\n\n")[0])
    p.add_argument("--case", choices=("kill", "late", "both"), default="both")
    p.add_argument("--repeats", type=int, default=60, help="passes over the demo clip (default 60)")
    p.add_argument("--kills", type=int, default=9, help="broker SIGKILLs in the kill case (default 9)")
    p.add_argument("--late-s", type=float, default=40.0, help="seconds without a broker in the late case")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.repeats < 1 or args.kills < 0 or args.late_s < 0:
        p.error("--repeats must be >= 1, --kills and --late-s >= 0")
    from support.broker import mosquitto_binary

    if mosquitto_binary() is None:
        sys.stderr.write("delivery: mosquitto is not installed (apt-get install mosquitto)\n")
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="edge-mmer-delivery-"))
    try:
        clip = remux_clip(DEMO_CLIP, args.repeats, workdir / f"long{args.repeats}.mp4")
        reference = reference_events(clip, workdir)
        log.info("reference: %d events", len(reference))
        cases = ["kill", "late"] if args.case == "both" else [args.case]
        results = [run_case(c, clip, reference, workdir, seed=args.seed, kills=args.kills, late_s=args.late_s)
                   for c in cases]
        import av

        with av.open(str(clip)) as c:
            stream_s = float(c.duration or 0) / 1e6
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    command = (f"python -m benchmarks.delivery --case {args.case} --repeats {args.repeats} --kills {args.kills} "
               f"--late-s {args.late_s:g} --seed {args.seed}")
    doc = {"schema": SCHEMA, "version": VERSION, "command": command,
           "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "repeats": args.repeats,
           "stream_s": stream_s, "reference_events": len(reference), "cases": [asdict(r) for r in results],
           "ok": all(r.ok for r in results)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "delivery.json").write_text(json.dumps(doc, indent=2) + "\n")
    (args.out / "delivery.md").write_text(render_markdown(doc))
    sys.stdout.write(render_markdown(doc))
    return 0 if doc["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
