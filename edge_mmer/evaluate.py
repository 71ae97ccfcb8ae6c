"""Metrics in the paper's layout and the datasets' own protocols; the ``evaluate`` command.

Torch-free at import (the runtime side imports the metric functions): :func:`evaluate_bundle`
imports the training stack when it runs.

* :func:`channel_report`: accuracy, weighted F1 (scikit-learn's ``average='weighted'``), per-class
  accuracy (recall: the paper's Table 3) and the confusion matrix, per channel;
* :func:`mosi_binary_report`: CMU-MOSI Acc-2 "Has0" (y >= 0 vs prediction positive) and "Non0"
  (y = 0 dropped, y > 0 vs prediction positive), each with its weighted F1. Acc-7, MAE and Pearson
  correlation need a model that predicts the score: this pipeline classifies, so they are not given;
* :func:`protocol_report`: the official score per dataset (MELD: weighted F1 of the final decision;
  MOSI: Acc-2 Has0 / Non0 and F1; otherwise accuracy and weighted F1);
* :func:`write_reports`: ``report.json``, ``report.md`` and ``confusion.png``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_mmer.errors import EvaluationError

log = logging.getLogger(__name__)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(K, K) counts, rows = true class, columns = predicted class."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def weighted_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float | None:
    """F1 per class weighted by its support (``precision_recall_fscore_support(average='weighted')``,
    an undefined precision or recall counting as 0); None for no samples."""
    if len(y_true) == 0:
        return None
    cm = confusion_matrix(y_true, y_pred, n_classes).astype(np.float64)
    tp = np.diag(cm)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return float((f1 * support).sum() / support.sum())


def channel_report(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, weighted F1, per-class accuracy (recall, the paper's Table 3) and the confusion matrix."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    cm = confusion_matrix(y_true, y_pred, len(labels))
    support = cm.sum(axis=1)
    per_class = {
        label: (float(cm[i, i] / support[i]) if support[i] else None) for i, label in enumerate(labels)
    }
    return {
        "n": len(y_true),
        "accuracy": float(np.mean(y_true == y_pred)) if len(y_true) else None,
        "weighted_f1": weighted_f1(y_true, y_pred, len(labels)),
        "per_class": per_class,
        "confusion": cm.tolist(),
    }


NO_REGRESSION = ("Acc-7, MAE and Corr need a model that predicts the sentiment score; this pipeline's LIBSVMs "
                 "classify polarity, so they are not reported")


def mosi_binary_report(scores: np.ndarray, pred_positive: np.ndarray) -> dict[str, Any]:
    """CMU-MOSI binary metrics from the annotated scores and the predicted polarity.

    Has0: truth ``score >= 0``, every segment. Non0: segments with ``score != 0``, truth ``score > 0``.
    A classifier's "predicted score" is its polarity, so ``ŷ >= 0`` and ``ŷ > 0`` are both "predicted
    positive". F1 is weighted over the two classes (the MMSA convention)."""
    y = np.asarray(scores, dtype=np.float64)
    p = np.asarray(pred_positive, dtype=bool)
    has0 = (y >= 0).astype(int)
    non0 = y != 0
    out: dict[str, Any] = {
        "n_has0": len(y),
        "acc2_has0": float(np.mean(has0 == p)) if len(y) else None,
        "f1_has0": weighted_f1(has0, p.astype(int), 2),
        "n_non0": int(non0.sum()),
        "acc2_non0": float(np.mean((y[non0] > 0) == p[non0])) if non0.any() else None,
        "f1_non0": weighted_f1((y[non0] > 0).astype(int), p[non0].astype(int), 2),
        "acc7": None,
        "mae": None,
        "corr": None,
        "note": NO_REGRESSION,
    }
    return out


