"""Latency of the five networks per runtime variant: PyTorch eager, ONNX Runtime FP32 / INT8, TensorRT.

``python -m benchmarks.bench_networks [--configs demo,paper] [--networks ...] [--runs 30] [--warmup 5]
[--threads N] [--out benchmarks/results]``

Per config (``demo``, ``paper``) every network is built with seeded random weights (latency does not
depend on the weight values) from the manifest entry training would write for it
(:func:`edge_mmer.train.outputs.network_entries`), exported to ONNX FP32 exactly as ``edge-mmer convert`` does
(:func:`edge_mmer.convert.onnx_export.export_network`) and quantized to the ``int8-cpu`` and
``int8-trt`` Q/DQ flavours (:func:`edge_mmer.convert.quantize.quantize_int8`) calibrated on a few
synthetic, realistically scaled inputs (calibration quality changes accuracy, not speed).

All variants of one case run in one process, interleaved per repetition round (A, B, C, D, then
again, the starting variant rotating each round) so that drift in machine load hits them equally;
per variant: median, p90 and min latency over the timed runs and the speed-up relative to ONNX
Runtime FP32 and to PyTorch eager (baseline median / variant median: > 1 is faster). Results go to
``networks.md`` and ``networks.json`` (schema ``edge-mmer/bench-networks``, version 1).

The networks, cases and inputs are :mod:`benchmarks.bench_inputs`, the Markdown / JSON output
:mod:`benchmarks.bench_report` (both re-exported here); the timer, the CPU model and the usable
cores are the profiler's (:mod:`edge_mmer.runtime.profiling`).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import functools
import logging
import os
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_inputs import (
    HEAVY_CROP,
    SPEECH_FRAMES,
    Case,
    build_network,
    calibration_samples,
    case_inputs,
    cases_for,
    network_entry,
    network_spec,
)
from benchmarks.bench_report import render_markdown, write_results
from edge_mmer.config import PRESETS, ModelConfig
from edge_mmer.convert.quantize import QUANTIZED_OP_TYPES, quantize_int8
from edge_mmer.provenance import versions
from edge_mmer.runtime.profiling.device import cpu_model
from edge_mmer.runtime.profiling.micro import time_calls
from edge_mmer.runtime.profiling.resources import usable_cores
from edge_mmer.vocab import NETWORKS, ArtifactKind

log = logging.getLogger(__name__)

__all__ = [
    "NETWORKS",
    "SCHEMA",
    "VARIANTS",
    "VERSION",
    "Case",
    "build_network",
    "calibration_samples",
    "case_inputs",
    "cases_for",
    "machine_info",
    "main",
    "network_entry",
    "network_spec",
    "render_markdown",
    "run_benchmark",
    "summarize",
    "time_interleaved",
    "write_results",
]

SCHEMA = "edge-mmer/bench-networks"
VERSION = 1
VARIANTS = ("torch-eager", "ort-fp32", "ort-int8-cpu", "ort-int8-trt", "trt-fp16", "trt-int8")
ORT_VARIANTS = {"ort-fp32": None, "ort-int8-cpu": ArtifactKind.INT8_CPU, "ort-int8-trt": ArtifactKind.INT8_TRT}
TRT_VARIANTS = ("trt-fp16", "trt-int8")
VARIANT_NOTES = {
    "torch-eager": "PyTorch eager, torch.inference_mode",
    "ort-fp32": "ONNX Runtime CPU, FP32 (the exported graph)",
    "ort-int8-cpu": "ONNX Runtime CPU, Q/DQ U8 activations + S8 per-channel weights",
    "ort-int8-trt": "ONNX Runtime CPU running the TensorRT Q/DQ form (S8 symmetric): not meant for CPU speed",
    "trt-fp16": "TensorRT FP16 plan",
    "trt-int8": "TensorRT INT8 plan (from the int8-trt Q/DQ graph)",
}
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


@dataclass
class VariantResult:
    variant: str
    status: str = "ok"  # "ok", "n/a (...)" or "error: ..."
    times_ms: list[float] = field(default_factory=list)


# ----------------------------------------------------------------------------------- calibration


class _Reader:
    """An ONNX Runtime ``CalibrationDataReader`` over a list of feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self.feeds = feeds
        self._it: Iterator[dict[str, np.ndarray]] = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = iter(self.feeds)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return iter(self.feeds)

    def __len__(self) -> int:
        return len(self.feeds)


