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
microphone).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from edge_mmer.bundle import Bundle
from edge_mmer.errors import DatasetMissingError, DatasetUnusableError, FeatureBundleError
from edge_mmer.features.face import preprocess_faces
from edge_mmer.selection import ChiSquareSelection
from edge_mmer.vocab import ENCODERS

if TYPE_CHECKING:
    from edge_mmer.datasets.base import LoadedDataset
    from edge_mmer.train import UtteranceInput

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


def require_encoders(bundle: Bundle, action: str = "conversion") -> None:
    """Raise :class:`FeatureBundleError` when the bundle lacks the speech or face encoder (trained on
    precomputed features): its context / fusion LSTMs take a feature dataset's pooled vectors, which
    no device computes from a camera and a microphone, so there is nothing deployable to convert."""
    missing = [n for n in ENCODERS if n not in bundle.networks]
    if not missing:
        return
    prov = bundle.provenance.get("dataset")
    spec = prov.get("spec") or prov.get("path") if isinstance(prov, dict) else prov
    raise FeatureBundleError(
        f"{bundle.path}: {action} needs the speech and face encoders, and this bundle has no "
        f"{' / '.join(missing)} network: it was trained on precomputed features"
        + (f" ({spec})" if spec else "")
        + " (CMU-MOSI .csd files or an MMSA / MulT pickle), so its context and fusion LSTMs take that dataset's "
        "pooled feature vectors, which the runtime cannot compute from a camera and a microphone. Nothing "
        "deployable to export: measure it with `edge-mmer evaluate`, or train on the dataset's media "
        "(e.g. mosi:DIR with the raw segment videos) to get a bundle that converts")


def _recorded(bundle: Bundle) -> dict[str, Any]:
    prov = bundle.provenance.get("dataset")
    if isinstance(prov, dict):
        return prov
    return {"path": prov} if isinstance(prov, str) else {}


def _as_spec(data: str | os.PathLike[str] | None) -> str | None:
    """``data`` when it is a whole ``KIND:PATH[?options]`` spec (and not an existing path), else None."""
    from edge_mmer.datasets.registry import KINDS

    if data is None:
        return None
    text = os.fspath(data)
    if Path(text).exists():
        return None
    kind, sep, rest = text.partition(":")
    return text if sep and rest and kind.strip().lower() in KINDS else None


def _synthetic_dir(path: Path | None, given: bool, seed: Any, bundle: Bundle) -> Path:
    if path is None:
        raise DatasetMissingError(f"{bundle.path}: the manifest records no dataset path (provenance.dataset.path); "
                                  "pass --data DIR")
    if not (path / "dataset.json").is_file():
        where = "given with --data" if given else "recorded in provenance.dataset.path, relative to the current directory"
        regen = f"edge-mmer synth --out {path}" + (f" --seed {seed}" if seed not in (None, 0) else "")
        raise DatasetMissingError(
            f"parity samples: dataset not found at {path} ({where}). Regenerate the synthetic set with "
            f"`{regen}` (the same seed gives byte-identical files), or pass --data DIR")
    return path


