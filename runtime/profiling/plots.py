"""PNG plots of a profile (matplotlib, optional: without it the profile says so and writes none).

* ``stages.png`` — per-stage latency distribution (box plots, log scale), every variant side by side;
* ``timeline-<variant>.png`` — one pass: which stage ran when (a row per stage, the decision-latency
  windows on their own row), the whole pass above and its slowest decision zoomed in below;
* ``micro.png`` — micro mode: per-network latency distribution per variant.

Only :class:`matplotlib.figure.Figure` is used (no pyplot, no GUI backend, no global state).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_mmer.runtime.stats import STAGES

from .tracing import Span

log = logging.getLogger(__name__)

MATPLOTLIB_MISSING = "plots skipped: matplotlib is not installed (pip install matplotlib)"
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


@dataclass
class PlotData:
    """What the plots of one variant need (durations in seconds, spans on the perf_counter clock)."""

    label: str
    durations: dict[str, list[float]] = field(default_factory=dict)  # stage -> every duration
    timeline: list[Span] = field(default_factory=list)  # one pass
    timeline_start: float = 0.0
    timeline_end: float = 0.0
    micro: dict[str, list[float]] = field(default_factory=dict)  # network -> timed runs


def slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-") or "variant"


def _figure(**kw: Any) -> Any:
    from matplotlib.figure import Figure

    return Figure(**kw)


def _hboxplot(ax: Any, data: Any, **kw: Any) -> Any:
    """Horizontal box plots: ``orientation`` (matplotlib >= 3.10), else ``vert=False`` (older, e.g. JetPack's)."""
    try:
        return ax.boxplot(data, orientation="horizontal", **kw)
    except TypeError:
        return ax.boxplot(data, vert=False, **kw)


def _boxplots(groups: Sequence[str], data: Sequence[PlotData], values: Any, title: str, path: Path) -> Path:
    n = len(data)
    fig = _figure(figsize=(9, 0.45 * len(groups) * max(1, n) + 1.5), layout="constrained")
    ax = fig.add_subplot()
    height = 0.8 / n
    handles = []
    for i, d in enumerate(data):
        rows = [(j, [v * 1000.0 for v in values(d, g)]) for j, g in enumerate(groups)]
        rows = [(j, v) for j, v in rows if v]
        if not rows:
            continue
        pos = [len(groups) - 1 - j + (n - 1 - i - (n - 1) / 2) * height for j, _ in rows]
        bp = _hboxplot(ax, [v for _, v in rows], positions=pos, widths=height * 0.9, patch_artist=True,
                       showfliers=True, flierprops={"markersize": 2, "alpha": 0.4})
        for box in bp["boxes"]:
            box.set_facecolor(_COLORS[i % len(_COLORS)])
            box.set_alpha(0.6)
        handles.append((bp["boxes"][0], d.label))
    ax.set_yticks(range(len(groups)), list(reversed(groups)))
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_title(title)
    ax.grid(axis="x", which="both", alpha=0.3)
    if n > 1:
        ax.legend([h for h, _ in handles], [lab for _, lab in handles], loc="lower right")
    fig.savefig(path, dpi=110)
    return path


def _timeline_rows(spans: Sequence[Span]) -> list[str]:
    present = {s.stage for s in spans}
    return [s for s in STAGES if s in present] + sorted(present - set(STAGES) - {"decision_latency"}) + (
        ["decision_latency"] if "decision_latency" in present else [])


def _draw_timeline(ax: Any, spans: Sequence[Span], rows: list[str], t0: float, lo: float, hi: float) -> None:
    min_ms = (hi - lo) * 1000.0 / 1500.0  # a stage shorter than a pixel still shows
    for k, row in enumerate(rows):
        bars = [((s.start - t0) * 1000.0, max(s.duration * 1000.0, min_ms)) for s in spans
                if s.stage == row and s.end >= lo and s.start <= hi]
        if bars:
            ax.broken_barh(bars, (len(rows) - 1 - k - 0.4, 0.8), color=_COLORS[k % len(_COLORS)],
                           alpha=0.35 if row == "decision_latency" else 0.85, linewidth=0)
    ax.set_yticks(range(len(rows)), list(reversed(rows)))
    ax.set_xlim((lo - t0) * 1000.0, (hi - t0) * 1000.0)
    ax.set_xlabel("ms since the start of the pass")
    ax.grid(axis="x", alpha=0.3)


def _timeline(d: PlotData, path: Path) -> Path:
    spans = [s for s in d.timeline if s.end >= d.timeline_start and s.start <= d.timeline_end]
    rows = _timeline_rows(spans)
    windows = [s for s in spans if s.stage == "decision_latency"]
    fig = _figure(figsize=(11, 0.32 * len(rows) * (2 if windows else 1) + 2), layout="constrained")
    ax = fig.add_subplot(2 if windows else 1, 1, 1)
    _draw_timeline(ax, spans, rows, d.timeline_start, d.timeline_start, d.timeline_end)
    ax.set_title(f"{d.label}: one pass, {(d.timeline_end - d.timeline_start):.2f} s wall")
    if windows:
        worst = max(windows, key=lambda s: s.duration)
        margin = max(worst.duration * 0.15, 0.5e-3)
        ax2 = fig.add_subplot(2, 1, 2)
        _draw_timeline(ax2, spans, rows, d.timeline_start, worst.start - margin, worst.end + margin)
        ax2.set_title("slowest decision: "
                      f"{worst.duration * 1000.0:.2f} ms from the VAD's end-of-utterance to the event")
    fig.savefig(path, dpi=110)
    return path


def write_plots(out_dir: Path, data: Sequence[PlotData]) -> tuple[list[Path], str | None]:
    """Write the plots for ``data`` (one entry per variant) into ``out_dir``; (paths, note when skipped)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return [], MATPLOTLIB_MISSING
    paths: list[Path] = []
    stage_names = [s for s in [*STAGES, "decision_latency"] if any(d.durations.get(s) for d in data)]
    if stage_names:
        paths.append(_boxplots(stage_names, data, lambda d, g: d.durations.get(g, []),
                               "per-stage latency distribution", out_dir / "stages.png"))
    for d in data:
        if d.timeline:
            paths.append(_timeline(d, out_dir / f"timeline-{slug(d.label)}.png"))
    nets: list[str] = []
    for d in data:
        nets += [n for n in d.micro if n not in nets]
    if nets:
        paths.append(_boxplots(nets, data, lambda d, g: d.micro.get(g, []), "per-network latency (micro mode)",
                               out_dir / "micro.png"))
    return paths, None


def plot_data_from(label: str, durations: Mapping[str, list[float]], spans: Sequence[Span], start: float, end: float,
                   micro: Mapping[str, list[float]] | None = None) -> PlotData:
    return PlotData(label, dict(durations), [s for s in spans if s.end >= start and s.start <= end], start, end,
                    dict(micro or {}))
