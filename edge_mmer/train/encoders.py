"""The two encoders, trained per utterance (speech) and per frame (face) with cross-entropy
(paper eq. 2), and the features they give each utterance, computed as the runtime computes them:
one utterance at a time for speech, the mean of the frames' embeddings for the face.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from edge_mmer.config import FaceConfig, ModelConfig
from edge_mmer.errors import TrainError
from edge_mmer.features.face import preprocess_faces
from edge_mmer.models import FaceEncoder, SpeechEncoder
from edge_mmer.train.batches import Batch
from edge_mmer.train.data import Features, Session, UtteranceInput
from edge_mmer.train.face_init import STEM, FaceInit
from edge_mmer.train.fit import FitContext, fit_model
from edge_mmer.train.options import TrainOptions, scaled_epochs
from edge_mmer.train.options import progress as progress_bar
from edge_mmer.vocab import SPLITS

log = logging.getLogger(__name__)

__all__ = ["FaceBatches", "SpeechBatches", "encode", "face_crops", "face_embeddings", "fit_face_encoder",
           "fit_speech_encoder", "speech_features"]


def _pad_mels(mels: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([m.shape[0] for m in mels], dtype=torch.long)
    x = torch.zeros(len(mels), int(lengths.max()), mels[0].shape[1])
    for i, m in enumerate(mels):
        x[i, : m.shape[0]] = torch.from_numpy(m)
    return x, lengths


class SpeechBatches:
    """The speech encoder's training items (one per utterance) and their augmentation: a random time
    crop (>= 70 %) and feature noise (10 % of each band's standard deviation)."""

    min_batch = 1

    def __init__(self, utts: Sequence[UtteranceInput], std: np.ndarray) -> None:
        self.mels = [u.mel for u in utts]
        self.labels = np.array([u.label for u in utts], dtype=np.int64)
        self.noise = (0.1 * std).astype(np.float32)

    def __len__(self) -> int:
        return len(self.mels)

    def batch(self, indices: np.ndarray, seed: int) -> Batch:
        r = np.random.default_rng(seed)
        mels = []
        for j in indices:
            mel = self.mels[int(j)]
            t = mel.shape[0]
            keep = int(t * r.uniform(0.7, 1.0))
            start = int(r.integers(0, t - keep + 1))
            mels.append(mel[start : start + keep] + self.noise * r.standard_normal((keep, mel.shape[1]),
                                                                                  dtype=np.float32))
        x, lengths = _pad_mels(mels)
        return (x, lengths), torch.from_numpy(self.labels[indices]), None


def fit_speech_encoder(data: dict[str, list[Session]], cfg: ModelConfig, opts: TrainOptions, ctx: FitContext,
                       rng: np.random.Generator) -> tuple[SpeechEncoder, float]:
    n_classes = len(cfg.labels)
    device = ctx.device
    model = SpeechEncoder(cfg.audio.n_mels, n_classes, cfg.speech_encoder).to(device)
    train = [u for s in data["train"] for u in s]
    val = [u for s in data["val"] for u in s]
    frames = np.concatenate([u.mel for u in train])
    mean, std = frames.mean(0), frames.std(0)
    model.set_input_normalization(torch.from_numpy(mean), torch.from_numpy(std))

    @torch.no_grad()
    def val_acc() -> float:
        feats = speech_features(model, val, device)
        logits = model.head(torch.from_numpy(feats).to(device))
        pred = logits.argmax(-1).cpu().numpy()
        return float(np.mean(pred == np.array([u.label for u in val])))

    result = fit_model(model, SpeechBatches(train, std), val_acc,
                       scaled_epochs(cfg.train.speech_epochs, opts.epochs_scale), cfg, rng, "speech_encoder", ctx,
                       batch_size=cfg.train.batch_size, distributed=True, amp=True)
    return model, result.val_accuracy


@torch.no_grad()
def speech_features(model: SpeechEncoder, utts: Sequence[UtteranceInput], device: torch.device) -> np.ndarray:
    """(N, H) speech encoder features, computed one utterance at a time (as the runtime does)."""
    model.eval()
    out = [model(torch.from_numpy(u.mel)[None].to(device))[0][0].cpu().numpy() for u in utts]
    return np.stack(out).astype(np.float32)


class FaceBatches:
    """The face encoder's training items (one per crop) and their augmentation, drawn per batch: a
    horizontal flip, a small translation, contrast jitter."""

    min_batch = 2  # BatchNorm on a 1x1 feature map needs two or more crops

    def __init__(self, crops: np.ndarray, labels: np.ndarray, face: FaceConfig) -> None:
        self.crops = crops  # uint8, normalised per batch
        self.labels = labels
        self.face = face
        self.pad = max(2, face.crop_size // 24)

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, indices: np.ndarray, seed: int) -> Batch:
        r = np.random.default_rng(seed)
        size, pad = self.face.crop_size, self.pad
        x = torch.from_numpy(preprocess_faces(list(self.crops[indices]), self.face))
        if r.random() < 0.5:
            x = x.flip(-1)
        x = nn.functional.pad(x, (pad, pad, pad, pad), mode="replicate")
        dx, dy = (int(v) for v in r.integers(0, 2 * pad + 1, size=2))
        x = x[..., dy : dy + size, dx : dx + size] * float(r.uniform(0.8, 1.2))
        return (x.contiguous(),), torch.from_numpy(self.labels[indices]), None


def face_crops(sessions: Sequence[Session]) -> tuple[np.ndarray, np.ndarray]:
    """Every crop of the utterances with a face, and its utterance's label."""
    crops, labels = [], []
    for s in sessions:
        for u in s:
            if u.faces is not None:
                crops.append(u.faces)
                labels.extend([u.label] * len(u.faces))
    if not crops:
        raise TrainError("no face was found in any training utterance: cannot train the face encoder. If the "
                         "dataset's videos hold no detectable face (or there are none), train the speech channel "
                         "alone: --modalities speech")
    return np.concatenate(crops), np.asarray(labels, dtype=np.int64)


def fit_face_encoder(data: dict[str, list[Session]], cfg: ModelConfig, opts: TrainOptions, ctx: FitContext,
                     rng: np.random.Generator, init: FaceInit | None = None) -> tuple[FaceEncoder, float]:
    """The face encoder, from ``init`` (pretrained backbone weights, :mod:`.face_init`) or from scratch;
    with ``opts.face_freeze_epochs`` the backbone's stem does not train during the first epochs."""
    n_classes = len(cfg.labels)
    device = ctx.device
    model = FaceEncoder(n_classes, cfg.face_encoder, cfg.face.crop_size)
    if init is not None:
        init.apply(model)
    model = model.to(device)
    x_all, y_all = face_crops(data["train"])
    val = [u for s in data["val"] for u in s if u.faces is not None]

    @torch.no_grad()
    def val_acc() -> float:
        if not val:
            return 0.0
        emb = face_embeddings(model, val, cfg.face, device, cfg.train.batch_size)
        logits = model.head(torch.from_numpy(np.stack(emb)).to(device))
        return float(np.mean(logits.argmax(-1).cpu().numpy() == np.array([u.label for u in val])))

    result = fit_model(model, FaceBatches(x_all, y_all, cfg.face), val_acc,
                       scaled_epochs(cfg.train.face_epochs, opts.epochs_scale), cfg, rng, "face_encoder", ctx,
                       batch_size=cfg.train.batch_size, distributed=True, amp=True,
                       freeze=STEM if opts.face_freeze_epochs else (), freeze_epochs=opts.face_freeze_epochs)
    return model, result.val_accuracy


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


def encode(data: dict[str, list[Session]], speech: SpeechEncoder | None, face: FaceEncoder | None,
           cfg: ModelConfig, device: torch.device, progress: bool, splits: Sequence[str] = SPLITS
           ) -> dict[str, Features]:
    """Per split, per session: every utterance's speech features and (where a face was found) its
    face embedding, as the context LSTMs see them; a modality without its encoder is absent (None)."""
    out: dict[str, Features] = {}
    for split in splits:
        f = Features()
        for session in progress_bar(data[split], f"encode ({split})", progress):
            if speech is not None:
                f.speech.append(list(speech_features(speech, session, device)))
            else:
                f.speech.append([None] * len(session))
            if face is None:
                f.face.append([None] * len(session))
                continue
            with_face = [u for u in session if u.faces is not None]
            embs = iter(face_embeddings(face, with_face, cfg.face, device))
            f.face.append([next(embs) if u.faces is not None else None for u in session])
        out[split] = f
    return out