def protocol_report(kind: str, task: str, labels: Sequence[str], y_true: np.ndarray,
                    predictions: dict[str, np.ndarray], scores: np.ndarray | None = None) -> dict[str, Any]:
    """The dataset's own scoring, per channel (``predictions[channel]``: class per utterance, -1 where
    the channel is absent) and ``official`` for the final decision."""
    y = np.asarray(y_true)
    out: dict[str, Any] = {"kind": kind, "task": task, "channels": {}}
    for name, pred in predictions.items():
        pred = np.asarray(pred)
        keep = pred >= 0
        entry: dict[str, Any] = {"n": int(keep.sum()),
                                 "accuracy": float(np.mean(pred[keep] == y[keep])) if keep.any() else None,
                                 "weighted_f1": weighted_f1(y[keep], pred[keep], len(labels))}
        if task == "sentiment-binary" and scores is not None:
            entry.update(mosi_binary_report(np.asarray(scores)[keep], pred[keep] == list(labels).index("positive")))
        out["channels"][name] = entry
    final = out["channels"].get("final", {})
    if task == "sentiment-binary":
        out["official"] = {k: final.get(k) for k in ("acc2_has0", "f1_has0", "acc2_non0", "f1_non0")}
        out["official"]["note"] = NO_REGRESSION
    elif kind == "meld":
        out["official"] = {"weighted_f1": final.get("weighted_f1"), "accuracy": final.get("accuracy"),
                           "note": "MELD's official score is the weighted F1 on the test split"}
    else:
        out["official"] = {"accuracy": final.get("accuracy"), "weighted_f1": final.get("weighted_f1")}
    return out


def per_class_recall(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Recall per class; a class absent from ``y_true`` gets the overall accuracy."""
    cm = confusion_matrix(y_true, y_pred, n_classes)
    support = cm.sum(axis=1)
    overall = float(np.mean(np.asarray(y_true) == np.asarray(y_pred))) if len(y_true) else 0.5
    return np.array([cm[i, i] / support[i] if support[i] else overall for i in range(n_classes)], dtype=np.float64)


def plot_confusions(reports: dict[str, dict[str, Any]], labels: Sequence[str], path: Path, title: str) -> Path:
    """One confusion-matrix panel per channel, row-normalised, counts written in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(reports)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 4.4), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        cm = np.asarray(reports[name]["confusion"], dtype=np.float64)
        norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
        acc = reports[name]["accuracy"]
        ax.set_title(f"{name}: {100 * float(acc):.1f} %" if acc is not None else name, fontsize=10)
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(labels)), labels if ax is axes[0][0] else [""] * len(labels), fontsize=8)
        for i in range(len(labels)):
            for j in range(len(labels)):
                if cm[i, j]:
                    ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black")
        ax.set_xlabel("predicted", fontsize=8)
    axes[0][0].set_ylabel("true", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.94))  # room for the suptitle
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------- the command


@dataclass(frozen=True)
class EvaluateOptions:
    """``dataset``: a ``KIND:PATH[?options]`` spec or a synthetic directory; ``ablation``: retrain the
    back end without chi-square on the dataset's train / validation splits (the paper's Fig. 8; needs
    ``split='test'``); otherwise the bundle's own training-time ablation is quoted, labelled as such."""

    bundle: Path
    dataset: str | Path
    out: Path | None = None
    split: str = "test"
    workers: int = 1
    cache_dir: Path | None = None
    device: str = "cpu"
    ablation: bool = False
    epochs_scale: float = 1.0
    seed: int = 0
    progress: bool = True


@dataclass
class EvaluationResult:
    report: dict[str, Any]
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)


def default_eval_dir(bundle: Path, kind: str, split: str) -> Path:
    return bundle.parent / f"{bundle.name}.eval" / f"{kind}-{split}"