def resolve_dataset(bundle: Bundle, data: str | os.PathLike[str] | None = None) -> Path | str:
    """The bundle's dataset, as :func:`edge_mmer.train.load_dataset` takes it: a synthetic directory
    (a :class:`~pathlib.Path`, which must hold ``dataset.json``) or a ``KIND:PATH[?options]`` spec (a str).

    Without ``data``: ``provenance.dataset.spec`` when its kind is not synthetic, else
    ``provenance.dataset.path`` (both relative to the directory training ran in). ``data`` replaces
    the recorded path (the recorded kind and options are kept), or is a whole spec. Raises
    :class:`DatasetMissingError` saying how to get the data; the result is accepted again as ``data``."""
    from edge_mmer.datasets.base import DatasetError
    from edge_mmer.datasets.registry import parse_spec

    rec = _recorded(bundle)
    kind = str(rec.get("kind") or "synthetic").lower()
    given = _as_spec(data)
    if given is None and kind == "synthetic":
        path = Path(data) if data is not None else Path(rec["path"]) if rec.get("path") else None
        return _synthetic_dir(path, data is not None, rec.get("seed"), bundle)
    if given is None:
        recorded = rec.get("spec") or (f"{kind}:{rec['path']}" if rec.get("path") else None)
        if recorded is None and data is None:
            raise DatasetMissingError(f"{bundle.path}: the manifest records no dataset (provenance.dataset.spec); "
                                      f"pass --data {kind}:PATH")
        if data is None:
            given = str(recorded)
        else:
            query = str(recorded).partition(":")[2].partition("?")[2] if recorded else ""
            given = f"{kind}:{os.fspath(data)}" + (f"?{query}" if query else "")
    try:
        spec = parse_spec(given)
    except DatasetError as exc:
        raise DatasetMissingError(f"dataset {given!r}: {exc}") from None
    if spec.kind == "synthetic":
        return _synthetic_dir(spec.path, data is not None, rec.get("seed"), bundle)
    if not spec.path.exists():
        where = ("given with --data" if data is not None else
                 "recorded in provenance.dataset.spec, relative to the directory training ran in")
        raise DatasetMissingError(
            f"parity samples: the {spec.kind} dataset is not at {spec.path} ({where}). Pass --data PATH (the "
            f"dataset's {'file' if spec.kind == 'csv' else 'root'} on this machine; the recorded kind and options "
            f"are kept) or --data {spec.kind}:PATH[?options]")
    return spec.text


def open_bundle_dataset(bundle: Bundle, dataset: Path | str) -> LoadedDataset:
    """Load ``dataset`` (from :func:`resolve_dataset`) through the datasets registry and check that
    it fits the bundle: the same labels, media (not precomputed features). Raises
    :class:`~edge_mmer.datasets.base.DatasetError` (malformed) or :class:`DatasetUnusableError`."""
    from edge_mmer.datasets.registry import open_dataset

    ds = open_dataset(f"synthetic:{dataset}" if isinstance(dataset, Path) else dataset)
    if tuple(ds.labels) != tuple(bundle.labels):
        raise DatasetUnusableError(f"dataset {dataset} has labels {list(ds.labels)}, the bundle {list(bundle.labels)}")
    if ds.features_only:
        raise DatasetUnusableError(f"dataset {dataset} holds precomputed features, not media: the bundle's encoders "
                                   "need audio and video (pass the dataset's media with --data)")
    return ds


def prepare_split(bundle: Bundle, ds: LoadedDataset, split: str, n: int | None, *, workers: int = 1,
                  cache_dir: Path | None = None, progress: bool = False,
                  skipped: dict[str, int] | None = None) -> list[list[UtteranceInput]]:
    """The first ``n`` usable utterances of ``split`` (all with None; whole sessions in order, the
    last one cut) through the training front ends: :func:`~edge_mmer.datasets.frontend.extract_all`
    with the dataset's ``max_clip_s`` (workers, feature cache), as ``edge-mmer train`` runs them.
    Defective utterances are left out and counted in ``skipped`` (reason -> count), as training does."""
    from edge_mmer.datasets.frontend import extract_all
    from edge_mmer.train import UtteranceInput

    cfg = bundle.config
    left = n if n is not None else 1 << 30
    pending = list(ds.sessions(split))
    out: list[list[UtteranceInput]] = []
    counts = skipped if skipped is not None else {}
    while left > 0 and pending:
        batch: list[list[Any]] = []
        want = left
        while pending and want > 0:  # enough sessions for what is still wanted
            utts = pending.pop(0)[:want]
            batch.append(utts)
            want -= len(utts)
        entries, _ = extract_all([u for s in batch for u in s], cfg, cache_dir=cache_dir, workers=workers,
                                 progress=progress, max_clip_s=ds.max_clip_s, desc=f"front ends ({split})")
        for utts in batch:
            items = []
            for utt in utts[:left]:
                entry = entries[utt.id]
                if entry.error or entry.mel is None:
                    reason = entry.error or "no_audio"
                    counts[reason] = counts.get(reason, 0) + 1
                    logger.debug("%s: skipped (%s: %s)", utt.id, reason, entry.detail)
                    continue
                items.append(UtteranceInput(uid=utt.id, label=utt.label_index, mel=entry.mel, faces=entry.faces))
            left -= len(items)
            if items:
                out.append(items)
    if counts:
        logger.warning("%s: %d %s utterances skipped (%s), as training skips them", ds.spec, sum(counts.values()),
                       split, ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return out


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
