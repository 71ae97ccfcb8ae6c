"""Training: the paper's pipeline end to end, into a verified model bundle.

Order (each stage feeds the next; see the README's method section):

1. front ends: log-mel per utterance; Haar face crops from a few frames per utterance;
2. ``SpeechEncoder`` and ``FaceEncoder`` trained with cross-entropy (paper eq. 2) per utterance / frame;
3. per-modality ``ContextLSTM`` over each session's utterance sequence (unidirectional);
4. chi-square masks (eq. 1) fitted on the training split's context features;
5. ``FusionLSTM`` over the concatenated masked features -> FC features;
6. three LIBSVMs (speech, face, fused) with C/gamma picked by cross-validation;
7. fuzzy densities from each SVM's per-class validation recall; lambda solved per class and subset;
8. metrics on the held-out test speakers (per channel, per class, with and without chi-square),
   plus the dataset's own protocol (MELD weighted F1, CMU-MOSI Acc-2 Has0 / Non0).

Any dataset kind trains (``TrainOptions.dataset``: a synthetic directory or a ``KIND:PATH`` spec,
:mod:`edge_mmer.datasets.registry`); its labels become the bundle's. Media datasets go through the
front ends in worker processes and the feature cache (:mod:`edge_mmer.datasets.frontend`); a defect
found there (a corrupt or overlong clip) skips the utterance and is counted. Feature datasets
(CMU-MOSI ``.csd`` files, MMSA / MulT pickles) have no media: their pooled feature vectors,
standardised with training statistics, feed the context LSTMs directly; the bundle then has no
encoders (recorded in its description and in ``networks.*_context.input``).

An utterance in which no face is found has no face channel: the face context LSTM and the fusion
LSTM do not step on it (their state carries over), and its decision uses the speech channel alone.
Training sequences follow the same rule, so the runtime's streaming path computes the same thing.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edge_mmer.bundle import BundleWriter, read_bundle
from edge_mmer.config import FaceConfig, ModelConfig
from edge_mmer.datasets.base import DatasetError, LoadedDataset
from edge_mmer.datasets.frontend import ExtractStats, extract_all, extract_utterance
from edge_mmer.datasets.registry import open_dataset
from edge_mmer.decision import DecisionHead
from edge_mmer.evaluate import channel_report, per_class_recall, plot_confusions, protocol_report
from edge_mmer.features.face import HaarFaceDetector, preprocess_faces
from edge_mmer.fuzzy import densities_from_recall, fit_fuzzy_measure
from edge_mmer.models import ContextLSTM, FaceEncoder, FusionLSTM, SpeechEncoder
from edge_mmer.provenance import provenance
from edge_mmer.selection import ChiSquareSelection, fit_chi_square
from edge_mmer.svm import TrainedSVM, train_svm
from edge_mmer.vocab import CHANNELS, SPLITS

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class TrainOptions:
    """``dataset``: a synthetic dataset directory (a Path) or a spec ``KIND:PATH[?options]`` (a str).
    ``workers``: front-end processes (1 = in this process); ``cache_dir``: the feature cache (None: off)."""

    dataset: Path | str
    out: Path
    seed: int = 0
    device: str = "auto"
    epochs_scale: float = 1.0
    ablation: bool = True
    overwrite: bool = False
    progress: bool = True
    workers: int = 1
    cache_dir: Path | None = None


@dataclass
class TrainResult:
    bundle_dir: Path
    metrics: dict[str, Any]


@dataclass
class UtteranceInput:
    """One utterance after the front ends (what the encoders see)."""

    uid: str
    label: int
    mel: np.ndarray  # (T, n_mels) float32 log-mel (the encoder normalises with training statistics)
    faces: np.ndarray | None  # (n, S, S, 3) uint8 BGR crops, None when no face was found


Session = list[UtteranceInput]


@dataclass
class Features:
    """Per-session, per-utterance features at some stage; ``None`` where a modality is absent."""

    speech: list[list[np.ndarray]] = field(default_factory=list)
    face: list[list[np.ndarray | None]] = field(default_factory=list)


# --------------------------------------------------------------------------------------------- utils


def _progress(iterable: Any, desc: str, enabled: bool, total: int | None = None) -> Any:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False, dynamic_ncols=True)


def _device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"edge-mmer train: --device {spec}: CUDA is not available on this machine")
    return torch.device(spec)


def _epochs(n: int, scale: float) -> int:
    return max(1, round(n * scale))


def _seed_everything(seed: int) -> None:
    np.random.seed(seed)
    torch.manual_seed(seed)


def _state_to_numpy(module: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().contiguous().numpy() for k, v in module.state_dict().items()}


# ---------------------------------------------------------------------------------------- front ends


def load_dataset(spec: Path | str) -> LoadedDataset:
    """A synthetic directory (Path) or a ``KIND:PATH`` spec (str) -> the loaded dataset."""
    try:
        return open_dataset(f"synthetic:{spec}" if isinstance(spec, Path) else spec)
    except DatasetError as exc:
        raise SystemExit(f"edge-mmer: {exc}") from None


def with_dataset_labels(cfg: ModelConfig, ds: LoadedDataset) -> ModelConfig:
    """The dataset's labels become the model's (e.g. RAVDESS's 8, MELD's 7)."""
    if tuple(cfg.labels) == tuple(ds.labels):
        return cfg
    log.info("labels from the dataset (%s): %s", ds.kind, ", ".join(ds.labels))
    return replace(cfg, labels=tuple(ds.labels)).validate()


def prepare_data(ds: LoadedDataset, cfg: ModelConfig, opts: TrainOptions, splits: Sequence[str] = SPLITS
                 ) -> tuple[dict[str, list[Session]], ExtractStats]:
    """The audio and face front ends over every utterance of ``splits`` (worker processes, feature
    cache), grouped by session. Utterances whose media is defective are dropped and counted in
    ``ds.summary``; a session left empty is dropped."""
    utts = [u for split in splits for u in ds.utterances(split)]
    entries, stats = extract_all(utts, cfg, cache_dir=opts.cache_dir, workers=opts.workers, progress=opts.progress,
                                 max_clip_s=ds.max_clip_s)
    if stats.cached:
        log.info("front ends: %d utterances from the feature cache, %d decoded", stats.cached, stats.decoded)
    out: dict[str, list[Session]] = {}
    for split in splits:
        sessions: list[Session] = []
        missing = total = 0
        for session in ds.sessions(split):
            items: Session = []
            for utt in session:
                entry = entries[utt.id]
                if entry.error or entry.mel is None:
                    ds.summary.skip(entry.error or "no_audio", utt.id)
                    log.debug("%s: skipped (%s: %s)", utt.id, entry.error, entry.detail)
                    continue
                items.append(UtteranceInput(uid=utt.id, label=utt.label_index, mel=entry.mel, faces=entry.faces))
                missing += entry.faces is None
                total += 1
            if items:
                sessions.append(items)
        if missing:
            log.warning("%s: no face found in %d of %d utterances (face channel absent for those)", split, missing,
                        total)
        out[split] = sessions
    if stats.failed:
        log.warning("front ends: %d utterances skipped (%s)", stats.failed,
                    ", ".join(f"{k} {v}" for k, v in sorted(stats.reasons.items())))
    return out, stats


def prepare_sessions(ds: LoadedDataset, split: str, cfg: ModelConfig, detector: HaarFaceDetector,
                     progress: bool) -> list[Session]:
    """The front ends over one split, in this process, without the cache."""
    del detector  # the front ends use the standard detector (the runtime's)
    return prepare_data(ds, cfg, TrainOptions(dataset="", out=Path(), progress=progress), (split,))[0][split]


def _prepare_utterance(utt: Any, cfg: ModelConfig, detector: HaarFaceDetector) -> UtteranceInput:
    """One utterance through the training front ends (the converters' and calibration's entry)."""
    entry = extract_utterance(utt, cfg, detector)
    if entry.error or entry.mel is None:
        raise DatasetError(f"utterance {utt.id!r}: {entry.error}: {entry.detail}")
    return UtteranceInput(uid=utt.id, label=utt.label_index, mel=entry.mel, faces=entry.faces)


@dataclass
class FeatureInputs:
    """A feature dataset's per-split context-LSTM inputs and the standardisation fitted on train."""

    features: dict[str, Features]
    labels: dict[str, list[list[int]]]
    uids: dict[str, list[list[str]]]
    norm: dict[str, dict[str, np.ndarray]]  # modality -> {"mean", "std"}


