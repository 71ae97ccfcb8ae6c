"""``edge-mmer profile`` as a library call: :func:`run_profile` (options in, document and files out).

Pipeline mode (default): every variant's networks are loaded once, warmed up, then the source is
run ``runs`` times per variant, the variants interleaved pass by pass (round-robin, the first
variant rotating), each pass a fresh :class:`Pipeline` on the real media source. ``--source live``
(camera + microphone) and ``--realtime`` (a file paced like a camera) run :class:`RuntimeLoop`
instead, one variant. Micro mode times each network alone (:mod:`.micro`).

The document (``profile.json``, schema ``edge-mmer/profile/v1``) is built here; :mod:`.report`
renders it, :mod:`.plots` draws it, :mod:`.schema` checks it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from edge_mmer.bundle import Bundle, read_bundle
from edge_mmer.errors import ProfileError
from edge_mmer.runtime.networks import NETWORKS
from edge_mmer.runtime.settings import RuntimeSettings, load_settings, repo_demo_dir, with_run_overrides
from edge_mmer.runtime.sinks.jsonl import JsonlSink
from edge_mmer.runtime.sources.files import probe_media

from . import analysis, device, micro, plots, report
from .blocks import comparison, pipeline_block
from .passes import Limit, PassResult, new_pipeline, run_file_pass, run_loop_pass
from .resources import ResourceUsage, usable_cores
from .schema import SCHEMA_ID, validate_profile
from .tegrastats import TegrastatsSampler
from .tracing import TracingStats
from .variants import LoadedVariant, Variant, load_variant, parse_variants

log = logging.getLogger(__name__)

DEFAULT_OUT = Path("runs/profile")
DEFAULT_LIVE_SECONDS = 60.0


@dataclass
class ProfileOptions:
    bundle: Path | None = None  # None: --config's [run] bundle, else the committed demo bundle
    source: str = "demo"  # demo | live | PATH
    backend: str = "auto"
    precision: str = "fp32"
    compare: str | None = None
    duration_s: float | None = None
    utterances: int | None = None
    micro: bool = False
    runs: int | None = None  # pipeline: passes per variant (1, or 3 with --compare); micro: timed runs (1000)
    warmup: int | None = None  # pipeline: warm-up inferences per network (3); micro: 50
    networks: Sequence[str] | None = None  # micro: which networks (all)
    threads: int = 0
    emit: str = "every"
    realtime: bool = False
    config: Path | None = None
    out: Path = DEFAULT_OUT
    plots: bool = True
    probe_device: bool = True
    command: str | None = None
    seed: int = 0


@dataclass
class ProfileResult:
    doc: dict[str, Any]
    out: Path
    files: dict[str, Any] = field(default_factory=dict)
    console: str = ""

    @property
    def consistent(self) -> bool:
        return bool(self.doc.get("consistent"))


def _say(progress: Callable[[str], None] | None, text: str) -> None:
    log.info("%s", text)
    if progress is not None:
        progress(text)


def _resolve_bundle(opts: ProfileOptions, settings: RuntimeSettings) -> Path:
    if opts.bundle is not None:
        return Path(opts.bundle)
    if settings.run.bundle:
        return Path(settings.run.bundle)
    path = repo_demo_dir() / "bundle"
    if not (path / "manifest.json").is_file():
        raise ProfileError(f"the demo bundle is not at {path}: pass --bundle DIR (or set EDGE_MMER_DEMO_DIR)")
    return path


def _resolve_source(opts: ProfileOptions) -> tuple[str, Path | None]:
    """("file" | "live", path)."""
    if opts.source == "live":
        return "live", None
    path = repo_demo_dir() / "demo_clip.mp4" if opts.source == "demo" else Path(opts.source).expanduser()
    if not path.is_file():
        raise ProfileError(f"--source {opts.source}: no such file {path} (expected 'demo', 'live' or a media file)")
    return "file", path


def _validate(opts: ProfileOptions) -> None:
    if opts.duration_s is not None and opts.duration_s <= 0:
        raise ProfileError(f"--duration must be > 0 seconds, got {opts.duration_s}")
    if opts.utterances is not None and opts.utterances < 1:
        raise ProfileError(f"--utterances must be >= 1, got {opts.utterances}")
    if opts.duration_s is not None and opts.utterances is not None:
        raise ProfileError("give --duration or --utterances, not both")
    if opts.runs is not None and opts.runs < 1:
        raise ProfileError(f"--runs must be >= 1, got {opts.runs}")
    if opts.warmup is not None and opts.warmup < 0:
        raise ProfileError(f"--warmup must be >= 0, got {opts.warmup}")
    if opts.emit not in ("every", "change"):
        raise ProfileError(f"--emit must be 'every' or 'change', got {opts.emit!r}")
    if opts.threads < 0:
        raise ProfileError(f"--threads must be >= 0, got {opts.threads}")


def _settings(opts: ProfileOptions) -> RuntimeSettings:
    settings = load_settings(opts.config)
    decision = dataclasses.replace(settings.decision, emit=opts.emit)
    return dataclasses.replace(settings, decision=decision).validate()


# ------------------------------------------------------------------------------------------ warm-up


def _warm_up(bundle: Bundle, lv: LoadedVariant, n: int, seed: int) -> None:
    """``n`` untimed inferences per network; the first one's time is recorded (cold start per network)."""
    for name in NETWORKS:
        feeds = micro.network_inputs(bundle, name, seed)
        runner = lv.loaded.runners[name]
        times = micro.time_calls(micro.bind(runner, feeds), max(1, n))
        lv.first_inference_ms[name] = times[0] * 1000.0


