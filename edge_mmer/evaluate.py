"""The ``evaluate`` command: a bundle over a dataset split, scored the way training scored its test
split, into ``report.json``, ``report.md`` and ``confusion.png``.

Each utterance is decided by :func:`edge_mmer.networks.decide_utterance` over the bundle's torch
networks behind the runner contract (:func:`edge_mmer.models.torch_runner.torch_runners`): the
sessions in order, every recurrent state reset at a session's start (training's sequences start
from zero state too). So the figures measure the decision path the device runs. A bundle trained
on precomputed features (CMU-MOSI ``.csd`` files, MMSA / MulT pickles) has no encoders: its
utterances start from the dataset's standardised feature vectors and go through the same step
graphs, masks, LIBSVMs and fuzzy integral (:func:`feature_channels`, kept here, explicit, because
:class:`~edge_mmer.networks.Networks` is the five-network set of a deployable bundle).

``--ablation`` retrains the back end without chi-square on the dataset's train and validation
splits: that is training, so it takes its inputs the way training does (:mod:`edge_mmer.train`).

The metrics themselves are :mod:`edge_mmer.metrics` (re-exported here). Torch-free at import:
:func:`evaluate_bundle` imports the training stack when it runs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_mmer.bundle import read_bundle
from edge_mmer.datasets.base import check_split
from edge_mmer.datasets.labelmap import relabel, shared_labels
from edge_mmer.decision import DecisionHead
from edge_mmer.errors import EvaluationError
from edge_mmer.metrics import (
    NO_REGRESSION,
    channel_report,
    confusion_matrix,
    mosi_binary_report,
    per_class_recall,
    plot_confusions,
    protocol_report,
    weighted_f1,
)
from edge_mmer.networks import Networks, StepLSTM, bundle_modalities, decide, decide_utterance
from edge_mmer.vocab import MODALITIES, SPLITS

if TYPE_CHECKING:
    import torch

    from edge_mmer.bundle.views import NetworkSpec
    from edge_mmer.config import FaceConfig, ModelConfig
    from edge_mmer.datasets.base import LoadedDataset
    from edge_mmer.decision import Decision
    from edge_mmer.runner import Runner
    from edge_mmer.train import TrainOptions

log = logging.getLogger(__name__)

__all__ = [
    "NO_REGRESSION",
    "EvaluateOptions",
    "EvaluationError",
    "EvaluationResult",
    "channel_report",
    "confusion_matrix",
    "default_eval_dir",
    "evaluate_bundle",
    "feature_channels",
    "format_report",
    "mosi_binary_report",
    "per_class_recall",
    "plot_confusions",
    "protocol_report",
    "weighted_f1",
    "write_reports",
]


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


@dataclass
class _SplitInputs:
    """One split's utterances as the networks take them, sessions in order: the front ends' output
    (a bundle with encoders) or the standardised pooled feature vectors (one without)."""

    labels: list[list[int]]
    uids: list[list[str]]
    media: list[list[Any]] | None = None  # sessions of edge_mmer.datasets.frontend.UtteranceInput
    speech: list[list[np.ndarray]] = field(default_factory=list)  # feature bundles: per session, per utterance
    face: list[list[np.ndarray | None]] = field(default_factory=list)


def feature_channels(speech_context: StepLSTM, face_context: StepLSTM, fusion: StepLSTM, head: DecisionHead,
                     speech: np.ndarray, face: np.ndarray | None) -> dict[str, np.ndarray | None]:
    """A precomputed-feature utterance's channel inputs: what
    :func:`~edge_mmer.networks.utterance_channels` computes after the encoders (context steps, the
    chi-square masks, the fusion step), from the pooled vectors. No face vector: no face channel,
    and the face context and the fusion do not step."""
    speech_m = head.mask("speech", speech_context.step(speech))
    face_m = None if face is None else head.mask("face", face_context.step(face))
    fused = None if face_m is None else fusion.step(np.concatenate([speech_m, face_m]).astype(np.float32))
    return {"speech": speech_m, "face": face_m, "fused": fused}


def _decide(runners: dict[str, Runner], head: DecisionHead, face_cfg: FaceConfig, inputs: _SplitInputs, desc: str,
            progress: bool) -> list[Decision]:
    """Every utterance's decision, sessions in order, the recurrent states reset at each session's start."""
    from edge_mmer.train import progress as progress_bar

    out: list[Decision] = []
    for r in runners.values():
        r.activate()
    try:
        if inputs.media is not None:
            nets = Networks(runners)
            for session in progress_bar(inputs.media, desc, progress):
                nets.reset_states()
                for u in session:
                    crops = None if u.faces is None else list(u.faces)
                    out.append(decide_utterance(nets, head, face_cfg, u.mel, crops))
        else:
            steps = (StepLSTM(runners["speech_context"]), StepLSTM(runners["face_context"]),
                     StepLSTM(runners["fusion"]))
            for speech, face in progress_bar(list(zip(inputs.speech, inputs.face, strict=True)), desc, progress):
                for step in steps:
                    step.reset_states()
                for s_vec, f_vec in zip(speech, face, strict=True):
                    out.append(decide(head, feature_channels(*steps, head, s_vec, f_vec)))
    finally:
        for r in runners.values():
            r.deactivate()
    return out


def _feature_split_inputs(bundle_path: Path, networks: Mapping[str, NetworkSpec], ds: LoadedDataset,
                          splits: list[str]) -> dict[str, _SplitInputs]:
    """A feature dataset's splits, standardised with the bundle's own (training-time) statistics."""
    from edge_mmer.train import standardise

    norm = {}
    for m in MODALITIES:
        spec = networks[f"{m}_context"].extra("input") or {}
        if "mean" not in spec or "std" not in spec:
            raise EvaluationError(f"{bundle_path}: manifest.json field 'networks.{m}_context.input' lacks the "
                                  "standardisation (mean, std) of its precomputed features")
        norm[m] = (np.asarray(spec["mean"], np.float32), np.asarray(spec["std"], np.float32))
    out = {}
    for split in splits:
        sessions = ds.sessions(split)
        inputs = _SplitInputs(labels=[[u.label_index for u in s] for s in sessions],
                              uids=[[u.id for u in s] for s in sessions])
        for s in sessions:
            inputs.speech.append([standardise(u.speech, *norm["speech"]) for u in s])  # type: ignore[misc]  # never absent
            inputs.face.append([standardise(u.face, *norm["face"]) for u in s])
        out[split] = inputs
    return out


def _ablation(runners: dict[str, Runner], inputs: dict[str, _SplitInputs], opts: EvaluateOptions,
              topts: TrainOptions, cfg: ModelConfig, device: torch.device, source: str) -> dict[str, Any]:
    """The back end retrained keeping every feature, on this dataset's train / validation context
    features (computed as training computes them), scored on its test split."""
    import torch

    from edge_mmer import train as T
    from edge_mmer.models import ContextLSTM, FaceEncoder, SpeechEncoder
    from edge_mmer.models.torch_runner import TorchRunner

    modules = {n: r.module for n, r in runners.items() if isinstance(r, TorchRunner)}
    for module in modules.values():
        module.to(device).eval()
    if inputs["train"].media is not None:
        speech, face = modules["speech_encoder"], modules["face_encoder"]
        assert isinstance(speech, SpeechEncoder) and isinstance(face, FaceEncoder)
        data = {split: inputs[split].media or [] for split in SPLITS}
        enc = T.encode(data, speech, face, cfg, device, opts.progress)
    else:
        enc = {split: T.Features(speech=[list(s) for s in inputs[split].speech], face=inputs[split].face)
               for split in SPLITS}
    ctx = {split: T.Features() for split in SPLITS}
    for m in MODALITIES:
        net = modules[f"{m}_context"]
        assert isinstance(net, ContextLSTM)
        for split in SPLITS:
            setattr(ctx[split], m, T.run_sequences(net, getattr(enc[split], m), device))
    torch.manual_seed(opts.seed)
    rng = np.random.default_rng(opts.seed)
    abl = T.fit_back_end(ctx, {split: inputs[split].labels for split in SPLITS}, cfg, 1.0, topts,
                         T.FitContext(device=device), rng)
    return {"source": source,
            **{k: {"accuracy": v["accuracy"], "weighted_f1": v["weighted_f1"]} for k, v in abl.reports.items()}}


def evaluate_bundle(opts: EvaluateOptions) -> EvaluationResult:
    """Run a bundle over a dataset split through the one decision path (see the module docstring)
    and write ``report.json``, ``report.md`` and ``confusion.png``. Training side: imports torch.
    Raises :class:`EvaluationError` (bundle and dataset do not go together),
    :class:`~edge_mmer.errors.DatasetError`, :class:`~edge_mmer.errors.BundleError` and
    :class:`~edge_mmer.errors.TrainError` (no such device)."""
    from edge_mmer import train as T
    from edge_mmer.models.torch_runner import torch_runners

    check_split(opts.split)
    if opts.ablation and opts.split != "test":
        raise EvaluationError("the chi-square ablation retrains the back end on train/val and reports the test split: "
                              "use it with split 'test'")
    bundle = read_bundle(opts.bundle)
    cfg = bundle.config
    present = bundle_modalities(bundle.network_specs)
    if present != MODALITIES:
        raise EvaluationError(f"{opts.bundle}: a single-modality bundle ({', '.join(present)} only): evaluate "
                              "scores speech + face bundles; its test-split figures are in its "
                              "reports/metrics.json, and edge-mmer run takes it as it is")
    ds = T.load_dataset(opts.dataset)
    if tuple(ds.labels) != tuple(bundle.labels):
        shared = shared_labels(ds.labels, bundle.labels)
        if not shared:
            raise EvaluationError(f"dataset {ds.spec} has labels {list(ds.labels)}, the bundle {opts.bundle} "
                                  f"{list(bundle.labels)}: no class in common (map the dataset's labels with "
                                  "?map=OLD:NEW, or evaluate on the dataset and target the bundle was trained for)")
        log.warning("cross-corpus: dataset %s has labels %s, the bundle %s: scored over the shared classes %s "
                    "(the dataset's other utterances left out)", ds.spec, list(ds.labels), list(bundle.labels),
                    list(shared))
        ds = relabel(ds, bundle.labels)
    device = T.select_device(opts.device)
    runners = torch_runners(bundle, device)
    splits = list(SPLITS) if opts.ablation else [opts.split]
    topts = T.TrainOptions(dataset=opts.dataset, out=Path("."), seed=opts.seed, device=opts.device,
                           epochs_scale=opts.epochs_scale, progress=opts.progress, workers=opts.workers,
                           cache_dir=opts.cache_dir)
    stats = None
    if "speech_encoder" in runners:
        if ds.features_only:
            raise EvaluationError(f"bundle {opts.bundle} runs on media (it has encoders); dataset {ds.spec} holds "
                                  "precomputed features")
        data, stats = T.prepare_data(ds, cfg, topts, splits)
        inputs = {split: _SplitInputs(labels=[[u.label for u in s] for s in data[split]],
                                      uids=[[u.uid for u in s] for s in data[split]], media=data[split])
                  for split in splits}
    else:
        if not ds.features_only:
            raise EvaluationError(f"bundle {opts.bundle} was trained on precomputed features (no encoders); dataset "
                                  f"{ds.spec} holds media")
        inputs = _feature_split_inputs(opts.bundle, bundle.network_specs, ds, splits)
    split = opts.split
    if not inputs[split].labels:
        raise EvaluationError(f"dataset {ds.spec} has no usable '{split}' utterances ({ds.summary.format()})")
    head = DecisionHead.from_bundle(bundle)
    decisions = _decide(runners, head, cfg.face, inputs[split], f"decide ({split})", opts.progress)
    y = np.array([lab for s in inputs[split].labels for lab in s])
    reports, extra, preds = T.decision_reports(head, [d.channels for d in decisions], y.tolist(), cfg.labels)
    by_id = {u.id: u for u in ds.utterances(split)}
    flat_ids = [uid for s in inputs[split].uids for uid in s]
    scores = np.array([getattr(by_id[u], "score", None) or 0.0 for u in flat_ids], dtype=np.float64)
    protocol = protocol_report(ds.kind, ds.task, cfg.labels, y, preds,
                               scores if ds.task == "sentiment-binary" else None)
    chi: dict[str, Any] = {"keep_fraction": float(cfg.selection.keep_fraction),
                           "with": {k: {"accuracy": v["accuracy"], "weighted_f1": v["weighted_f1"]}
                                    for k, v in reports.items()}}
    if opts.ablation:
        chi["without"] = _ablation(runners, inputs, opts, topts, cfg, device,
                                   f"back end retrained keeping all features on {ds.spec} train/val")
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
        "extraction": stats.to_dict() if stats is not None else None,
        "channel_names": {"speech": "speech SVM", "face": "face SVM", "fused": "fused SVM (multimodal)",
                          "final": "fuzzy integral over the three"},
    }
    out_dir = opts.out or default_eval_dir(opts.bundle, ds.kind, split)
    files = write_reports(report, out_dir)
    return EvaluationResult(report=report, out_dir=out_dir, files=files)

def write_reports(report: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """``report.json``, ``report.md`` and ``confusion.png`` in ``out_dir``."""
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
              + " | ".join(f"{_p(chi['with'][c]['accuracy'])} / "
                           f"{_p(chi['with'][c]['weighted_f1'])}" for c in cols) + " |"]
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