def _make_reader(feeds: list[dict[str, np.ndarray]]) -> Any:
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(_Reader, CalibrationDataReader):
        pass

    return Reader(feeds)


# ---------------------------------------------------------------------------------------- timing


def summarize(times_ms: Sequence[float]) -> dict[str, float | int]:
    """median, p90, min, mean (ms) and the number of runs."""
    a = np.asarray(times_ms, dtype=np.float64)
    return {"median_ms": float(np.median(a)), "p90_ms": float(np.percentile(a, 90)), "min_ms": float(a.min()),
            "mean_ms": float(a.mean()), "n": int(a.size)}


def time_interleaved(runners: dict[str, Callable[[], object]], runs: int, warmup: int,
                     tick: Callable[[], None] | None = None) -> dict[str, list[float]]:
    """``warmup`` untimed then ``runs`` timed rounds; each round calls every runner once, the first
    runner rotating per round (each call timed by the profiler's timer, ``micro.time_calls``).
    Returns the timed latencies (ms) per runner."""
    names = list(runners)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(warmup + runs):
        k = r % len(names) if names else 0
        for name in names[k:] + names[:k]:
            dt = time_calls(runners[name], 1)[0] * 1e3
            if r >= warmup:
                times[name].append(dt)
        if tick is not None:
            tick()
    return times