# ------------------------------------------------------------------------------------------- modes


@dataclass
class _Run:
    """What one variant produced: its document block and what the plots need."""

    describe: dict[str, Any]
    pipeline: dict[str, Any] | None = None
    micro: dict[str, Any] | None = None
    plot: plots.PlotData | None = None


def _plot_for(label: str, stats: TracingStats, first: PassResult | None) -> plots.PlotData:
    names = [*analysis.stage_summaries(stats), "decision_latency"]
    durations = {n: stats.durations(n) for n in names}
    if first is None:
        return plots.PlotData(label, durations)
    return plots.plot_data_from(label, durations, stats.spans, first.start, first.end)


def _event_sink(out: Path, label: str) -> JsonlSink:
    path = out / f"events-{plots.slug(label)}.jsonl"
    path.unlink(missing_ok=True)
    return JsonlSink(path)


def _file_mode(opts: ProfileOptions, bundle: Bundle, variants: list[Variant], path: Path, settings: RuntimeSettings,
               out: Path, progress: Callable[[str], None] | None) -> list[_Run]:
    info = probe_media(path)
    if not (info.has_video or info.has_audio):
        raise ProfileError(f"--source {path}: neither video nor audio")
    psettings = settings.pipeline
    runs = opts.runs or (3 if len(variants) > 1 else 1)
    warmup = 3 if opts.warmup is None else opts.warmup
    limit = Limit(opts.duration_s, opts.utterances)
    source = {"kind": "file", "path": str(path), "has_video": info.has_video, "has_audio": info.has_audio,
              "duration_s": info.duration_s, "paced": False}
    loaded: list[LoadedVariant] = []
    try:
        for v in variants:
            _say(progress, f"loading {v.label} ...")
            lv = load_variant(bundle, v, opts.threads)
            loaded.append(lv)
            _warm_up(bundle, lv, warmup, opts.seed)
        stats = {lv.label: TracingStats() for lv in loaded}
        usage = {lv.label: ResourceUsage(cores=usable_cores()) for lv in loaded}
        passes: dict[str, list[PassResult]] = {lv.label: [] for lv in loaded}
        sinks = {lv.label: _event_sink(out, lv.label) for lv in loaded}
        try:
            for r in range(runs):
                order = loaded[r % len(loaded):] + loaded[:r % len(loaded)]
                for lv in order:
                    pipe = new_pipeline(bundle, lv.networks, psettings, stats[lv.label], expect_video=info.has_video,
                                        expect_audio=info.has_audio, session_id=f"profile-{plots.slug(lv.label)}-{r}")
                    p = run_file_pass(bundle, pipe, path, stats[lv.label], usage[lv.label], sinks[lv.label], limit,
                                      label=lv.label, index=r)
                    passes[lv.label].append(p)
                    _say(progress, f"pass {r + 1}/{runs} {lv.label}: {p.stream_s:.1f} s of stream in {p.wall_s:.2f} s, "
                                   f"{p.counters.get('utterances', 0)} utterances, {p.counters.get('sink_events', 0)} "
                                   f"events ({p.stopped_by})")
        finally:
            for sink in sinks.values():
                sink.close()
        results = []
        origin = min(p.start for ps in passes.values() for p in ps)
        for lv in loaded:
            label = lv.label
            results.append(_Run(lv.describe(), pipeline_block(stats[label], passes[label], usage[label], source,
                                                               settings.vad.hangover_ms, origin),
                                plot=_plot_for(label, stats[label], passes[label][0])))
            results[-1].pipeline["events_file"] = sinks[label].path.name  # type: ignore[index]
        return results
    finally:
        for lv in loaded:
            lv.close()


