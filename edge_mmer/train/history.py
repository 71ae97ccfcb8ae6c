"""The training log: one JSON line per epoch of every network (and one per event: started, resumed,
stopped early), and the loss / accuracy curves drawn from it (the paper's Fig. 7).

The log is appended as the run goes (``train_log.jsonl`` in the checkpoint directory, so a resumed
run continues the same file), and copied with the curves into the bundle's ``reports/``. Only the
main rank writes it. Each epoch line holds the stage, the epoch (1-based) and the stage's epoch
count, the mean training loss, the validation accuracy, the best so far and its epoch, the learning
rate, the seconds the epoch took, the world size and the precision.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["TrainLog", "plot_curves", "read_log"]


class TrainLog:
    """Appends records to ``path`` (None: kept in memory only); ``records`` holds this process's."""

    def __init__(self, path: Path | None, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled
        self.records: list[dict[str, Any]] = []
        if path is not None and enabled:
            path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        row = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z", **record}
        self.records.append(row)
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row, allow_nan=False, default=float) + "\n")

    def event(self, name: str, **fields: Any) -> None:
        self.write({"event": name, **fields})

    def text(self) -> str:
        """The whole log as JSONL: the file (with earlier, resumed-from runs) when there is one."""
        if self.path is not None and self.path.is_file():
            return self.path.read_text(encoding="utf-8")
        return "".join(json.dumps(r, allow_nan=False, default=float) + "\n" for r in self.records)


def read_log(text: str) -> list[dict[str, Any]]:
    """The records of a JSONL log (a torn last line, from a killed run, is left out)."""
    out = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            out.append(row)
    return out


def _epochs(records: Sequence[dict[str, Any]]) -> dict[str, dict[int, dict[str, Any]]]:
    """Per stage, per epoch, the last record written (a resumed run may repeat an epoch)."""
    stages: dict[str, dict[int, dict[str, Any]]] = {}
    for r in records:
        if "epoch" in r and "stage" in r:
            stages.setdefault(str(r["stage"]), {})[int(r["epoch"])] = r
    return stages


def plot_curves(records: Sequence[dict[str, Any]], path: Path, title: str) -> Path | None:
    """Training loss and validation accuracy per epoch, one panel per network, the best epoch marked;
    a PNG at ``path``. None (nothing written) when the log has no epochs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = _epochs(records)
    if not stages:
        return None
    n = len(stages)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, (stage, epochs) in zip(axes.flat, stages.items(), strict=False):
        xs = sorted(epochs)
        loss = [epochs[e].get("loss") for e in xs]
        acc = [epochs[e].get("val_accuracy") for e in xs]
        ax.plot(xs, loss, color="tab:red", marker=".", label="training loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss", color="tab:red")
        ax.set_title(stage, fontsize=10)
        twin = ax.twinx()
        twin.plot(xs, acc, color="tab:blue", marker=".", label="validation accuracy")
        twin.set_ylim(0.0, 1.02)
        twin.set_ylabel("validation accuracy", color="tab:blue")
        best = epochs[xs[-1]].get("best_epoch")
        if isinstance(best, int) and best in epochs:
            twin.axvline(best, color="gray", linestyle=":", linewidth=1)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
