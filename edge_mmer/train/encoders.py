"""The two encoders, trained per utterance (speech) and per frame (face) with cross-entropy
(paper eq. 2), and the features they give each utterance, computed as the runtime computes them:
one utterance at a time for speech, the mean of the frames' embeddings for the face.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from edge_mmer.config import FaceConfig, ModelConfig
from edge_mmer.features.face import preprocess_faces
from edge_mmer.models import FaceEncoder, SpeechEncoder
from edge_mmer.train.data import Features, Session, UtteranceInput
from edge_mmer.train.fit import fit_model
from edge_mmer.train.options import TrainOptions, scaled_epochs
from edge_mmer.train.options import progress as progress_bar
from edge_mmer.vocab import SPLITS

log = logging.getLogger(__name__)

__all__ = ["encode", "face_embeddings", "fit_face_encoder", "fit_speech_encoder", "speech_features"]


def _pad_mels(mels: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([m.shape[0] for m in mels], dtype=torch.long)
    x = torch.zeros(len(mels), int(lengths.max()), mels[0].shape[1])
    for i, m in enumerate(mels):
        x[i, : m.shape[0]] = torch.from_numpy(m)
    return x, lengths


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

    acc = fit_model(model, batches, torch.no_grad()(val_acc), scaled_epochs(cfg.train.speech_epochs, opts.epochs_scale),
                    cfg, rng, "speech encoder", opts.progress)
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

    acc = fit_model(model, batches, val_acc, scaled_epochs(cfg.train.face_epochs, opts.epochs_scale), cfg, rng,
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
           device: torch.device, progress: bool, splits: Sequence[str] = SPLITS) -> dict[str, Features]:
    """Per split, per session: every utterance's speech features and (where a face was found) its
    face embedding, as the context LSTMs see them."""
    out: dict[str, Features] = {}
    for split in splits:
        f = Features()
        for session in progress_bar(data[split], f"encode ({split})", progress):
            f.speech.append(list(speech_features(speech, session, device)))
            with_face = [u for u in session if u.faces is not None]
            embs = iter(face_embeddings(face, with_face, cfg.face, device))
            f.face.append([next(embs) if u.faces is not None else None for u in session])
        out[split] = f
    return out
