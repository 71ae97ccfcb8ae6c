"""``profile.json``'s shape (``"schema": "edge-mmer/profile/v1"``) and its self-check.

:data:`PROFILE_SCHEMA` is a JSON Schema (2020-12) of the document; :func:`validate_profile` checks a
document against it (when ``jsonschema`` is installed) and re-computes, from the numbers in the
document alone, the consistency checks of every variant
(:func:`edge_mmer.runtime.profiling.analysis.consistency_checks`): a profile whose per-stage sums do
not add up to its end-to-end figures is reported, whoever wrote it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .analysis import consistency_checks

SCHEMA_ID = "edge-mmer/profile/v1"

_NUM = {"type": "number"}
_NUM_OR_NULL = {"type": ["number", "null"]}
_SUMMARY: dict[str, Any] = {
    "type": "object",
    "required": ["count", "mean", "p50", "p90", "p99", "max"],
    "properties": {"count": {"type": "integer", "minimum": 0}, "mean": _NUM, "p50": _NUM, "p90": _NUM, "p95": _NUM,
                   "p99": _NUM, "max": _NUM, "total_ms": _NUM},
}
_STAGE = {**_SUMMARY, "required": [*_SUMMARY["required"], "total_ms", "nested_in"],
          "properties": {**_SUMMARY["properties"], "nested_in": {"type": ["string", "null"]}}}
_CHECK = {"type": "object", "required": ["name", "ok", "detail", "lhs", "rhs"],
          "properties": {"name": {"type": "string"}, "ok": {"type": "boolean"}, "detail": {"type": "string"},
                         "lhs": _NUM, "rhs": _NUM}}
_PIPELINE = {
    "type": "object",
    "required": ["source", "passes", "wall_s", "stream_s", "stages", "decision_latency_ms", "event_latency_ms",
                 "throughput", "drops", "resources", "decision_windows", "consistency"],
    "properties": {
        "passes": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["index", "wall_s", "stream_s", "stopped_by", "counters"]}},
        "wall_s": _NUM, "stream_s": _NUM,
        "stages": {"type": "object", "additionalProperties": _STAGE},
        "decision_latency_ms": _SUMMARY, "event_latency_ms": _SUMMARY,
        "throughput": {"type": "object", "required": ["realtime_factor", "analysed_fps", "frames", "frames_analysed",
                                                      "utterances", "decisions", "events"]},
        "drops": {"type": "object", "required": ["frames", "chunks"]},
        "resources": {"type": "object", "required": ["wall_s", "cpu_s", "cpu_percent", "peak_rss_mib"]},
        "decision_windows": {"type": "object", "required": ["count", "latency_total_ms", "stages_total_ms",
                                                            "decision_path_total_ms", "decision_path_in_windows_ms"]},
        "consistency": {"type": "object", "required": ["ok", "checks", "tolerance"],
                        "properties": {"ok": {"type": "boolean"}, "checks": {"type": "array", "items": _CHECK}}},
    },
}
_MICRO_ENTRY = {"type": "object",
                "required": ["network", "inputs", "artifact", "runner", "warmup", "runs", "latency_ms"],
                "properties": {"runs": {"type": "integer", "minimum": 1}, "latency_ms": _SUMMARY}}
PROFILE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "type": "object",
    "required": ["schema", "created", "mode", "bundle", "settings", "device", "variants", "comparison", "consistent"],
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "created": {"type": "string"},
        "command": {"type": ["string", "null"]},
        "mode": {"enum": ["pipeline", "micro"]},
        "bundle": {"type": "object", "required": ["path", "model_id", "synthetic"]},
        "settings": {"type": "object", "required": ["runs", "warmup", "interleaved"]},
        "device": {"type": "object", "required": ["host", "libraries", "gpu", "jetson", "warnings"]},
        "variants": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "required": ["label", "backend", "precision", "artifacts", "runners", "providers", "notes", "pipeline",
                         "micro"],
            "properties": {"pipeline": {"oneOf": [{"type": "null"}, _PIPELINE]},
                           "micro": {"oneOf": [{"type": "null"}, {"type": "object",
                                                                  "additionalProperties": _MICRO_ENTRY}]}}}},
        "comparison": {"oneOf": [{"type": "null"}, {"type": "object", "required": ["baseline", "definition"]}]},
        "consistent": {"type": "boolean"},
        "notes": {"type": "array", "items": {"type": "string"}},
    },
}


def recheck_pipeline(block: Mapping[str, Any]) -> list[str]:
    """Re-compute one variant's consistency checks from its JSON numbers; problems as text."""
    thr = block["throughput"]
    tol = float(block["consistency"].get("tolerance", 0.25))
    checks = consistency_checks(block["stages"], float(block["wall_s"]) * 1000.0, block["decision_windows"],
                                int(block["decision_latency_ms"]["count"]), thr.get("events_with_latency"),
                                thr.get("decisions"), tol)
    problems = [f"check {c.name} fails on the recorded numbers: {c.detail}" for c in checks if not c.ok]
    recomputed = all(c.ok for c in checks)
    if recomputed != bool(block["consistency"]["ok"]):
        problems.append(f"consistency.ok is {block['consistency']['ok']} but the recorded numbers say {recomputed}")
    names = [c["name"] for c in block["consistency"]["checks"]]
    if names != [c.name for c in checks]:
        problems.append(f"consistency.checks {names} are not the checks {[c.name for c in checks]}")
    return problems


def validate_profile(doc: Mapping[str, Any]) -> list[str]:
    """Problems with a profile document (empty when it is well formed and its sums add up)."""
    problems: list[str] = []
    if doc.get("schema") != SCHEMA_ID:
        return [f"schema is {doc.get('schema')!r}, expected {SCHEMA_ID!r}"]
    try:
        import jsonschema
    except ImportError:
        jsonschema = None
    if jsonschema is not None:
        validator = jsonschema.Draft202012Validator(PROFILE_SCHEMA)
        problems += [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
                     for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))]
        if problems:
            return problems
    all_ok = True
    for v in doc.get("variants", []):
        block = v.get("pipeline")
        if block is None:
            continue
        found = recheck_pipeline(block)
        problems += [f"variant {v.get('label')!r}: {p}" for p in found]
        all_ok = all_ok and bool(block["consistency"]["ok"])
    if bool(doc.get("consistent")) != all_ok:
        problems.append(f"consistent is {doc.get('consistent')} but the variants' consistency says {all_ok}")
    return problems