def _loop_mode(opts: ProfileOptions, bundle_path: Path, variants: list[Variant], kind: str, path: Path | None,
               settings: RuntimeSettings, out: Path, progress: Callable[[str], None] | None) -> list[_Run]:
    if len(variants) > 1:
        raise ProfileError("--compare needs the same input for every variant: use --source demo or a recording "
                           "(not --source live or --realtime)")
    if opts.runs not in (None, 1):
        raise ProfileError("--runs: a live (or --realtime) profile is one run")
    v = variants[0]
    sink = _event_sink(out, v.label)
    overrides: dict[str, Any] = {"bundle": str(bundle_path), "backend": v.backend, "precision": v.runtime_precision,
                                 "threads": opts.threads, "realtime": True, "stats_interval_s": 0.0,
                                 "sink": f"jsonl:{sink.path}"}
    if kind == "file":
        assert path is not None
        overrides.update(camera=str(path), mic="")
    limit = Limit(opts.duration_s, opts.utterances)
    if kind == "live" and limit.duration_s is None and limit.utterances is None:
        limit = Limit(DEFAULT_LIVE_SECONDS, None)
    run_settings = with_run_overrides(settings, **overrides)
    stats = TracingStats()
    usage = ResourceUsage(cores=usable_cores())
    _say(progress, f"running the loop ({'camera + microphone' if kind == 'live' else f'{path}, paced'}) "
                   f"until {limit.duration_s or ''}{' s' if limit.duration_s else ''}"
                   f"{f'{limit.utterances} utterances' if limit.utterances else ''} or the end of the stream ...")
    seen: dict[str, Any] = {}

    def keep_runners(runners: dict[str, Any]) -> dict[str, Any]:
        seen.update(runners)
        return runners

    try:
        p, summary = run_loop_pass(run_settings, stats, usage, sink, limit, label=v.label, runner_hook=keep_runners)
    finally:
        sink.close()
    if not (p.counters.get("frames") or p.counters.get("audio_chunks")):
        why = "; ".join(f"{name}: {st.get('last_error') or 'no data'}" for name, st in p.drops["sources"].items())
        raise ProfileError(f"nothing arrived from the sources in {p.wall_s:.1f} s ({why or 'no source'}); "
                           "check --config's [run] camera / mic")
    describe = {"label": v.label, "backend_asked": v.backend, "precision_asked": v.precision,
                "backend": ", ".join(sorted({r.backend for r in seen.values()})) or "?",
                "precision": v.runtime_precision, "artifacts": {},
                "runners": dict(summary.backends),
                "providers": sorted({x for r in seen.values() for x in getattr(r, "providers_used", [])}),
                "notes": [*summary.notes, "the running loop chose the artifacts (see its notes)"],
                "load_s": summary.startup_s, "first_inference_ms": {}}
    source = {"kind": kind, "path": None if path is None else str(path), "paced": True,
              "camera": run_settings.run.camera or "0", "mic": run_settings.run.mic or "default"}
    block = pipeline_block(stats, [p], usage, source, settings.vad.hangover_ms)
    block["events_file"] = sink.path.name
    return [_Run(describe, block, plot=_plot_for(v.label, stats, p))]


def _micro_mode(opts: ProfileOptions, bundle: Bundle, variants: list[Variant],
                progress: Callable[[str], None] | None) -> list[_Run]:
    networks = list(opts.networks or NETWORKS)
    unknown = [n for n in networks if n not in NETWORKS]
    if unknown:
        raise ProfileError(f"--networks: unknown network(s) {unknown} (expected some of {', '.join(NETWORKS)})")
    loaded: list[LoadedVariant] = []
    try:
        for v in variants:
            _say(progress, f"loading {v.label} ...")
            loaded.append(load_variant(bundle, v, opts.threads))
        targets = {lv.label: {n: micro.MicroTarget(lv.label, lv.loaded.runners[n], lv.loaded.artifacts.get(n, "?"))
                              for n in networks} for lv in loaded}
        results = micro.run_micro(bundle, targets, networks, warmup=50 if opts.warmup is None else opts.warmup,
                                  runs=opts.runs or 1000, duration_s=opts.duration_s, seed=opts.seed,
                                  progress=(lambda t: _say(progress, t)))
        out = []
        for lv in loaded:
            block = {n: r.to_record() for n, r in results[lv.label].items()}
            out.append(_Run(lv.describe(), micro=block,
                            plot=plots.PlotData(lv.label, micro={n: r.times_s for n, r in results[lv.label].items()})))
        return out
    finally:
        for lv in loaded:
            lv.close()


