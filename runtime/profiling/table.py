"""Plain-text and Markdown tables of per-stage statistics: one formatter for the profiler's console
output, its ``profile.md`` and the running loop's periodic stats log line.

A stage row is a mapping with ``count``, ``mean``, ``p50``, ``p90``, ``p95``, ``p99``, ``max`` (milliseconds)
and optionally ``total_ms`` / ``lifetime_count`` / ``lifetime_total_ms`` — what
:func:`edge_mmer.runtime.stats.summarise_ms`, :meth:`RuntimeStats.snapshot` and
:func:`edge_mmer.runtime.profiling.analysis.stage_summaries` produce.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edge_mmer.runtime.stats import STAGES

COLUMNS = ("count", "mean", "p50", "p90", "p95", "p99", "max", "total")


def _ordered(stages: Mapping[str, Any]) -> list[str]:
    """Pipeline order, a nested stage right after its parent, unknown stages last."""
    names = [s for s in STAGES if s in stages] + sorted(s for s in stages if s not in STAGES)
    nested = {n: str(stages[n].get("nested_in")) for n in names if stages[n].get("nested_in") in stages}
    out: list[str] = []
    for n in names:
        if n in nested:
            continue
        out.append(n)
        out += [k for k in names if nested.get(k) == n]
    return out


def _total(row: Mapping[str, Any]) -> float | None:
    for key in ("total_ms", "lifetime_total_ms"):
        if row.get(key) is not None:
            return float(row[key])
    return None


def _cells(name: str, row: Mapping[str, Any], indent: str) -> list[str]:
    nested = row.get("nested_in")
    label = f"{indent}{name}" if nested else name
    count = row.get("count", 0)
    total = _total(row)
    cells = [f"{float(row.get(k, 0.0)):.3f}" for k in ("mean", "p50", "p90", "p95", "p99", "max")]
    return [label, str(int(count)), *cells, "" if total is None else f"{total:.1f}"]


def stage_rows(stages: Mapping[str, Mapping[str, Any]], extra: Mapping[str, Mapping[str, Any]] | None = None,
               indent: str = "  ") -> list[list[str]]:
    """Rows (stage name, count, mean, p50, p90, p99, max, total ms), pipeline order; ``extra`` rows last."""
    rows = [_cells(name, stages[name], indent) for name in _ordered(stages)]
    rows += [_cells(name, row, indent) for name, row in (extra or {}).items()]
    return rows


def format_text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths,
                                                                                                        strict=False)))
             for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _numeric(cell: str) -> bool:
    try:
        float(cell.strip().rstrip("x"))
    except ValueError:
        return False
    return True


def format_markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table; columns whose cells are all numbers (or empty) are right-aligned."""
    right = [i > 0 and all(_numeric(str(r[i])) or not str(r[i]).strip() for r in rows if i < len(r))
             for i in range(len(header))]
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if r else "---" for r in right) + "|"]
    out += ["| " + " | ".join(str(c).strip() for c in r) + " |" for r in rows]
    return "\n".join(out)


STAGE_HEADER = ("stage (ms)", "count", "mean", "p50", "p90", "p95", "p99", "max", "total")


def format_stage_table(stages: Mapping[str, Mapping[str, Any]], extra: Mapping[str, Mapping[str, Any]] | None = None,
                       markdown: bool = False) -> str:
    """Per-stage statistics as an aligned text table (or Markdown). Works on ``RuntimeStats.snapshot()["stages"]``
    (the running loop's periodic stats): ``decision_latency`` there is shown last."""
    stages = dict(stages)
    tail = dict(extra or {})
    if "decision_latency" in stages:
        tail = {"decision_latency": stages.pop("decision_latency"), **tail}
    rows = stage_rows(stages, tail)
    return format_markdown_table(STAGE_HEADER, rows) if markdown else format_text_table(STAGE_HEADER, rows)
