"""ONNX Runtime against PyTorch on real samples from the bundle's own dataset.

The dataset is the one the bundle was trained on: ``provenance.dataset.spec`` (``KIND:PATH[?options]``,
any kind of :mod:`edge_mmer.datasets.registry`) or, for the synthetic set and bundles that predate
the spec, ``provenance.dataset.path``; ``--data`` replaces the recorded path (the kind and options
are kept) or gives a whole ``KIND:PATH`` spec (:func:`resolve_dataset`). ``N`` utterances of a split
go through the training front ends (:func:`edge_mmer.datasets.frontend.extract_all`, the code
``edge-mmer train`` runs: log-mel, Haar crops; media utterances on the runtime's frame grid, clips
longer than the dataset's ``max_clip_s`` skipped, optionally through the feature cache); an
utterance whose media is defective is skipped and counted, as in training (:func:`prepare_split`).
The encoders see them one utterance at a time; the context LSTMs see each session's encoder
features, the fusion LSTM the masked, concatenated context features (steps with a face), as in
training. The step graphs are stepped through an ONNX Runtime session carrying ``h``/``c`` and
compared with the torch LSTM run on the whole sequence. Per network: the largest absolute
difference and the mean cosine similarity of the output vectors.

A bundle trained on precomputed features (CMU-MOSI ``.csd`` files, MMSA / MulT pickles) has no
encoders: :func:`require_encoders` refuses it (nothing a device could feed from a camera and a
microphone). Finding, opening and preparing the bundle's dataset is :mod:`edge_mmer.datasets.resolve`
(:func:`resolve_dataset`, :func:`open_bundle_dataset`, :func:`prepare_split`, :func:`require_encoders`,
re-exported here).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edge_mmer.bundle import Bundle
from edge_mmer.datasets.resolve import open_bundle_dataset, prepare_split, require_encoders, resolve_dataset
from edge_mmer.errors import DatasetMissingError, DatasetUnusableError, FeatureBundleError
from edge_mmer.features.face import preprocess_faces
from edge_mmer.selection import ChiSquareSelection
from edge_mmer.vocab import ENCODERS

logger = logging.getLogger(__name__)

__all__ = [
    "ENCODERS",
    "FP16_WARN",
    "FP32_TOLERANCE",
    "DatasetMissingError",
    "DatasetUnusableError",
    "FeatureBundleError",
    "ParityInputs",
    "ParityResult",
    "build_parity_inputs",
    "compare_outputs",
    "measure_parity",
    "open_bundle_dataset",
    "prepare_split",
    "require_encoders",
    "resolve_dataset",
]

FP32_TOLERANCE = 1e-4
FP16_WARN = 1e-2


@dataclass(frozen=True)
class ParityResult:
    max_abs: float
    cosine: float
    samples: int

    def to_json(self) -> dict[str, Any]:
        return {"max_abs": self.max_abs, "cosine": self.cosine, "samples": self.samples, "reference": "pytorch"}


@dataclass
class ParityInputs:
    """Real inputs per network, computed from ``n_utterances`` utterances of a split."""

    n_utterances: int
    mels: list[np.ndarray] = field(default_factory=list)  # speech_encoder: (T, n_mels) per utterance
    faces: list[np.ndarray] = field(default_factory=list)  # face_encoder: (n, 3, S, S) per utterance with a face
    sequences: dict[str, list[np.ndarray]] = field(default_factory=dict)  # step graphs: (L, D) per session
    skipped: dict[str, int] = field(default_factory=dict)  # defective utterances left out, per reason


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
def build_parity_inputs(bundle: Bundle, nets: dict[str, nn.Module], dataset: Path | str, n: int = 16,
                        split: str = "val", *, workers: int = 1, cache_dir: Path | None = None,
                        progress: bool = False) -> ParityInputs:
    """Front ends over the first ``n`` usable utterances of ``split`` of ``dataset`` (a synthetic
    directory or a ``KIND:PATH`` spec, see :func:`resolve_dataset`; validation by default; whole
    sessions in order, the last one cut: :func:`prepare_split`), then the torch encoders and context
    LSTMs to get each later network's real inputs. The INT8 calibration builder calls it with
    ``split="train"``."""
    require_encoders(bundle)
    cfg = bundle.config
    ds = open_bundle_dataset(bundle, dataset)
    skipped: dict[str, int] = {}
    sessions = prepare_split(bundle, ds, split, n, workers=workers, cache_dir=cache_dir, progress=progress,
                             skipped=skipped)
    if not sessions:
        why = f" ({', '.join(f'{k} {v}' for k, v in sorted(skipped.items()))} skipped)" if skipped else ""
        raise DatasetUnusableError(f"dataset {dataset} has no usable {split} utterances{why}")
    out = ParityInputs(n_utterances=sum(len(s) for s in sessions), skipped=skipped)
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
        raise DatasetUnusableError(f"parity: no real samples for {name} (no face found in the sampled utterances? "
                                   "pass more with --samples)")
    return compare_outputs(ref, got)
