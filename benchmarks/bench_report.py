"""The benchmark's results as a Markdown page (machine header, one row per network x case x
variant) and as ``networks.md`` + ``networks.json`` on disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["render_markdown", "write_results"]


def _fmt_ms(v: float) -> str:
    return f"{v:.3f}" if v < 1 else f"{v:.2f}" if v < 100 else f"{v:.0f}"


def _fmt_x(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}×"


def render_markdown(doc: dict[str, Any], command: str | None = None) -> str:
    """The results as a Markdown page: machine header, then one row per network × case × variant."""
    m = doc["machine"]
    shown = ("avx2", "avx512_vnni", "avx_vnni", "amx_int8")
    flags = ", ".join(f"{f} {'yes' if on else 'no'}" for f, on in m["cpu_flags"].items() if f in shown or on)
    v = m["versions"]
    s = doc["settings"]
    lines = [
        "# edge-mmer network latency",
        "",
        f"- **Machine**: {m['cpu']}, {m['cores']} cores ({m['machine']}); {flags}",
        f"- **Software**: torch {v.get('torch')}, onnxruntime {v.get('onnxruntime')}, onnx {v.get('onnx')}, "
        f"Python {m['python']}; TensorRT {v.get('tensorrt') or 'not installed'}",
        f"- **Threads**: {s['threads']} (torch.set_num_threads and ORT intra_op_num_threads; ORT inter-op 1, "
        f"ORT_ENABLE_ALL, no spinning)",
        f"- **Date**: {doc['created']}; {s['warmup']} warm-up + {s['runs']} timed runs per case "
        f"({s['heavy_runs']} for face encoders at ≥ {s['heavy_crop_px']} px), variants interleaved per round",
    ]
    if command:
        lines.append(f"- **Command**: `{command}`")
    if m.get("env"):
        lines.append("- **Environment**: " + ", ".join(f"`{k}={val}`" for k, val in m["env"].items()))
    lines += [
        "",
        "Latency in ms (median / p90 / min). Speed-up = baseline median / variant median (> 1 is faster). "
        "Random seeded weights; INT8 calibrated on "
        f"{s['calibration_samples']} synthetic samples (speed does not depend on calibration quality). "
        "`ort-int8-trt` is the TensorRT Q/DQ form run by ONNX Runtime's CPU provider: not meant for CPU speed.",
        "",
        "| config | network | input | variant | median ms | p90 ms | min ms | vs ORT FP32 | vs torch eager |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for rec in doc["results"]:
        encoder = rec["network"] in ("speech_encoder", "face_encoder")
        shape = "; ".join(f"{k} {tuple(sh)}" for k, sh in rec["inputs"].items()) if encoder else rec["case"]
        for variant, r in rec["variants"].items():
            if r["status"] == "ok":
                cells = [_fmt_ms(r["median_ms"]), _fmt_ms(r["p90_ms"]), _fmt_ms(r["min_ms"]),
                         _fmt_x(r["speedup_vs_ort_fp32"]), _fmt_x(r["speedup_vs_torch_eager"])]
            else:
                cells = [r["status"], "", "", "", ""]
            lines.append(f"| {rec['config']} | {rec['network']} | {shape} | {variant} | " + " | ".join(cells) + " |")
    load = doc.get("load_average") or {}
    if load.get("start") and load.get("end"):
        lines += ["", f"Load average (1/5/15 min) at start {load['start']}, at end {load['end']} "
                  f"(it counts this benchmark's own threads too; a 1-minute value well above {m['cores']} "
                  "means another process competed for the cores)."]
    lines += ["", f"Total time {doc['elapsed_s']} s. Machine-readable: `networks.json` "
              f"(schema `{doc['schema']}`, version {doc['version']}).", ""]
    return "\n".join(lines)


def write_results(doc: dict[str, Any], out: Path, command: str | None = None) -> tuple[Path, Path]:
    """Write ``networks.md`` and ``networks.json`` under ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / "networks.md", out / "networks.json"
    if command:
        doc = {**doc, "command": command}
    md.write_text(render_markdown(doc, command), encoding="utf-8")
    js.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return md, js