def evaluate_bundle(opts: EvaluateOptions) -> EvaluationResult:
    """Run a bundle over a dataset split the way training measured its test split (torch networks
    from the bundle, its masks, LIBSVMs and fuzzy integral; sessions in order, the context carried),
    and write ``report.json``, ``report.md`` and ``confusion.png``. Training side: imports torch."""
    import torch

    from edge_mmer import train as T
    from edge_mmer.bundle import read_bundle
    from edge_mmer.datasets.base import SPLITS, check_split
    from edge_mmer.decision import DecisionHead
    from edge_mmer.models.from_bundle import load_torch_networks

    check_split(opts.split)
    if opts.ablation and opts.split != "test":
        raise EvaluationError("the chi-square ablation retrains the back end on train/val and reports the test split: "
                              "use it with split 'test'")
    bundle = read_bundle(opts.bundle)
    cfg = bundle.config
    ds = T.load_dataset(opts.dataset)
    if tuple(ds.labels) != tuple(bundle.labels):
        raise EvaluationError(f"dataset {ds.spec} has labels {list(ds.labels)}, the bundle {opts.bundle} "
                              f"{list(bundle.labels)}: evaluate a bundle on the dataset (and target) it was trained for")
    device = T._device(opts.device)
    nets = {k: v.to(device) for k, v in load_torch_networks(bundle).items()}
    splits = list(SPLITS) if opts.ablation else [opts.split]
    topts = T.TrainOptions(dataset=opts.dataset, out=Path("."), seed=opts.seed, device=opts.device,
                           epochs_scale=opts.epochs_scale, progress=opts.progress, workers=opts.workers,
                           cache_dir=opts.cache_dir)
    enc: dict[str, T.Features] = {}
    labels: dict[str, list[list[int]]] = {}
    uids: dict[str, list[list[str]]] = {}
    stats = None
    if "speech_encoder" in nets:
        if ds.features_only:
            raise EvaluationError(f"bundle {opts.bundle} runs on media (it has encoders); dataset {ds.spec} holds "
                                  "precomputed features")
        data, stats = T.prepare_data(ds, cfg, topts, splits)
        for split in splits:
            f = T.Features()
            for session in T._progress(data[split], f"encode ({split})", opts.progress):
                f.speech.append(list(T.speech_features(nets["speech_encoder"], session, device)))  # type: ignore[arg-type]
                with_face = [u for u in session if u.faces is not None]
                embs = iter(T.face_embeddings(nets["face_encoder"], with_face, cfg.face, device))  # type: ignore[arg-type]
                f.face.append([next(embs) if u.faces is not None else None for u in session])
            enc[split] = f
            labels[split] = [[u.label for u in s] for s in data[split]]
            uids[split] = [[u.uid for u in s] for s in data[split]]
    else:
        if not ds.features_only:
            raise EvaluationError(f"bundle {opts.bundle} was trained on precomputed features (no encoders); dataset "
                                  f"{ds.spec} holds media")
        norm = {}
        for m in ("speech", "face"):
            spec = bundle.networks[f"{m}_context"].get("input") or {}
            if "mean" not in spec or "std" not in spec:
                raise EvaluationError(f"{opts.bundle}: manifest.json field 'networks.{m}_context.input' lacks the "
                                      "standardisation (mean, std) of its precomputed features")
            norm[m] = (np.asarray(spec["mean"], np.float32), np.asarray(spec["std"], np.float32))
        for split in splits:
            f = T.Features()
            sessions = ds.sessions(split)
            for s in sessions:
                f.speech.append([((u.speech - norm["speech"][0]) / norm["speech"][1]).astype(np.float32) for u in s])
                f.face.append([None if u.face is None else ((u.face - norm["face"][0]) / norm["face"][1]).astype(
                    np.float32) for u in s])
            enc[split] = f
            labels[split] = [[u.label_index for u in s] for s in sessions]
            uids[split] = [[u.id for u in s] for s in sessions]
    if not labels[opts.split]:
        raise EvaluationError(f"dataset {ds.spec} has no usable '{opts.split}' utterances ({ds.summary.format()})")
    ctx = {split: T.Features() for split in splits}
    for m in ("speech", "face"):
        for split in splits:
            setattr(ctx[split], m, T.run_sequences(nets[f"{m}_context"], getattr(enc[split], m), device))  # type: ignore[arg-type]
    head = DecisionHead.from_bundle(bundle)
    split = opts.split
    masked = {m: [[None if v is None else head.mask(m, v) for v in s] for s in getattr(ctx[split], m)]
              for m in ("speech", "face")}
    joint = [[None if f is None else np.concatenate([a, f]).astype(np.float32) for a, f in zip(ss, fs, strict=True)]
             for ss, fs in zip(masked["speech"], masked["face"], strict=True)]
    fused = T.run_sequences(nets["fusion"], joint, device)  # type: ignore[arg-type]
    channel_feats = {"speech": masked["speech"], "face": masked["face"], "fused": fused}
    reports, extra, preds = T.evaluate_split(head, channel_feats, labels[split], cfg)
    by_id = {u.id: u for u in ds.utterances(split)}
    flat_ids = [uid for s in uids[split] for uid in s]
    scores = np.array([getattr(by_id[u], "score", None) or 0.0 for u in flat_ids], dtype=np.float64)
    y = np.array([lab for s in labels[split] for lab in s])
    protocol = protocol_report(ds.kind, ds.task, cfg.labels, y, preds,
                               scores if ds.task == "sentiment-binary" else None)
    chi: dict[str, Any] = {"keep_fraction": float(cfg.selection.keep_fraction),
                           "with": {k: {"accuracy": v["accuracy"], "weighted_f1": v["weighted_f1"]}
                                    for k, v in reports.items()}}
    if opts.ablation:
        torch.manual_seed(opts.seed)
        rng = np.random.default_rng(opts.seed)
        abl = T.fit_back_end(ctx, labels, cfg, 1.0, topts, device, rng)
        chi["without"] = {"source": f"back end retrained keeping all features on {ds.spec} train/val",
                          **{k: {"accuracy": v["accuracy"], "weighted_f1": v["weighted_f1"]} for k, v in abl.reports.items()}}
    else:
        trained = bundle.metrics.get("without_chi_square")
        if trained:
            chi["without"] = {"source": "the bundle's training run, on its own test split (not this evaluation); "
                                        "rerun with --ablation to measure it here",
                              **{k: {"accuracy": v, "weighted_f1": trained.get("test_weighted_f1", {}).get(k)}
                                 for k, v in trained["test_accuracy"].items()}}
    report: dict[str, Any] = {
        "bundle": str(opts.bundle),
        "model_id": bundle.model_id,
        "synthetic_model": bool(bundle.synthetic),
        "dataset": ds.describe(),
        "split": split,
        "n": len(y),
        "labels": list(cfg.labels),
        "fuzzy_integral": head.method,
        "channels": reports,
        "final_by_integral": extra,
        "protocol": protocol,
        "chi_square": chi,
        "extraction": stats.to_json() if stats is not None else None,
        "channel_names": {"speech": "speech SVM", "face": "face SVM", "fused": "fused SVM (multimodal)",
                          "final": "fuzzy integral over the three"},
    }
    out_dir = opts.out or default_eval_dir(opts.bundle, ds.kind, split)
    files = write_reports(report, out_dir)
    return EvaluationResult(report=report, out_dir=out_dir, files=files)