def feature_inputs(ds: LoadedDataset) -> FeatureInputs:
    """Pooled feature vectors, standardised with the training split's mean and standard deviation
    (a dimension with std < 1e-6 keeps std 1)."""
    norm: dict[str, dict[str, np.ndarray]] = {}
    for modality in ("speech", "face"):
        vecs = [getattr(u, modality) for u in ds.utterances("train") if getattr(u, modality) is not None]
        if not vecs:
            raise SystemExit(f"edge-mmer train: {ds.spec}: no training utterance has {modality} features")
        x = np.stack(vecs).astype(np.float64)
        std = x.std(0)
        norm[modality] = {"mean": x.mean(0).astype(np.float32),
                          "std": np.where(std < 1e-6, 1.0, std).astype(np.float32)}

    def apply(modality: str, v: np.ndarray | None) -> np.ndarray | None:
        if v is None:
            return None
        out: np.ndarray = ((v - norm[modality]["mean"]) / norm[modality]["std"]).astype(np.float32)
        return out

    feats, labels, uids = {}, {}, {}
    for split in SPLITS:
        f = Features()
        sessions = ds.sessions(split)
        for session in sessions:
            f.speech.append([apply("speech", u.speech) for u in session])  # type: ignore[misc]
            f.face.append([apply("face", u.face) for u in session])
        feats[split] = f
        labels[split] = [[u.label_index for u in s] for s in sessions]
        uids[split] = [[u.id for u in s] for s in sessions]
    return FeatureInputs(feats, labels, uids, norm)


# ---------------------------------------------------------------------------------- generic training