def _ort_session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    # no busy-waiting after a run: the next variant in the round would compete with spinning workers
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def _tensorrt_status() -> str | None:
    """None when TensorRT imports, else the "n/a" status for the TensorRT variants."""
    try:
        import tensorrt  # noqa: F401
    except Exception:
        return "n/a (no TensorRT)"
    return None


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's / quantizer's warnings and INFO logging while preparing."""
    root = logging.getLogger()
    old = root.level
    root.setLevel(max(old, logging.WARNING))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(old)


# ------------------------------------------------------------------------------------------- run


def machine_info(threads: int) -> dict[str, Any]:
    """CPU model and usable cores (the profiler's facts), the SIMD flags that matter for INT8 / FP32
    kernels, versions, threads."""
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("flags", "Features"):
                flags.update(value.split())
    except OSError:
        pass
    return {
        "cpu": cpu_model() or "unknown",
        "cores": usable_cores(),
        "cpu_flags": {f: f in flags for f in CPU_FLAGS},
        "machine": platform.machine(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions("torch", "onnxruntime", "onnx", "onnxslim", "numpy", "tensorrt"),
        "threads": threads,
        "env": {k: os.environ[k] for k in sorted(os.environ) if k.startswith(("OMP_", "OPENBLAS_", "MKL_"))},
    }


def _prepare(cfg: ModelConfig, name: str, workdir: Path, threads: int, calib_n: int, seed: int,
             set_desc: Callable[[str], None]) -> tuple[Any, dict[str, Any]]:
    """Build, export and quantize one network; returns (torch wrapper, {variant: session | status})."""
    from edge_mmer.convert.onnx_export import FeaturesGraph, StepGraph, export_network

    net = network_spec(cfg, name)
    module = build_network(cfg, name, seed)
    set_desc(f"{cfg.name} {name}: export")
    with _quiet():
        graph = export_network(name, module, net)
    fp32 = workdir / f"{cfg.name}.{name}.fp32.onnx"
    fp32.write_bytes(graph.serialize())
    made: dict[str, Any] = {"paths": {"ort-fp32": fp32}, "quantization": {}, "errors": {}}
    feeds = calibration_samples(cfg, name, calib_n, seed=seed + 1000)
    quantizable = any(n.op_type in QUANTIZED_OP_TYPES for n in graph.model.graph.node)
    for variant, flavour in ORT_VARIANTS.items():
        if flavour is None:
            continue
        if not quantizable:
            made["errors"][variant] = f"n/a (no {'/'.join(QUANTIZED_OP_TYPES)} node: the LSTM stays FP32)"
            continue
        set_desc(f"{cfg.name} {name}: {flavour}")
        out = workdir / f"{cfg.name}.{name}.{flavour}.onnx"
        try:
            with _quiet():
                made["quantization"][flavour] = quantize_int8(fp32, out, flavour, _make_reader(feeds))
            made["paths"][variant] = out
        except Exception as exc:  # a failed flavour is reported, the others still run
            log.warning("%s %s: %s failed: %s", cfg.name, name, flavour, exc)
            made["errors"][variant] = f"error: {type(exc).__name__}: {str(exc)[:200]}"
    wrapper = StepGraph(module) if net.network_class in ("ContextLSTM", "FusionLSTM") else FeaturesGraph(module)
    return wrapper.eval(), made


def _runners(wrapper: Any, made: dict[str, Any], inputs: dict[str, np.ndarray], threads: int,
             sessions: dict[str, Any]) -> tuple[dict[str, Callable[[], object]], dict[str, str]]:
    import torch

    tensors = [torch.from_numpy(a) for a in inputs.values()]

    def run_torch() -> object:
        with torch.inference_mode():
            return wrapper(*tensors)

    runners: dict[str, Callable[[], object]] = {"torch-eager": run_torch}
    statuses: dict[str, str] = dict(made["errors"])
    for variant in ORT_VARIANTS:
        if variant in statuses:
            continue
        if variant not in sessions:
            sessions[variant] = _ort_session(made["paths"][variant], threads)
        sess = sessions[variant]
        runners[variant] = functools.partial(sess.run, None, inputs)
    trt = _tensorrt_status()
    for variant in TRT_VARIANTS:
        # TensorRT plans are built and timed on the device (trtexec / the runtime); not in this process
        statuses[variant] = trt or "n/a (TensorRT present: time plans on the device, not in this benchmark)"
    return runners, statuses


def _case_record(case: Case, inputs: dict[str, np.ndarray], results: dict[str, VariantResult]) -> dict[str, Any]:
    stats = {v: summarize(r.times_ms) for v, r in results.items() if r.status == "ok" and r.times_ms}
    variants: dict[str, Any] = {}
    for v in VARIANTS:
        r = results.get(v)
        if r is None:
            continue
        rec: dict[str, Any] = {"status": r.status, "note": VARIANT_NOTES[v]}
        if v in stats:
            rec.update(stats[v])
            for base, key in (("ort-fp32", "speedup_vs_ort_fp32"), ("torch-eager", "speedup_vs_torch_eager")):
                rec[key] = stats[base]["median_ms"] / stats[v]["median_ms"] if base in stats else None
            rec["times_ms"] = [round(t, 4) for t in r.times_ms]
        variants[v] = rec
    return {"config": case.config, "network": case.network, "case": case.label,
            "inputs": {k: list(a.shape) for k, a in inputs.items()}, "runs": case.runs, "warmup": case.warmup,
            "variants": variants}


def run_benchmark(configs: Sequence[str] = ("demo", "paper"), networks: Sequence[str] = NETWORKS, *,
                  runs: int = 30, warmup: int = 5, heavy_runs: int = 20, threads: int | None = None,
                  calibration: int = 16, seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Run every case and return the JSON document (see the module docstring)."""
    import torch

    threads = threads or machine_info(1)["cores"]
    torch.set_num_threads(threads)
    unknown = [c for c in configs if c not in PRESETS] + [n for n in networks if n not in NETWORKS]
    if unknown:
        raise ValueError(f"unknown config or network: {', '.join(unknown)}")
    plan = [(PRESETS[c](), n) for c in configs for n in NETWORKS if n in networks]
    all_cases = {(cfg.name, n): cases_for(cfg, n, runs, warmup, heavy_runs) for cfg, n in plan}
    total = sum(c.runs + c.warmup for cases in all_cases.values() for c in cases)
    bar: Any = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="round", dynamic_ncols=True, file=sys.stderr)

    def set_desc(text: str) -> None:
        if bar is not None:
            bar.set_description(text)

    def tick() -> None:
        if bar is not None:
            bar.update(1)

    started = time.perf_counter()
    load_start = _loadavg()
    records: list[dict[str, Any]] = []
    networks_meta: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="edge-mmer-bench-") as tmp:
            for cfg, name in plan:
                wrapper, made = _prepare(cfg, name, Path(tmp), threads, calibration, seed, set_desc)
                networks_meta.append({
                    "config": cfg.name, "network": name, "class": network_spec(cfg, name).network_class,
                    "parameters": int(sum(p.numel() for p in wrapper.parameters())),
                    "onnx_bytes": {v: p.stat().st_size for v, p in made["paths"].items()},
                    "quantization": made["quantization"], "calibration_samples": calibration,
                })
                sessions: dict[str, Any] = {}
                for case in all_cases[(cfg.name, name)]:
                    set_desc(f"{cfg.name} {name} {case.label}")
                    inputs = case_inputs(cfg, case, seed)
                    runners, statuses = _runners(wrapper, made, inputs, threads, sessions)
                    times = time_interleaved(runners, case.runs, case.warmup, tick)
                    results = {v: VariantResult(v, times_ms=t) for v, t in times.items()}
                    results.update({v: VariantResult(v, status=s) for v, s in statuses.items()})
                    records.append(_case_record(case, inputs, results))
                del sessions
    finally:
        if bar is not None:
            bar.close()
    return {
        "schema": SCHEMA,
        "version": VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(threads),
        "settings": {
            "configs": list(configs), "networks": list(networks), "runs": runs, "warmup": warmup,
            "heavy_runs": heavy_runs, "heavy_crop_px": HEAVY_CROP, "threads": threads,
            "torch_threads": threads, "ort": {"intra_op_num_threads": threads, "inter_op_num_threads": 1,
                                               "graph_optimization_level": "ORT_ENABLE_ALL", "allow_spinning": False,
                                               "provider": "CPUExecutionProvider"},
            "interleaved": True, "speech_frames": SPEECH_FRAMES, "calibration_samples": calibration, "seed": seed,
            "speedup": "baseline median / variant median (> 1: faster than the baseline)",
        },
        "networks": networks_meta,
        "results": records,
        "elapsed_s": round(time.perf_counter() - started, 1),
        "load_average": {"start": load_start, "end": _loadavg()},
    }