# ---------------------------------------------------------------------------------------- entry point


def run_profile(opts: ProfileOptions, progress: Callable[[str], None] | None = None) -> ProfileResult:
    """Profile as ``opts`` says, write ``profile.json``, ``profile.md``, the plots and the events to ``opts.out``."""
    _validate(opts)
    settings = _settings(opts)
    bundle_path = _resolve_bundle(opts, settings)
    bundle = read_bundle(bundle_path)
    variants = parse_variants(opts.compare, opts.backend, opts.precision)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    _say(progress, "collecting device facts ...")
    facts = device.collect_device_facts(probe_tools=opts.probe_device)
    for w in facts["warnings"]:
        log.warning("%s", w)
    sampler = TegrastatsSampler() if facts.get("jetson") is not None and opts.probe_device else None
    started = sampler.start() if sampler is not None else False
    kind = "micro"
    path: Path | None = None
    try:
        if opts.micro:
            runs = _micro_mode(opts, bundle, variants, progress)
        else:
            kind, path = _resolve_source(opts)
            if kind == "live" or opts.realtime:
                runs = _loop_mode(opts, bundle_path, variants, kind, path, settings, out, progress)
            else:
                runs = _file_mode(opts, bundle, variants, path, settings, out, progress)  # type: ignore[arg-type]
    finally:
        if sampler is not None:
            sampler.stop()
    device.attach_tegrastats(facts, sampler, started)
    variants_doc = [{**r.describe, "pipeline": r.pipeline, "micro": r.micro} for r in runs]
    doc: dict[str, Any] = {
        "schema": SCHEMA_ID,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "command": opts.command,
        "mode": "micro" if opts.micro else "pipeline",
        "bundle": {"path": str(bundle_path), "model_id": bundle.model_id, "synthetic": bool(bundle.synthetic)},
        "settings": {
            "runs": opts.runs or (1000 if opts.micro else (3 if len(variants) > 1 else 1)),
            "warmup": opts.warmup if opts.warmup is not None else (50 if opts.micro else 3),
            "duration_s": opts.duration_s, "utterances": opts.utterances, "threads": opts.threads,
            "emit": opts.emit, "interleaved": len(variants) > 1, "seed": opts.seed,
            "source": None if opts.micro else opts.source, "realtime": opts.realtime,
        },
        "device": facts,
        "variants": variants_doc,
        "comparison": comparison(variants_doc),
        "consistent": all((v["pipeline"] or {}).get("consistency", {}).get("ok", True) for v in variants_doc),
        "notes": [],
    }
    if bundle.synthetic:
        doc["notes"].append("the bundle was trained on SYNTHETIC data: its timings are real, its decisions are not "
                            "about real people")
    files: dict[str, Any] = {"json": out / "profile.json", "markdown": out / "profile.md", "plots": []}
    if opts.plots:
        plot_paths, note = plots.write_plots(out, [r.plot for r in runs if r.plot is not None])
        files["plots"] = plot_paths
        if note:
            doc["notes"].append(note)
    else:
        doc["notes"].append("plots not asked for (--no-plots)")
    doc["outputs"] = {"json": "profile.json", "markdown": "profile.md", "plots": [p.name for p in files["plots"]],
                      "events": [v["pipeline"]["events_file"] for v in variants_doc if v["pipeline"]]}
    problems = validate_profile(doc)
    if problems:
        doc["notes"].extend(f"self-check: {p}" for p in problems)
        for p in problems:
            log.warning("profile self-check: %s", p)
    files["json"].write_text(json.dumps(doc, indent=2, default=_json_default) + "\n", encoding="utf-8")
    files["markdown"].write_text(report.render_markdown(doc), encoding="utf-8")
    return ProfileResult(doc, out, files, report.render_console(doc))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def command_line(argv: Sequence[str] | None = None) -> str:
    return "edge-mmer " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