def _fit(
    model: nn.Module,
    batches: Callable[[np.random.Generator], Iterator[tuple[tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor | None]]],
    val_accuracy: Callable[[], float],
    epochs: int,
    cfg: ModelConfig,
    rng: np.random.Generator,
    desc: str,
    progress: bool,
) -> float:
    """Adam + cross-entropy; keeps the weights of the best validation epoch. Returns that accuracy."""
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = nn.CrossEntropyLoss(reduction="none")
    best_acc, best_state = -1.0, copy.deepcopy(model.state_dict())
    bar = _progress(range(epochs), desc, progress)
    for _epoch in bar:
        model.train()
        total, count = 0.0, 0
        for inputs, targets, weight in batches(rng):
            opt.zero_grad(set_to_none=True)
            logits = model(*inputs)[1]
            losses = loss_fn(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
            if weight is not None:
                w = weight.reshape(-1)
                loss = (losses * w).sum() / w.sum().clamp_min(1.0)
            else:
                loss = losses.mean()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            total += float(loss.detach()) * len(targets)
            count += len(targets)
        sched.step()
        model.eval()
        acc = val_accuracy()
        if acc > best_acc:
            best_acc, best_state = acc, copy.deepcopy(model.state_dict())
        if progress and hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{total / max(count, 1):.3f}", val=f"{acc:.3f}", best=f"{best_acc:.3f}")
    model.load_state_dict(best_state)
    model.eval()
    log.info("%s: best validation accuracy %.3f", desc, best_acc)
    return best_acc


def _pad_mels(mels: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([m.shape[0] for m in mels], dtype=torch.long)
    x = torch.zeros(len(mels), int(lengths.max()), mels[0].shape[1])
    for i, m in enumerate(mels):
        x[i, : m.shape[0]] = torch.from_numpy(m)
    return x, lengths


# ----------------------------------------------------------------------------------------- encoders


def fit_speech_encoder(data: dict[str, list[Session]], cfg: ModelConfig, opts: TrainOptions,
                       device: torch.device, rng: np.random.Generator) -> tuple[SpeechEncoder, float]:
    n_classes = len(cfg.labels)
    model = SpeechEncoder(cfg.audio.n_mels, n_classes, cfg.speech_encoder).to(device)
    train = [u for s in data["train"] for u in s]
    val = [u for s in data["val"] for u in s]
    bs = cfg.train.batch_size
    frames = np.concatenate([u.mel for u in train])
    mean, std = frames.mean(0), frames.std(0)
    model.set_input_normalization(torch.from_numpy(mean), torch.from_numpy(std))
    noise = (0.1 * std).astype(np.float32)

    def batches(r: np.random.Generator) -> Iterator[tuple[tuple[torch.Tensor, ...], torch.Tensor, None]]:
        order = r.permutation(len(train))
        for i in range(0, len(order), bs):
            items = [train[j] for j in order[i : i + bs]]
            mels = []
            for u in items:  # augmentation: random time crop (>= 70 %), feature noise
                t = u.mel.shape[0]
                keep = int(t * r.uniform(0.7, 1.0))
                start = int(r.integers(0, t - keep + 1))
                m = u.mel[start : start + keep] + noise * r.standard_normal((keep, u.mel.shape[1]), dtype=np.float32)
                mels.append(m)
            x, lengths = _pad_mels(mels)
            y = torch.tensor([u.label for u in items])
            yield (x.to(device), lengths), y.to(device), None

    def val_acc() -> float:
        feats = speech_features(model, val, device)
        logits = model.head(torch.from_numpy(feats).to(device))
        pred = logits.argmax(-1).cpu().numpy()
        return float(np.mean(pred == np.array([u.label for u in val])))

    acc = _fit(model, batches, torch.no_grad()(val_acc), _epochs(cfg.train.speech_epochs, opts.epochs_scale), cfg,
               rng, "speech encoder", opts.progress)
    return model, acc


@torch.no_grad()
def speech_features(model: SpeechEncoder, utts: Sequence[UtteranceInput], device: torch.device) -> np.ndarray:
    """(N, H) speech encoder features, computed one utterance at a time (as the runtime does)."""
    model.eval()
    out = [model(torch.from_numpy(u.mel)[None].to(device))[0][0].cpu().numpy() for u in utts]
    return np.stack(out).astype(np.float32)


def fit_face_encoder(data: dict[str, list[Session]], cfg: ModelConfig, opts: TrainOptions,
                     device: torch.device, rng: np.random.Generator) -> tuple[FaceEncoder, float]:
    n_classes = len(cfg.labels)
    model = FaceEncoder(n_classes, cfg.face_encoder, cfg.face.crop_size).to(device)
    crops, labels = [], []
    for s in data["train"]:
        for u in s:
            if u.faces is not None:
                crops.append(u.faces)
                labels.extend([u.label] * len(u.faces))
    if not crops:
        raise RuntimeError("no face was found in any training utterance: cannot train the face encoder")
    x_all = np.concatenate(crops)  # uint8, normalised per batch
    y_all = torch.tensor(labels)
    val = [u for s in data["val"] for u in s if u.faces is not None]
    bs = cfg.train.batch_size
    pad = max(2, cfg.face.crop_size // 24)

    def batches(r: np.random.Generator) -> Iterator[tuple[tuple[torch.Tensor, ...], torch.Tensor, None]]:
        order = torch.from_numpy(r.permutation(len(y_all)))
        size = cfg.face.crop_size
        for i in range(0, len(order), bs):
            idx = order[i : i + bs]
            if len(idx) < 2:  # BatchNorm on a 1x1 feature map needs two or more crops
                continue
            x = torch.from_numpy(preprocess_faces(list(x_all[idx.numpy()]), cfg.face))
            if r.random() < 0.5:  # augmentation: horizontal flip, small translation, contrast jitter
                x = x.flip(-1)
            x = nn.functional.pad(x, (pad, pad, pad, pad), mode="replicate")
            dx, dy = (int(v) for v in r.integers(0, 2 * pad + 1, size=2))
            x = x[..., dy : dy + size, dx : dx + size] * float(r.uniform(0.8, 1.2))
            yield (x.to(device),), y_all[idx].to(device), None

    @torch.no_grad()
    def val_acc() -> float:
        emb = face_embeddings(model, val, cfg.face, device, cfg.train.batch_size)
        logits = model.head(torch.from_numpy(np.stack(emb)).to(device))
        return float(np.mean(logits.argmax(-1).cpu().numpy() == np.array([u.label for u in val])))

    acc = _fit(model, batches, val_acc, _epochs(cfg.train.face_epochs, opts.epochs_scale), cfg, rng,
               "face encoder", opts.progress)
    return model, acc


@torch.no_grad()
def face_embeddings(model: FaceEncoder, utts: Sequence[UtteranceInput], cfg: FaceConfig, device: torch.device,
                    batch_size: int = 64) -> list[np.ndarray]:
    """Per utterance: the mean of its frames' face embeddings (utterances must have faces)."""
    model.eval()
    out = []
    for u in utts:
        assert u.faces is not None
        embs = [model(torch.from_numpy(preprocess_faces(list(u.faces[i : i + batch_size]), cfg)).to(device))[0]
                for i in range(0, len(u.faces), batch_size)]
        out.append(torch.cat(embs).mean(0).cpu().numpy().astype(np.float32))
    return out


def encode(data: dict[str, list[Session]], speech: SpeechEncoder, face: FaceEncoder, cfg: ModelConfig,
           device: torch.device, progress: bool) -> dict[str, Features]:
    out: dict[str, Features] = {}
    for split in SPLITS:
        f = Features()
        for session in _progress(data[split], f"encode ({split})", progress):
            f.speech.append(list(speech_features(speech, session, device)))
            with_face = [u for u in session if u.faces is not None]
            embs = iter(face_embeddings(face, with_face, cfg.face, device))
            f.face.append([next(embs) if u.faces is not None else None for u in session])
        out[split] = f
    return out


# ----------------------------------------------------------------------------------- sequence models


def _present(seqs: Sequence[Sequence[np.ndarray | None]], labels: Sequence[Sequence[int]]
             ) -> tuple[list[list[np.ndarray]], list[list[int]]]:
    """Per sequence, the steps where the modality is present (absent steps do not advance the LSTM)."""
    xs, ys = [], []
    for seq, lab in zip(seqs, labels, strict=True):
        keep = [i for i, v in enumerate(seq) if v is not None]
        xs.append([seq[i] for i in keep])
        ys.append([lab[i] for i in keep])
    return xs, ys  # type: ignore[return-value]


def _pad_sequences(seqs: Sequence[Sequence[np.ndarray]], labels: Sequence[Sequence[int]]
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n, length, dim = len(seqs), max(len(s) for s in seqs), len(seqs[0][0])
    x = torch.zeros(n, length, dim)
    y = torch.zeros(n, length, dtype=torch.long)
    w = torch.zeros(n, length)
    for i, (s, lab) in enumerate(zip(seqs, labels, strict=True)):
        x[i, : len(s)] = torch.from_numpy(np.stack(s))
        y[i, : len(s)] = torch.tensor(lab)
        w[i, : len(s)] = 1.0
    return x, y, w


def fit_sequence_model(
    model: ContextLSTM | FusionLSTM,
    train: tuple[list[list[np.ndarray]], list[list[int]]],
    val: tuple[list[list[np.ndarray]], list[list[int]]],
    epochs: int, cfg: ModelConfig, rng: np.random.Generator, device: torch.device, desc: str, progress: bool,
    noise: float = 0.1,
) -> float:
    """Train an LSTM over utterance sequences (one sequence per session), cross-entropy per step."""
    seqs, labels = [s for s in train[0] if s], [lab for s, lab in zip(*train, strict=True) if s]
    x_all, y_all, w_all = _pad_sequences(seqs, labels)
    scale = float(x_all[w_all > 0].std()) if (w_all > 0).any() else 1.0
    bs = max(1, min(16, len(seqs)))

    def batches(r: np.random.Generator) -> Iterator[tuple[tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor]]:
        order = torch.from_numpy(r.permutation(len(seqs)))
        for i in range(0, len(order), bs):
            idx = order[i : i + bs]
            x = x_all[idx]
            x = x + torch.from_numpy(r.normal(0, noise * scale, size=tuple(x.shape)).astype(np.float32))
            yield (x.to(device),), y_all[idx].to(device), w_all[idx].to(device)

    @torch.no_grad()
    def val_acc() -> float:
        correct = total = 0
        for s, lab in zip(*val, strict=True):
            if not s:
                continue
            logits = model(torch.from_numpy(np.stack(s))[None].to(device))[1][0]
            correct += int((logits.argmax(-1).cpu() == torch.tensor(lab)).sum())
            total += len(lab)
        return correct / max(total, 1)

    return _fit(model, batches, val_acc, epochs, cfg, rng, desc, progress)


@torch.no_grad()
def run_sequences(model: ContextLSTM | FusionLSTM, seqs: Sequence[Sequence[np.ndarray | None]],
                  device: torch.device) -> list[list[np.ndarray | None]]:
    """Outputs per step; absent steps stay None and do not advance the state."""
    model.eval()
    out: list[list[np.ndarray | None]] = []
    for seq in seqs:
        present = [v for v in seq if v is not None]
        ys = iter(model(torch.from_numpy(np.stack(present))[None].to(device))[0][0].cpu().numpy()) if present else iter(())
        out.append([next(ys).astype(np.float32) if v is not None else None for v in seq])
    return out


# ------------------------------------------------------------------------------------------ back end


@dataclass
class BackEnd:
    keep_fraction: float
    selections: dict[str, ChiSquareSelection]
    fusion: FusionLSTM
    fusion_val_acc: float
    head: DecisionHead
    reports: dict[str, dict[str, Any]]  # test split, per channel + final
    val_accuracy: dict[str, float]
    by_integral: dict[str, dict[str, float]]  # split -> final accuracy per integral
    test_predictions: dict[str, np.ndarray] = field(default_factory=dict)  # channel -> class per utterance


def _stack_present(seqs: Sequence[Sequence[np.ndarray | None]], labels: Sequence[Sequence[int]]
                   ) -> tuple[np.ndarray, np.ndarray]:
    xs = [v for s in seqs for v in s if v is not None]
    ys = [lab for s, ls in zip(seqs, labels, strict=True) for v, lab in zip(s, ls, strict=True) if v is not None]
    if not xs:
        return np.zeros((0, 0), dtype=np.float32), np.zeros(0, dtype=np.int64)
    return np.stack(xs), np.asarray(ys, dtype=np.int64)


def fit_back_end(
    ctx: dict[str, Features], labels: dict[str, list[list[int]]], cfg: ModelConfig, keep_fraction: float,
    opts: TrainOptions, device: torch.device, rng: np.random.Generator,
) -> BackEnd:
    """Chi-square masks -> fusion LSTM -> three SVMs -> fuzzy measure -> test metrics."""
    n_classes = len(cfg.labels)
    tag = f"keep {keep_fraction:.0%}"
    # 1. chi-square masks per modality, on the training split's context features
    selections = {}
    for modality in ("speech", "face"):
        x, y = _stack_present(getattr(ctx["train"], modality), labels["train"])
        selections[modality] = fit_chi_square(x, y, n_classes, keep_fraction)
    masked: dict[str, dict[str, list[list[np.ndarray | None]]]] = {
        split: {m: [[None if v is None else selections[m].apply(v) for v in s] for s in getattr(ctx[split], m)]
                for m in ("speech", "face")}
        for split in SPLITS
    }
    # 2. fusion LSTM over concatenated masked features (steps where both modalities are present)
    joint = {
        split: [[None if f is None else np.concatenate([s_, f]).astype(np.float32) for s_, f in zip(ss, fs, strict=True)]
                for ss, fs in zip(masked[split]["speech"], masked[split]["face"], strict=True)]
        for split in SPLITS
    }
    in_dim = next(v for s in joint["train"] for v in s if v is not None).shape[0]
    fusion = FusionLSTM(in_dim, n_classes, cfg.fusion).to(device)

    fusion_acc = fit_sequence_model(fusion, _present(joint["train"], labels["train"]),
                                    _present(joint["val"], labels["val"]),
                                    _epochs(cfg.train.fusion_epochs, opts.epochs_scale), cfg, rng, device,
                                    f"fusion LSTM ({tag})", opts.progress)
    fused = {split: run_sequences(fusion, joint[split], device) for split in SPLITS}
    channel_feats = {split: {"speech": masked[split]["speech"], "face": masked[split]["face"], "fused": fused[split]}
                     for split in SPLITS}
    # 3. one LIBSVM per channel
    svms: dict[str, TrainedSVM] = {}
    for name in CHANNELS:
        x, y = _stack_present(channel_feats["train"][name], labels["train"])
        log.info("LIBSVM %s (%s): %d samples x %d features, grid search", name, tag, *x.shape)
        svms[name] = train_svm(x, y, cfg.svm, seed=opts.seed, progress=opts.progress, n_classes=n_classes)
    # 4. fuzzy densities from per-class validation recall
    densities, val_accuracy = {}, {}
    for name in CHANNELS:
        x, y = _stack_present(channel_feats["val"][name], labels["val"])
        pred = svms[name].predict(x)
        val_accuracy[name] = float(np.mean(pred == y))
        densities[name] = densities_from_recall(per_class_recall(y, pred, n_classes))
    measure = fit_fuzzy_measure(densities)
    head = DecisionHead(selections=selections, svms=svms, measure=measure, method="sugeno")
    # 5. the integral: as configured, or (auto) the one with the better validation accuracy
    _, val_extra, _ = evaluate_split(head, channel_feats["val"], labels["val"], cfg)
    if cfg.fuzzy.integral == "auto":
        head.method = max(("sugeno", "choquet"), key=lambda m: val_extra[f"final_{m}_accuracy"])
    else:
        head.method = cfg.fuzzy.integral
    val_accuracy["final"] = val_extra[f"final_{head.method}_accuracy"]
    log.info("fuzzy integral (%s): %s (validation: sugeno %.3f, choquet %.3f)", tag, head.method,
             val_extra["final_sugeno_accuracy"], val_extra["final_choquet_accuracy"])
    # 6. test metrics, per channel and final, the decision made utterance by utterance
    reports, test_extra, test_preds = evaluate_split(head, channel_feats["test"], labels["test"], cfg)
    by_integral = {"validation": val_extra, "test": test_extra}
    return BackEnd(keep_fraction, selections, fusion, fusion_acc, head, reports, val_accuracy, by_integral, test_preds)


def evaluate_split(head: DecisionHead, feats: dict[str, list[list[np.ndarray | None]]], labels: list[list[int]],
                   cfg: ModelConfig) -> tuple[dict[str, dict[str, Any]], dict[str, Any], dict[str, np.ndarray]]:
    """Per-channel reports (over utterances where the channel is present) and the final decision;
    also the predictions per utterance (sessions flattened; -1 where a channel is absent)."""
    reports: dict[str, dict[str, Any]] = {}
    probs: dict[str, list[list[np.ndarray | None]]] = {}
    preds: dict[str, np.ndarray] = {}
    for name in CHANNELS:
        seqs = feats[name]
        x, y = _stack_present(seqs, labels)
        p = iter(head.svms[name].predict_proba(x)) if len(x) else iter(())
        probs[name] = [[next(p) if v is not None else None for v in s] for s in seqs]
        preds[name] = np.array([int(np.argmax(q)) if q is not None else -1 for s in probs[name] for q in s],
                               dtype=np.int64)
        reports[name] = channel_report(y, preds[name][preds[name] >= 0], cfg.labels)
    y_true, finals = [], {"sugeno": [], "choquet": []}  # type: ignore[var-annotated]
    for si, session_labels in enumerate(labels):
        for ui, lab in enumerate(session_labels):
            supports = {n: probs[n][si][ui] for n in CHANNELS if probs[n][si][ui] is not None}
            y_true.append(lab)
            for method in finals:
                finals[method].append(int(np.argmax(head.fuse(supports, method))))
    y = np.asarray(y_true)
    preds["final"] = np.asarray(finals[head.method], dtype=np.int64)
    reports["final"] = channel_report(y, preds["final"], cfg.labels)
    extra = {f"final_{m}_accuracy": float(np.mean(np.asarray(v) == y)) for m, v in finals.items()}
    return reports, extra, preds


# ----------------------------------------------------------------------------------------- the bundle


def _io(name: str, shape: list[int | str], dtype: str = "float32") -> dict[str, Any]:
    return {"name": name, "shape": shape, "dtype": dtype}


def _step_io(in_dim: int, hidden: int, out_name: str, out_dim: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    ins = [_io("x", [1, in_dim]), _io("h", [1, hidden]), _io("c", [1, hidden])]
    outs = [_io(out_name, [1, out_dim]), _io("h_out", [1, hidden]), _io("c_out", [1, hidden])]
    return ins, outs


def write_bundle(
    opts: TrainOptions, cfg: ModelConfig, ds: LoadedDataset, nets: dict[str, nn.Module], back: BackEnd,
    dims: dict[str, int], metrics: dict[str, Any], reports_png: Path, dataset_meta: dict[str, Any],
    inputs: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """The bundle: every network in ``nets`` (a feature dataset's bundle has no encoders; ``inputs``
    then records, per context network, what its input is and its standardisation)."""
    writer = BundleWriter(opts.out, overwrite=opts.overwrite)
    s_in, s_out = _step_io(dims["speech"], cfg.context.hidden, "y", cfg.context.hidden)
    f_in, f_out = _step_io(dims["face"], cfg.context.hidden, "y", cfg.context.hidden)
    u_in, u_out = _step_io(dims["fusion_in"], cfg.fusion.hidden, "features", cfg.fusion.fc)
    io = {
        "speech_encoder": ([_io("log_mel", [1, "time", cfg.audio.n_mels])], [_io("features", [1, dims["speech"]])],
                           {"n_mels": cfg.audio.n_mels, "n_classes": len(cfg.labels)}),
        "face_encoder": ([_io("face", ["batch", 3, cfg.face.crop_size, cfg.face.crop_size])],
                         [_io("embedding", ["batch", dims["face"]])],
                         {"img_size": cfg.face.crop_size, "n_classes": len(cfg.labels)}),
        "speech_context": (s_in, s_out, {"input_dim": dims["speech"], "n_classes": len(cfg.labels)}),
        "face_context": (f_in, f_out, {"input_dim": dims["face"], "n_classes": len(cfg.labels)}),
        "fusion": (u_in, u_out, {"input_dim": dims["fusion_in"], "n_classes": len(cfg.labels)}),
    }
    networks = {}
    for name, module in nets.items():
        rel = writer.add_safetensors(f"networks/{name}.safetensors", _state_to_numpy(module),
                                     metadata={"network": name, "format": "pt"})
        ins, outs, arch = io[name]
        networks[name] = {"weights": rel, "class": type(module).__name__, "arch": arch, "inputs": ins,
                          "outputs": outs, "artifacts": {}}
        if inputs and name in inputs:
            networks[name]["input"] = inputs[name]
    selection = {m: writer.add_safetensors(f"selection/{m}.safetensors", sel.to_arrays(),
                                           metadata={"keep_fraction": str(sel.keep_fraction)})
                 for m, sel in back.selections.items()}
    svms = {name: writer.add_svm(name, svm) for name, svm in back.head.svms.items()}
    writer.add_file("reports/confusion.png", reports_png.read_bytes())
    writer.add_json("reports/metrics.json", metrics)
    synthetic = bool(dataset_meta.get("synthetic", False))
    if synthetic:
        description = ("Trained on the SYNTHETIC edge-mmer dataset (espeak-ng speech, rendered faces): "
                       "a demonstration model, not a recogniser of real people.")
    else:
        description = f"Trained on {ds.kind} ({ds.task}; labels: {', '.join(ds.labels)})."
        if ds.features_only:
            description += (" Precomputed features only (" + ", ".join(
                str(v) for k, v in ds.info.items() if k in ("audio_features", "visual_features", "pickle_layout") and v)
                + "): the context, selection, fusion and SVM stages; no encoders, so the runtime cannot run it on "
                "a camera and a microphone.")
    dataset_prov: dict[str, Any] = {"path": str(ds.root), "kind": ds.kind, "spec": ds.spec,
                                    "generator": dataset_meta.get("generator"), "seed": dataset_meta.get("seed"),
                                    "synthetic": synthetic}
    if not synthetic:
        dataset_prov.update({"task": ds.task, "features_only": ds.features_only,
                             "utterances": {sp: len(ds.utterances(sp)) for sp in SPLITS}})
    manifest = {
        "model_id": f"edge-mmer-{cfg.name}-{time.strftime('%Y%m%d')}-s{opts.seed}",
        "synthetic": synthetic,
        "description": description,
        "labels": list(cfg.labels),
        "config": cfg.to_dict(),
        "networks": networks,
        "selection": {m: {"file": rel, "keep_fraction": back.keep_fraction,
                          "n_features": int(back.selections[m].mask.shape[0]),
                          "n_selected": int(back.selections[m].mask.sum())} for m, rel in selection.items()},
        "svms": svms,
        "fuzzy": {"integral": back.head.method, **back.head.measure.to_json()},
        "metrics": metrics,
        "provenance": provenance(dataset_prov, opts.seed),
    }
    writer.write_manifest(manifest)
    return opts.out


# ------------------------------------------------------------------------------------------ the run


@dataclass
class ContextStage:
    nets: dict[str, ContextLSTM]
    val_acc: dict[str, float]
    features: dict[str, Features]


def fit_context(enc: dict[str, Features], labels: dict[str, list[list[int]]], dims: dict[str, int], cfg: ModelConfig,
                opts: TrainOptions, device: torch.device, rng: np.random.Generator) -> ContextStage:
    """One unidirectional context LSTM per modality over each session's utterance features."""
    n_classes = len(cfg.labels)
    ctx: dict[str, Features] = {split: Features() for split in SPLITS}
    nets: dict[str, ContextLSTM] = {}
    acc: dict[str, float] = {}
    for modality in ("speech", "face"):
        net = ContextLSTM(dims[modality], n_classes, cfg.context).to(device)
        acc[modality] = fit_sequence_model(
            net, _present(getattr(enc["train"], modality), labels["train"]),
            _present(getattr(enc["val"], modality), labels["val"]), _epochs(cfg.train.context_epochs, opts.epochs_scale),
            cfg, rng, device, f"{modality} context LSTM", opts.progress)
        nets[modality] = net
        for split in SPLITS:
            setattr(ctx[split], modality, run_sequences(net, getattr(enc[split], modality), device))
    return ContextStage(nets, acc, ctx)


def split_description(ds: LoadedDataset) -> str:
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


def train(cfg: ModelConfig, opts: TrainOptions) -> TrainResult:
    """Train everything and write the bundle to ``opts.out``; returns the metrics."""
    started = time.monotonic()
    _seed_everything(opts.seed)
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    if opts.out.exists() and any(opts.out.iterdir()) and not opts.overwrite:
        raise SystemExit(f"edge-mmer train: {opts.out} exists and is not empty (use --overwrite)")
    device = _device(opts.device)
    rng = np.random.default_rng(opts.seed)
    ds = load_dataset(opts.dataset)
    cfg = with_dataset_labels(cfg, ds)
    log.info("training '%s' on %s (device %s, seed %d)", cfg.name, ds.spec, device, opts.seed)
    net_acc: dict[str, float] = {}
    encoders: dict[str, nn.Module] = {}
    stats: ExtractStats | None = None
    inputs: dict[str, dict[str, Any]] | None = None
    if ds.features_only:
        fi = feature_inputs(ds)
        enc, labels, uids = fi.features, fi.labels, fi.uids
        dims = {m: int(fi.norm[m]["mean"].shape[0]) for m in ("speech", "face")}
        counts = {split: sum(len(s) for s in labels[split]) for split in SPLITS}
        inputs = {f"{m}_context": {"kind": "precomputed", "modality": m, "pooling": "mean,std over time",
                                   "source": ds.info, "mean": fi.norm[m]["mean"].tolist(),
                                   "std": fi.norm[m]["std"].tolist()} for m in ("speech", "face")}
        for split in SPLITS:
            if not labels[split]:
                raise SystemExit(f"edge-mmer train: the dataset has no '{split}' sessions")
    else:
        data, stats = prepare_data(ds, cfg, opts)
        labels = {split: [[u.label for u in s] for s in data[split]] for split in SPLITS}
        uids = {split: [[u.uid for u in s] for s in data[split]] for split in SPLITS}
        counts = {split: sum(len(s) for s in data[split]) for split in SPLITS}
        for split in SPLITS:
            if not data[split]:
                raise SystemExit(f"edge-mmer train: the dataset has no '{split}' sessions")
        speech_enc, net_acc["speech_encoder"] = fit_speech_encoder(data, cfg, opts, device, rng)
        face_enc, net_acc["face_encoder"] = fit_face_encoder(data, cfg, opts, device, rng)
        encoders = {"speech_encoder": speech_enc, "face_encoder": face_enc}
        enc = encode(data, speech_enc, face_enc, cfg, device, opts.progress)
        dims = {"speech": cfg.speech_encoder.lstm_hidden, "face": cfg.face_encoder.embedding_dim}

    context = fit_context(enc, labels, dims, cfg, opts, device, rng)
    net_acc.update({"speech_context": context.val_acc["speech"], "face_context": context.val_acc["face"]})
    back = fit_back_end(context.features, labels, cfg, cfg.selection.keep_fraction, opts, device, rng)
    net_acc["fusion"] = back.fusion_val_acc
    ablation = None
    if opts.ablation and cfg.selection.keep_fraction < 1.0:
        ablation = fit_back_end(context.features, labels, cfg, 1.0, opts, device, rng)

    if ds.kind == "synthetic":
        dataset_meta = json.loads((ds.root / "dataset.json").read_text(encoding="utf-8"))
    else:
        dataset_meta = {"synthetic": False}
    by_id = {u.id: u for u in ds.utterances("test")}
    test_ids = [uid for s in uids["test"] for uid in s]
    scores = np.array([getattr(by_id[uid], "score", None) or 0.0 for uid in test_ids], dtype=np.float64)
    protocol = protocol_report(ds.kind, ds.task, cfg.labels, np.array([lab for s in labels["test"] for lab in s]),
                               back.test_predictions, scores if ds.task == "sentiment-binary" else None)
    metrics = build_metrics(cfg, dataset_meta, counts, back, ablation, net_acc, time.monotonic() - started)
    if ds.kind != "synthetic":
        metrics["split"] = split_description(ds)
        metrics["dataset"] = ds.describe()
        metrics["protocol"] = protocol
        if stats is not None:
            metrics["extraction"] = stats.to_json()
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    png = opts.out.parent / f".{opts.out.name}.confusion.png"
    title = f"edge-mmer '{cfg.name}' on {metrics['split']}" + (" (SYNTHETIC data)" if metrics["synthetic"] else "")
    if ds.kind == "synthetic":
        title = f"edge-mmer '{cfg.name}' on held-out test speakers (SYNTHETIC data)"
    plot_confusions({k: back.reports[k] for k in (*CHANNELS, "final")}, cfg.labels, png, title)
    dims["fusion_in"] = int(back.selections["speech"].mask.sum() + back.selections["face"].mask.sum())
    nets: dict[str, nn.Module] = {**encoders, "speech_context": context.nets["speech"],
                                  "face_context": context.nets["face"], "fusion": back.fusion}
    out = write_bundle(opts, cfg, ds, nets, back, dims, metrics, png, dataset_meta, inputs)
    png.unlink(missing_ok=True)
    read_bundle(out, verify=True)  # what we wrote must verify
    log.info("bundle written to %s in %.0f s", out, time.monotonic() - started)
    return TrainResult(bundle_dir=out, metrics=metrics)


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
        lines.append(f"{f'chi-square {keep:.0%}':<18}" + "".join(f"{_pct(metrics['test_accuracy'][c]):>9}" for c in cols))
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
        from edge_mmer.datasets.base import DefectSummary

        summary = DefectSummary()
        summary.skipped.update(dataset["defects"]["skipped"])
        summary.handled.update(dataset["defects"]["handled"])
        lines.append(f"dataset {dataset['spec']}: {summary.format()}")
    if "extraction" in metrics:
        ex = metrics["extraction"]
        lines.append(f"front ends: {ex['decoded']} decoded, {ex['cached']} from the feature cache, {ex['failed']} skipped")
    return "\n".join(lines)


__all__ = ["TrainOptions", "TrainResult", "format_metrics", "load_dataset", "train"]
