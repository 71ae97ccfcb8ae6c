"""ONNX Runtime against PyTorch on real samples from the bundle's own dataset.

``N`` validation utterances go through the training front ends (log-mel, Haar crops:
:func:`edge_mmer.train._prepare_utterance`, the same code). The encoders see them one utterance
at a time; the context LSTMs see each session's encoder features, the fusion LSTM the masked,
concatenated context features (steps with a face), as in training. The step graphs are stepped
through an ONNX Runtime session carrying ``h``/``c`` and compared with the torch LSTM run on the
whole sequence. Per network: the largest absolute difference and the mean cosine similarity of
the output vectors.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edge_mmer.bundle import Bundle
from edge_mmer.features.face import preprocess_faces
from edge_mmer.selection import ChiSquareSelection

logger = logging.getLogger(__name__)

__all__ = [
    "FP16_WARN",
    "FP32_TOLERANCE",
    "DatasetMissingError",
    "ParityInputs",
    "ParityResult",
    "build_parity_inputs",
    "compare_outputs",
    "measure_parity",
    "resolve_dataset",
]

FP32_TOLERANCE = 1e-4
FP16_WARN = 1e-2


class DatasetMissingError(FileNotFoundError):
    """The bundle's dataset (for parity samples) is not on this machine."""


@dataclass(frozen=True)
class ParityResult:
    max_abs: float
    cosine: float
    samples: int

    def to_json(self) -> dict[str, Any]:
        return {"max_abs": self.max_abs, "cosine": self.cosine, "samples": self.samples, "reference": "pytorch"}


@dataclass
class ParityInputs:
    """Real inputs per network, computed from ``n_utterances`` validation utterances."""

    n_utterances: int
    mels: list[np.ndarray] = field(default_factory=list)  # speech_encoder: (T, n_mels) per utterance
    faces: list[np.ndarray] = field(default_factory=list)  # face_encoder: (n, 3, S, S) per utterance with a face
    sequences: dict[str, list[np.ndarray]] = field(default_factory=dict)  # step graphs: (L, D) per session


def resolve_dataset(bundle: Bundle, data: str | os.PathLike[str] | None = None) -> Path:
    """The dataset directory: ``data`` if given, else the manifest's ``provenance.dataset.path``
    (relative to the directory training ran in). Raises :class:`DatasetMissingError` saying how to get it."""
    spec = bundle.provenance.get("dataset")
    recorded = spec.get("path") if isinstance(spec, dict) else spec if isinstance(spec, str) else None
    seed = spec.get("seed") if isinstance(spec, dict) else None
    path = Path(data) if data is not None else Path(recorded) if recorded else None
    if path is None:
        raise DatasetMissingError(f"{bundle.path}: the manifest records no dataset path (provenance.dataset.path); "
                                  "pass --data DIR")
    if not (path / "dataset.json").is_file():
        where = "given with --data" if data is not None else "recorded in provenance.dataset.path, relative to the current directory"
        regen = f"edge-mmer synth --out {path}" + (f" --seed {seed}" if seed not in (None, 0) else "")
        raise DatasetMissingError(
            f"parity samples: dataset not found at {path} ({where}). Regenerate the synthetic set with "
            f"`{regen}` (the same seed gives byte-identical files), or pass --data DIR")
    return path


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a2 = a.reshape(len(a), -1).astype(np.float64)
    b2 = b.reshape(len(b), -1).astype(np.float64)
    na, nb = np.linalg.norm(a2, axis=1), np.linalg.norm(b2, axis=1)
    cos = (a2 * b2).sum(1) / np.maximum(na * nb, 1e-30)
    return np.where((na == 0) & (nb == 0), 1.0, cos)


def compare_outputs(ref: list[np.ndarray], got: list[np.ndarray]) -> ParityResult:
    """Rows are output vectors (B, F); max |ref - got| over all, mean cosine over the rows."""
    r = np.concatenate([np.asarray(x, np.float64).reshape(-1, np.asarray(x).shape[-1]) for x in ref])
    g = np.concatenate([np.asarray(x, np.float64).reshape(-1, np.asarray(x).shape[-1]) for x in got])
    if r.shape != g.shape:
        raise ValueError(f"parity: output shapes differ: {r.shape} vs {g.shape}")
    return ParityResult(max_abs=float(np.abs(r - g).max()), cosine=float(_cosine(r, g).mean()), samples=len(r))