def write_reports(report: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """``report.json``, ``report.md`` and ``confusion.png`` in ``out_dir``."""
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"json": out_dir / "report.json", "markdown": out_dir / "report.md", "png": out_dir / "confusion.png"}
    files["json"].write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    title = f"{report['model_id']} on {report['dataset']['spec']} ({report['split']})"
    plot_confusions(report["channels"], report["labels"], files["png"], title)
    files["markdown"].write_text(format_report(report) + "\n", encoding="utf-8")
    return files


def _p(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def format_report(report: dict[str, Any]) -> str:
    """Markdown: the paper's Table 3 layout, weighted F1, the chi-square comparison (its Fig. 8),
    the dataset's official score, MOSI's Acc-2 both ways, and the dataset's defects."""
    cols = ["speech", "face", "fused", "final"]
    ch = report["channels"]
    ds = report["dataset"]
    lines = [f"# Evaluation: {report['model_id']}", ""]
    if report.get("synthetic_model"):
        lines += ["> The model was trained on SYNTHETIC data.", ""]
    lines += [f"Dataset `{ds['spec']}` ({ds['kind']}, task {ds['task']}), split **{report['split']}**: "
              f"{report['n']} utterances. Final decision: {report['fuzzy_integral']} fuzzy integral over the speech, "
              "face and fused LIBSVMs. A channel is scored over the utterances where it is present "
              "(no face found: no face channel).", "",
              "## Accuracy per class (%) — the paper's Table 3 layout", "",
              "| class | speech SVM | face SVM | fused SVM | final (fuzzy integral) |", "|---|---|---|---|---|"]
    for label in report["labels"]:
        lines.append(f"| {label} | " + " | ".join(_p(ch[c]["per_class"].get(label)) for c in cols) + " |")
    lines.append("| **all** | " + " | ".join(_p(ch[c]["accuracy"]) for c in cols) + " |")
    lines.append("| weighted F1 | " + " | ".join(_p(ch[c]["weighted_f1"]) for c in cols) + " |")
    lines.append("| utterances scored | " + " | ".join(str(ch[c]["n"]) for c in cols) + " |")
    chi = report["chi_square"]
    lines += ["", "## With vs without chi-square selection (the paper's Fig. 8), accuracy / weighted F1 (%)", "",
              "| | speech SVM | face SVM | fused SVM | final |", "|---|---|---|---|---|",
              f"| with chi-square (top {chi['keep_fraction']:.0%}) | "
              + " | ".join(f"{_p(chi['with'][c]['accuracy'])} / {_p(chi['with'][c]['weighted_f1'])}" for c in cols) + " |"]
    if "without" in chi:
        w = chi["without"]
        lines.append("| without chi-square | " + " | ".join(
            f"{_p(w.get(c, {}).get('accuracy'))} / {_p(w.get(c, {}).get('weighted_f1'))}" for c in cols) + " |")
        lines += ["", f"Without chi-square: {w['source']}."]
    else:
        lines += ["", "Without chi-square: not measured (run `edge-mmer evaluate --ablation`)."]
    proto = report["protocol"]
    off = proto.get("official", {})
    lines += ["", "## Official score", ""]
    if proto["task"] == "sentiment-binary":
        lines += ["| channel | Acc-2 Has0 | F1 Has0 | Acc-2 Non0 | F1 Non0 |", "|---|---|---|---|---|"]
        for c in cols:
            e = proto["channels"].get(c, {})
            lines.append(f"| {c} | {_p(e.get('acc2_has0'))} | {_p(e.get('f1_has0'))} | {_p(e.get('acc2_non0'))} | "
                         f"{_p(e.get('f1_non0'))} |")
        lines += ["", "Has0: truth score >= 0 vs predicted positive, all segments. Non0: segments with score 0 "
                  "dropped, truth score > 0. F1 weighted over the two classes.", "", f"{off.get('note', '')}."]
    elif proto["kind"] == "meld":
        lines += [f"MELD weighted F1 (final decision): **{_p(off.get('weighted_f1'))}**, accuracy "
                  f"{_p(off.get('accuracy'))}." + ("" if report["split"] == "test" else
                                                    " (MELD's official score is defined on the test split.)")]
    else:
        lines += [f"Accuracy {_p(off.get('accuracy'))}, weighted F1 {_p(off.get('weighted_f1'))} (final decision)."]
    lines += ["", "## Dataset", "", f"Utterances per split: {ds['utterances']}; sessions: {ds['sessions']}.", ""]
    defects = ds["defects"]
    if defects["skipped"] or defects["handled"]:
        lines += ["| defect | skipped | handled | examples |", "|---|---|---|---|"]
        for k in sorted(set(defects["skipped"]) | set(defects["handled"])):
            ex = ", ".join(defects["examples"].get(k, [])[:3])
            lines.append(f"| {k} | {defects['skipped'].get(k, '')} | {defects['handled'].get(k, '')} | {ex} |")
    else:
        lines.append("No defects found.")
    if report.get("extraction"):
        ex = report["extraction"]
        lines += ["", f"Front ends: {ex['decoded']} utterances decoded, {ex['cached']} from the feature cache, "
                  f"{ex['failed']} skipped."]
    lines += ["", "Confusion matrices: `confusion.png` (rows: true class, row-normalised)."]
    return "\n".join(lines)
