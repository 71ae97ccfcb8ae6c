"""A profile document rendered for people: the console summary and ``profile.md``.

Both are functions of the document alone (``profile.json`` re-renders the same Markdown).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .table import STAGE_HEADER, format_markdown_table, format_text_table, stage_rows


def _f(x: Any, fmt: str = ".2f", none: str = "n/a") -> str:
    return none if x is None else format(float(x), fmt)


def _device_line(doc: Mapping[str, Any]) -> str:
    d = doc["device"]
    host, libs = d["host"], d["libraries"]
    parts = [f"{host.get('cpu_model') or host.get('machine')}, {host.get('usable_cores')}/{host.get('cores')} cores"]
    if d["gpu"].get("gpu_name"):
        parts.append(f"GPU {d['gpu']['gpu_name']}")
    parts.append(f"onnxruntime {libs.get('onnxruntime')} ({', '.join(libs.get('onnxruntime_providers') or [])})")
    if libs.get("tensorrt"):
        parts.append(f"TensorRT {libs['tensorrt']}")
    j = d.get("jetson")
    if j:
        nvp = (j.get("nvpmodel") or {}).get("mode", "?")
        pinned = j.get("clocks_pinned")
        clocks = "pinned" if pinned else "NOT pinned" if pinned is False else "unknown"
        parts.append(f"Jetson L4T {j.get('l4t_release')} (JetPack {j.get('jetpack_hint') or '?'}), nvpmodel {nvp}, "
                     f"clocks {clocks}")
    return "; ".join(parts)


def _latency_rows(p: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {"decision_latency": p["decision_latency_ms"], "event_latency (incl. sink)": p["event_latency_ms"]}


def _throughput_text(p: Mapping[str, Any]) -> str:
    t = p["throughput"]
    return (f"{p['stream_s']:.1f} s of stream in {p['wall_s']:.2f} s wall = {_f(t['realtime_factor'], '.1f')}x real "
            f"time; {t['frames']} frames ({_f(t.get('frames_per_s'), '.1f')}/s), {t['frames_analysed']} analysed "
            f"({_f(t['analysed_fps'], '.1f')}/s); {t['utterances']} utterances, {t['decisions']} decisions, "
            f"{t['events']} events")


def _resources_text(p: Mapping[str, Any]) -> str:
    r = p["resources"]
    return (f"CPU {_f(r['cpu_percent'], '.0f')} % of one core ({_f(r['cpu_percent_of_machine'], '.0f')} % of "
            f"{r['cores']} cores), peak RSS {_f(r['peak_rss_mib'], '.0f')} MiB "
            f"({'per pass' if r['peak_rss_scope'] == 'pass' else 'process lifetime'})")


def _drops_text(p: Mapping[str, Any]) -> str:
    d = p["drops"]
    return f"dropped: {d['frames']} frames, {d['chunks']} chunks" + (f" ({d['note']})" if d.get("note") else "")


def _consistency_lines(p: Mapping[str, Any]) -> list[str]:
    c = p["consistency"]
    return [f"{'ok  ' if x['ok'] else 'FAIL'} {x['name']}: {x['detail']}" for x in c["checks"]]


def _pipeline_console(label: str, p: Mapping[str, Any]) -> list[str]:
    lines = [f"== {label}: {len(p['passes'])} pass(es), stopped by {p['passes'][0]['stopped_by']}",
             format_text_table(STAGE_HEADER, stage_rows(p["stages"], _latency_rows(p))),
             _throughput_text(p), _resources_text(p), _drops_text(p),
             f"consistency: {'OK' if p['consistency']['ok'] else 'FAILED'}"]
    lines += ["  " + x for x in _consistency_lines(p)]
    return lines


def _micro_rows(m: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for net, r in m.items():
        s = r["latency_ms"]
        rows.append([net, r["inputs"], r["artifact"], str(r["runs"]), f"{s['mean']:.3f}", f"{s['p50']:.3f}",
                     f"{s['p90']:.3f}", f"{s['p99']:.3f}", f"{s['min']:.3f}", f"{s['max']:.3f}"])
    return rows


MICRO_HEADER = ("network", "inputs", "artifact", "runs", "mean", "p50", "p90", "p99", "min", "max")


def _comparison_rows(doc: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    comp = doc["comparison"]
    labels = [v["label"] for v in doc["variants"]]
    header = ["p50 (ms)", *labels, *(f"speed-up {lab}" for lab in labels[1:])]
    rows: list[list[str]] = []
    by_label = {v["label"]: v for v in doc["variants"]}
    if doc["mode"] == "pipeline":
        base = by_label[labels[0]]["pipeline"]
        names = [*base["stages"], "decision_latency", "event_latency"]
        for name in names:
            vals = []
            for lab in labels:
                p = by_label[lab]["pipeline"]
                src = p["stages"].get(name) if name in p["stages"] else (
                    p["decision_latency_ms"] if name == "decision_latency" else
                    p["event_latency_ms"] if name == "event_latency" else None)
                vals.append("" if not src else f"{src['p50']:.3f}")
            ups = []
            for lab in labels[1:]:
                c = comp["pipeline"].get(lab, {})
                row = c.get("stages", {}).get(name) if name in base["stages"] else c.get(name)
                ups.append(_f((row or {}).get("p50"), ".2f", "") + ("x" if row and row.get("p50") else ""))
            rows.append([name, *vals, *ups])
        rows.append(["real-time factor", *(_f(by_label[lab]["pipeline"]["throughput"]["realtime_factor"], ".1f")
                                           for lab in labels),
                     *(_f(comp["pipeline"].get(lab, {}).get("realtime_factor"), ".2f") + "x" for lab in labels[1:])])
    else:
        nets = list(by_label[labels[0]]["micro"])
        for net in nets:
            vals = [f"{by_label[lab]['micro'][net]['latency_ms']['p50']:.3f}" for lab in labels]
            ups = [_f(comp["micro"].get(lab, {}).get(net, {}).get("p50"), ".2f") + "x" for lab in labels[1:]]
            rows.append([net, *vals, *ups])
    return header, rows


def render_console(doc: Mapping[str, Any]) -> str:
    lines = [f"edge-mmer profile ({doc['mode']}): bundle {doc['bundle']['path']} ({doc['bundle']['model_id']}"
             f"{', SYNTHETIC' if doc['bundle']['synthetic'] else ''})",
             f"device: {_device_line(doc)}"]
    lines += [f"WARNING: {w}" for w in doc["device"].get("warnings", [])]
    for v in doc["variants"]:
        lines.append("")
        lines.append(f"variant {v['label']}: backend {v['backend']}, artifacts "
                     f"{', '.join(f'{k}={a}' for k, a in v['artifacts'].items()) or 'n/a'}")
        if v["pipeline"]:
            lines += _pipeline_console(v["label"], v["pipeline"])
        if v["micro"]:
            lines.append(format_text_table(MICRO_HEADER, _micro_rows(v["micro"])))
    if doc["comparison"]:
        header, rows = _comparison_rows(doc)
        lines += ["", f"comparison ({doc['comparison']['definition']}):", format_text_table(header, rows)]
    lines += ["", *doc.get("notes", [])]
    outs = doc.get("outputs", {})
    if outs:
        lines.append(f"written: {outs.get('json')}, {outs.get('markdown')}"
                     + (f", {', '.join(outs.get('plots') or [])}" if outs.get("plots") else "")
                     + (f", {', '.join(outs.get('events') or [])}" if outs.get("events") else ""))
    return "\n".join(lines).rstrip() + "\n"


def _facts_table(doc: Mapping[str, Any]) -> str:
    d = doc["device"]
    host, libs, gpu = d["host"], d["libraries"], d["gpu"]
    rows = [["host", f"{host.get('hostname')} — {host.get('os')}, {host.get('machine')}"],
            ["CPU", f"{host.get('cpu_model')}, {host.get('cores')} cores ({host.get('usable_cores')} usable), "
                    f"governor {', '.join(host.get('cpu_governors') or []) or 'n/a'}"],
            ["memory", f"{_f(host.get('memory_mib'), '.0f')} MiB"],
            ["Python / numpy / OpenCV", f"{libs.get('python')} / {libs.get('numpy')} / {libs.get('opencv')}"],
            ["ONNX Runtime", f"{libs.get('onnxruntime')}, providers available: "
                             f"{', '.join(libs.get('onnxruntime_providers') or [])}"],
            ["TensorRT", str(libs.get("tensorrt") or "not installed")],
            ["GPU", f"{gpu.get('gpu_name') or 'none visible'}"
                    + (f", compute {gpu['compute_capability']}, CUDA {gpu.get('cuda_version')}"
                       if gpu.get("compute_capability") else "")]]
    j = d.get("jetson")
    if j:
        jc = j.get("jetson_clocks") or {}
        rows += [["Jetson", f"{j.get('model', '?')}, L4T {j.get('l4t_release')} (JetPack {j.get('jetpack_hint')})"],
                 ["nvpmodel", str((j.get("nvpmodel") or {}).get("mode", "unknown"))],
                 ["clocks pinned (jetson_clocks)", str(j.get("clocks_pinned"))]]
        if jc.get("gpu"):
            rows.append(["GPU clock (MHz)", f"{jc['gpu']['current_mhz']} (range {jc['gpu']['min_mhz']}–"
                                            f"{jc['gpu']['max_mhz']})"])
        if jc.get("emc"):
            rows.append(["EMC clock (MHz)", f"{jc['emc']['current_mhz']} (max {jc['emc']['max_mhz']}, override "
                                            f"{jc.get('emc_override')})"])
        ts = (j.get("tegrastats") or {}).get("during_run")
        if ts:
            rows += [["tegrastats during the run", f"{ts['samples']} samples; module power mean "
                                                   f"{_f(ts.get('total_power_mw_mean'), '.0f')} mW, max "
                                                   f"{_f(ts.get('total_power_mw_max'), '.0f')} mW; GPU "
                                                   f"{ts.get('gpu_freq_mhz_range')} MHz, EMC "
                                                   f"{ts.get('emc_freq_mhz_range')} MHz"],
                     ["max temperatures (C)", ", ".join(f"{k} {v:.1f}" for k, v in ts["temperature_c_max"].items())]]
        for note in j.get("notes", []):
            rows.append(["note", note])
    return format_markdown_table(["fact", "value"], rows)


def render_markdown(doc: Mapping[str, Any]) -> str:
    b, s = doc["bundle"], doc["settings"]
    out = [f"# edge-mmer profile ({doc['mode']} mode)", "",
           f"- created {doc['created']}" + (f" by `{doc['command']}`" if doc.get("command") else ""),
           f"- bundle `{b['path']}` ({b['model_id']}){' — trained on SYNTHETIC data' if b['synthetic'] else ''}",
           f"- settings: runs {s['runs']}, warm-up {s['warmup']}, duration {s.get('duration_s') or 'whole source'}"
           f", utterances {s.get('utterances') or 'all'}, threads {s.get('threads') or 'default'}, emit "
           f"{s.get('emit')}{', variants interleaved round-robin' if s.get('interleaved') else ''}",
           f"- consistency of per-stage sums with end-to-end figures: **{'OK' if doc['consistent'] else 'FAILED'}**",
           ""]
    for w in doc["device"].get("warnings", []):
        out += [f"> **Warning**: {w}", ""]
    out += ["## Device", "", _facts_table(doc), ""]
    for v in doc["variants"]:
        out += [f"## Variant `{v['label']}`", "",
                f"Backend {v['backend']}, precision {v['precision']}; load {_f(v.get('load_s'), '.2f')} s.", ""]
        if v["runners"]:
            out += [format_markdown_table(["network", "artifact", "runs on", "first inference (ms)"],
                                          [[n, v["artifacts"].get(n, ""), r,
                                            _f(v.get("first_inference_ms", {}).get(n), ".2f", "")]
                                           for n, r in v["runners"].items()]), ""]
        out += [f"- {n}" for n in v.get("notes", [])]
        if v.get("notes"):
            out.append("")
        p = v["pipeline"]
        if p:
            src, lat = p["source"], p["decision_latency_ms"]
            out += ["Source: "
                    f"{src['kind']} {src.get('path') or ''}{' (paced to real time)' if src.get('paced') else ''};"
                    f" {len(p['passes'])} pass(es), stopped by {p['passes'][0]['stopped_by']}.", "",
                    format_markdown_table(STAGE_HEADER, stage_rows(p["stages"], _latency_rows(p), indent="↳ ")), "",
                    f"- throughput: {_throughput_text(p)}",
                    f"- {_resources_text(p)}",
                    f"- {_drops_text(p)}",
                    f"- end-to-end: decision latency p50 {lat['p50']:.2f} ms, p90 {lat['p90']:.2f} ms, p95 "
                    f"{lat.get('p95', float('nan')):.2f} ms (VAD end-of-utterance decision → event); the VAD "
                    f"decides {p['vad_hangover_ms']} ms of silence after the utterance ends, so utterance end → "
                    f"event is that much more in a live run",
                    f"- events: `{p.get('events_file')}`", "",
                    "Consistency checks:", ""]
            out += [f"- {x}" for x in _consistency_lines(p)]
            out.append("")
        m = v["micro"]
        if m:
            out += [format_markdown_table(MICRO_HEADER, _micro_rows(m)), ""]
            cmds = [(n, r["trtexec"]) for n, r in m.items() if r.get("trtexec")]
            if cmds:
                out += ["Compare with trtexec (its *Latency* line; on a Jetson, TensorRT's samples are in "
                        "/usr/src/tensorrt/bin):", "", "```bash", *(c for _, c in cmds), "```", ""]
    if doc["comparison"]:
        header, rows = _comparison_rows(doc)
        out += ["## Comparison", "", doc["comparison"]["definition"] + ".", "", format_markdown_table(header, rows), ""]
    plots = (doc.get("outputs") or {}).get("plots") or []
    if plots:
        out += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    if doc.get("notes"):
        out += ["## Notes", ""] + [f"- {n}" for n in doc["notes"]] + [""]
    out += ["## How to read this", "",
            "- Stage rows are milliseconds per call; `↳` rows run inside the row above (`svm` and `fuzzy` inside "
            "`decision`). `capture_wait` is time spent getting the next chunk (decoding a file, or waiting for the "
            "camera / microphone live). `total` is the sum over the run: where the time goes.",
            "- `decision_latency` runs from the VAD's end-of-utterance decision to the event; `event_latency` adds "
            "the sink. Latencies are the figures a user feels; stage p50s are where to optimise.",
            "- Real-time factor > 1 means the device keeps up with the stream with room to spare.",
            "- Compare variants only within one profile (they ran interleaved on the same machine state).", ""]
    return "\n".join(out)