@torch.no_grad()
def build_parity_inputs(bundle: Bundle, nets: dict[str, nn.Module], dataset_dir: Path, n: int = 16,
                        split: str = "val") -> ParityInputs:
    """Front ends over the first ``n`` utterances of ``split`` (validation by default; whole sessions
    in order, the last one cut), then the torch encoders and context LSTMs to get each later
    network's real inputs. The INT8 calibration builder calls it with ``split="train"``."""
    from edge_mmer.datasets.synthetic import load_synthetic
    from edge_mmer.features.face import HaarFaceDetector
    from edge_mmer.train import _prepare_utterance

    cfg = bundle.config
    ds = load_synthetic(dataset_dir)
    if tuple(ds.labels) != tuple(bundle.labels):
        raise ValueError(f"dataset {dataset_dir} has labels {list(ds.labels)}, the bundle {list(bundle.labels)}")
    detector = HaarFaceDetector()
    sessions = []
    left = n
    for utts in ds.sessions(split):
        if left <= 0:
            break
        sessions.append([_prepare_utterance(u, cfg, detector) for u in utts[:left]])
        left -= len(sessions[-1])
    if not sessions:
        raise ValueError(f"dataset {dataset_dir} has no {split} utterances")
    out = ParityInputs(n_utterances=sum(len(s) for s in sessions))
    speech, face = nets["speech_encoder"], nets["face_encoder"]
    masks = {m: ChiSquareSelection.from_arrays(bundle.load_tensors(bundle.selection_file(m))) for m in ("speech", "face")}
    for key in ("speech_context", "face_context", "fusion"):
        out.sequences[key] = []
    for session in sessions:
        s_feats = []
        f_feats: list[np.ndarray | None] = []
        for utt in session:
            out.mels.append(utt.mel)
            s_feats.append(speech(torch.from_numpy(utt.mel)[None])[0][0].numpy())
            if utt.faces is None:
                f_feats.append(None)
                continue
            x = preprocess_faces(list(utt.faces), cfg.face)
            out.faces.append(x)
            f_feats.append(face(torch.from_numpy(x))[0].mean(0).numpy())
        s_seq = np.stack(s_feats).astype(np.float32)
        present = [i for i, f in enumerate(f_feats) if f is not None]
        out.sequences["speech_context"].append(s_seq)
        s_ctx = nets["speech_context"](torch.from_numpy(s_seq)[None])[0][0].numpy()
        if present:
            f_seq = np.stack([f for f in f_feats if f is not None]).astype(np.float32)
            out.sequences["face_context"].append(f_seq)
            f_ctx = nets["face_context"](torch.from_numpy(f_seq)[None])[0][0].numpy()
            joint = np.concatenate([masks["speech"].apply(s_ctx[present]), masks["face"].apply(f_ctx)], axis=1)
            out.sequences["fusion"].append(joint.astype(np.float32))
    logger.info("real inputs: %d %s utterances in %d sessions (%d with a face)", out.n_utterances, split,
                len(sessions), len(out.faces))
    return out


@torch.no_grad()
def measure_parity(name: str, entry: dict[str, Any], module: nn.Module, session: Any, inputs: ParityInputs) -> ParityResult:
    """Run the torch network and the ONNX Runtime ``session`` on the real inputs for ``name``."""
    in_names = [i["name"] for i in entry["inputs"]]
    out_names = [o["name"] for o in entry["outputs"]]
    ref: list[np.ndarray] = []
    got: list[np.ndarray] = []
    cls = entry.get("class")
    if cls in ("SpeechEncoder", "FaceEncoder"):
        batches = [m[None] for m in inputs.mels] if cls == "SpeechEncoder" else inputs.faces
        for x in batches:
            ref.append(module.features(torch.from_numpy(np.ascontiguousarray(x, np.float32))).numpy())  # type: ignore[operator]
            got.append(session.run([out_names[0]], {in_names[0]: np.ascontiguousarray(x, np.float32)})[0])
    else:
        hidden = int(entry["inputs"][1]["shape"][-1])
        state_ref: list[np.ndarray] = []
        state_got: list[np.ndarray] = []
        for seq in inputs.sequences.get(name, []):
            y_ref, _, (h_ref, c_ref) = module(torch.from_numpy(seq)[None])
            ref.append(y_ref[0].numpy())
            h = np.zeros((1, hidden), np.float32)
            c = np.zeros((1, hidden), np.float32)
            ys = []
            for x_t in seq:
                y, h, c = session.run(out_names, {in_names[0]: x_t[None], in_names[1]: h, in_names[2]: c})
                ys.append(y[0])
            got.append(np.stack(ys))
            state_ref.append(np.concatenate([h_ref[0].numpy(), c_ref[0].numpy()], axis=1))
            state_got.append(np.concatenate([h, c], axis=1))
        if state_ref:  # the carried state must match too (max |diff| only)
            result = compare_outputs(ref, got)
            state = compare_outputs(state_ref, state_got)
            return ParityResult(max(result.max_abs, state.max_abs), result.cosine, result.samples)
    if not ref:
        raise ValueError(f"parity: no real samples for {name} (no validation utterance with a face?)")
    return compare_outputs(ref, got)
