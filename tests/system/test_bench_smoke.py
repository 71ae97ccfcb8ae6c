"""Smoke test of the network benchmark: it runs and writes a well-formed table and JSON.

No timing assertions: speed is measured by ``python -m benchmarks.bench_networks``, not by tests."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("torch")  # for the imports below
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxslim")

from benchmarks.bench_networks import (
    SCHEMA,
    VARIANTS,
    VERSION,
    main,
    run_benchmark,
    summarize,
    time_interleaved,
    write_results,
)

pytestmark = pytest.mark.needs_torch


def test_time_interleaved_rotates_and_counts() -> None:
    calls: list[str] = []
    runners: dict[str, Callable[[], object]] = {name: functools.partial(calls.append, name) for name in ("a", "b", "c")}
    times = time_interleaved(runners, runs=3, warmup=2)
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3, "c": 3}
    assert calls[:3] == ["a", "b", "c"] and calls[3:6] == ["b", "c", "a"]  # the first runner rotates
    assert len(calls) == 15


def test_summarize() -> None:
    s = summarize([3.0, 1.0, 2.0, 4.0, 10.0])
    assert s["median_ms"] == 3.0 and s["min_ms"] == 1.0 and s["n"] == 5
    assert 4.0 <= s["p90_ms"] <= 10.0


def test_demo_speech_encoder_table_and_json(tmp_path: Path) -> None:
    doc = run_benchmark(["demo"], ["speech_encoder"], runs=3, warmup=2, threads=1, calibration=2, progress=False)
    md_path, js_path = write_results(doc, tmp_path, command="python -m benchmarks.bench_networks --test")
    data = json.loads(js_path.read_text(encoding="utf-8"))
    assert data["schema"] == SCHEMA and data["version"] == VERSION
    assert data["machine"]["cores"] >= 1 and data["machine"]["versions"]["torch"]
    assert data["settings"]["threads"] == 1
    (rec,) = data["results"]
    assert rec["config"] == "demo" and rec["network"] == "speech_encoder"
    assert rec["inputs"] == {"log_mel": [1, 300, 40]}
    assert set(rec["variants"]) == set(VARIANTS)
    for variant in ("torch-eager", "ort-fp32", "ort-int8-cpu", "ort-int8-trt"):
        r = rec["variants"][variant]
        assert r["status"] == "ok", (variant, r["status"])
        assert r["n"] == 3 and len(r["times_ms"]) == 3
        assert 0 < r["min_ms"] <= r["median_ms"] <= r["p90_ms"]
        assert r["speedup_vs_ort_fp32"] > 0 and r["speedup_vs_torch_eager"] > 0
    assert rec["variants"]["ort-fp32"]["speedup_vs_ort_fp32"] == pytest.approx(1.0)
    assert rec["variants"]["torch-eager"]["speedup_vs_torch_eager"] == pytest.approx(1.0)
    for variant in ("trt-fp16", "trt-int8"):
        assert rec["variants"][variant]["status"].startswith("n/a")
    (net,) = data["networks"]
    assert set(net["quantization"]) == {"int8-cpu", "int8-trt"}
    assert net["quantization"]["int8-cpu"]["quantized_ops"]["Conv"] >= 1

    md = md_path.read_text(encoding="utf-8")
    assert "**Machine**" in md and "**Threads**: 1" in md
    header = "| config | network | input | variant | median ms | p90 ms | min ms | vs ORT FP32 | vs torch eager |"
    assert header in md
    rows = [line for line in md.splitlines() if line.startswith("| demo | speech_encoder |")]
    assert len(rows) == len(VARIANTS)
    assert all(line.count("|") == header.count("|") for line in rows)


def test_cli_rejects_unknown_network(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--networks", "nope", "--out", str(tmp_path)])
