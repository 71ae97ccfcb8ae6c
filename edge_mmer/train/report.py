"""The metrics a training run records (``manifest.metrics`` and ``reports/metrics.json``) and their
text form, which ``edge-mmer train`` prints: the paper's Table 3 layout (accuracy per class and
channel), weighted F1, the chi-square ablation, the dataset's own protocol and its defects.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from edge_mmer.config import ModelConfig
from edge_mmer.datasets.base import DefectSummary, LoadedDataset
from edge_mmer.vocab import CHANNELS

if TYPE_CHECKING:
    from edge_mmer.train.back_end import BackEnd

log = logging.getLogger(__name__)

__all__ = ["build_metrics", "format_metrics", "split_description"]


def split_description(ds: LoadedDataset) -> str:
    """What the test split holds out, in words (``metrics.split``)."""
    if ds.kind == "synthetic":
        return "test (held-out speakers)"
    by = ds.info.get("split_by")
    if by == "actor":
        return "test (held-out actors)"
    if ds.kind == "meld":
        return "test (MELD's test split)"
    if ds.kind == "mosi":
        return f"test ({ds.info.get('splits', 'standard folds')})"
    return f"test (held out by {by})" if by else "test"


def build_metrics(cfg: ModelConfig, dataset_meta: dict[str, Any], counts: dict[str, int], back: BackEnd,
                  ablation: BackEnd | None, val_acc: dict[str, float], seconds: float) -> dict[str, Any]:
    metrics: dict[str, Any] = {
        "synthetic": bool(dataset_meta.get("synthetic", False)),
        "split": "test (held-out speakers)",
        "counts": dict(counts),
        "labels": list(cfg.labels),
        "fuzzy_integral": back.head.method,
        "keep_fraction": back.keep_fraction,
        "test": back.reports,
        "test_accuracy": {k: v["accuracy"] for k, v in back.reports.items()},
        "final_by_integral": back.by_integral,
        "validation_accuracy": {"svm": back.val_accuracy, "networks": val_acc},
        "train_seconds": round(seconds, 1),
    }
    if ablation is not None:
        metrics["without_chi_square"] = {
            "test_accuracy": {k: v["accuracy"] for k, v in ablation.reports.items()},
            "test_weighted_f1": {k: v.get("weighted_f1") for k, v in ablation.reports.items()},
            "final_by_integral": ablation.by_integral,
        }
    return metrics


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def format_metrics(metrics: dict[str, Any]) -> str:
    """The paper's Table 3 layout (accuracy per class and channel), weighted F1, the chi-square
    ablation, the dataset's own protocol and its defects."""
    labels = metrics["labels"]
    cols = [*CHANNELS, "final"]
    head = f"{'test accuracy (%)':<18}" + "".join(f"{c:>9}" for c in cols)
    lines = []
    if metrics.get("synthetic"):
        lines.append("NOTE: trained and tested on SYNTHETIC data (espeak-ng voices, rendered faces).")
    counts = metrics["counts"]
    lines.append(f"utterances: train {counts['train']}, val {counts['val']}, test {counts['test']} "
                 f"(test = {metrics['split'].removeprefix('test ').strip('()')}); "
                 f"final = {metrics['fuzzy_integral']} fuzzy integral")
    lines += [head, "-" * len(head)]
    for label in labels:
        row = [metrics["test"][c]["per_class"].get(label) for c in cols]
        lines.append(f"{label:<18}" + "".join(f"{_pct(v):>9}" for v in row))
    lines.append(f"{'all emotions':<18}" + "".join(f"{_pct(metrics['test_accuracy'][c]):>9}" for c in cols))
    if all("weighted_f1" in metrics["test"][c] for c in cols):
        lines.append(f"{'weighted F1':<18}" + "".join(f"{_pct(metrics['test'][c]['weighted_f1']):>9}" for c in cols))
    if "without_chi_square" in metrics:
        abl = metrics["without_chi_square"]["test_accuracy"]
        keep = metrics["keep_fraction"]
        with_chi = "".join(f"{_pct(metrics['test_accuracy'][c]):>9}" for c in cols)
        lines.append(f"{f'chi-square {keep:.0%}':<18}" + with_chi)
        lines.append(f"{'no chi-square':<18}" + "".join(f"{_pct(abl[c]):>9}" for c in cols))
    for split in ("validation", "test"):
        other = metrics["final_by_integral"][split]
        lines.append(f"final by integral ({split}): "
                     + ", ".join(f"{k.split('_')[1]} {100 * v:.1f} %" for k, v in other.items()))
    official = metrics.get("protocol", {}).get("official")
    if official:
        shown = ", ".join(f"{k} {_pct(v)}" for k, v in official.items() if k != "note")
        lines.append(f"official score ({metrics['protocol']['kind']}): {shown}"
                     + (f"  [{official['note']}]" if official.get("note") else ""))
    dataset = metrics.get("dataset")
    if dataset:
        summary = DefectSummary()
        summary.skipped.update(dataset["defects"]["skipped"])
        summary.handled.update(dataset["defects"]["handled"])
        lines.append(f"dataset {dataset['spec']}: {summary.format()}")
    if "extraction" in metrics:
        ex = metrics["extraction"]
        lines.append(f"front ends: {ex['decoded']} decoded, {ex['cached']} from the feature cache, "
                     f"{ex['failed']} skipped")
    return "\n".join(lines)