def _loadavg() -> list[float] | None:
    """1/5/15-minute load averages: another busy process makes every latency here suspect."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None

def _csv(value: str, known: Sequence[str], what: str) -> list[str]:
    items = [x.strip() for x in value.split(",") if x.strip()]
    bad = [x for x in items if x not in known]
    if bad or not items:
        raise argparse.ArgumentTypeError(f"{what}: {', '.join(bad) or value!r} (known: {', '.join(known)})")
    return items


def _positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return n


def _configs_arg(value: str) -> list[str]:
    return _csv(value, tuple(PRESETS), "config")


def _networks_arg(value: str) -> list[str]:
    return _csv(value, NETWORKS, "network")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_networks", description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", type=_configs_arg, default=["demo", "paper"])
    p.add_argument("--networks", type=_networks_arg, default=list(NETWORKS))
    p.add_argument("--runs", type=_positive, default=30, help="timed runs per case (default 30)")
    p.add_argument("--warmup", type=int, default=5, help="untimed warm-up runs per case (default 5)")
    p.add_argument("--heavy-runs", type=_positive, default=20,
                   help=f"timed runs for face encoders at >= {HEAVY_CROP} px, i.e. the paper's (default 20)")
    p.add_argument("--threads", type=_positive, default=None, help="torch and ORT intra-op threads (default: cores)")
    p.add_argument("--calibration", type=_positive, default=16, help="INT8 calibration samples (default 16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    doc = run_benchmark(args.configs, args.networks, runs=args.runs, warmup=max(0, args.warmup),
                        heavy_runs=args.heavy_runs, threads=args.threads, calibration=args.calibration,
                        seed=args.seed, progress=not args.no_progress)
    given = " ".join(sys.argv[1:]) if argv is None else ""
    command = "python -m benchmarks.bench_networks" + (f" {given}" if given else "")
    md, js = write_results(doc, args.out, command)
    print(render_markdown(doc, command))
    print(f"wrote {md} and {js}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
