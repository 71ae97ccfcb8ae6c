"""The benchmark's networks and what they are fed: each network built with seeded random weights
from the manifest entry training would write for it (:func:`edge_mmer.train.outputs.network_entries`),
the timed cases per network, and realistically scaled synthetic inputs (log-mel-like spectra,
image-like crops, bounded LSTM features) for timing and for INT8 calibration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_mmer.bundle.views import NetworkSpec, TensorSpec
from edge_mmer.config import ModelConfig
from edge_mmer.vocab import NETWORKS

__all__ = ["HEAVY_CROP", "SPEECH_FRAMES", "Case", "build_network", "calibration_samples", "case_inputs", "cases_for",
           "network_entry", "network_spec"]

SPEECH_FRAMES = 300  # 3 s of 10 ms log-mel frames
HEAVY_CROP = 224  # face encoders at this crop size or above (the paper's 299 px) get --heavy-runs
_LOG_MEL_MEAN, _LOG_MEL_STD = -6.0, 2.5  # synthetic log-mel statistics (natural log of power)


@dataclass(frozen=True)
class Case:
    """One timed input: a network of a config at one input shape."""

    config: str
    network: str
    label: str  # e.g. "batch 8"
    shapes: dict[str, tuple[int, ...]]
    runs: int
    warmup: int


# --------------------------------------------------------------------------------------- networks


def _fusion_input_dim(cfg: ModelConfig) -> int:
    """What a trained bundle's fusion LSTM takes: the selected speech + face context features."""
    per_modality = max(1, round(cfg.context.hidden * cfg.selection.keep_fraction))
    return 2 * per_modality


def network_entry(cfg: ModelConfig, name: str) -> dict[str, Any]:
    """The manifest entry (class, arch, inputs, outputs) a bundle of ``cfg`` records for ``name``:
    :func:`edge_mmer.train.outputs.network_entries`, the builder training writes bundles with."""
    from edge_mmer.train.outputs import encoder_dims, network_entries  # torch: only once a network is built

    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r} (known: {', '.join(NETWORKS)})")
    return network_entries(cfg, {**encoder_dims(cfg), "fusion_in": _fusion_input_dim(cfg)})[name]


def network_spec(cfg: ModelConfig, name: str) -> NetworkSpec:
    """:func:`network_entry` as the typed view a bundle's reader gets (no weights, no artifacts)."""
    return NetworkSpec.from_entry(name, network_entry(cfg, name))


def build_network(cfg: ModelConfig, name: str, seed: int = 0) -> Any:
    """The torch module for ``name`` with seeded random weights, in eval mode, on the CPU."""
    import torch

    from edge_mmer.models import ContextLSTM, FaceEncoder, FusionLSTM, SpeechEncoder

    net = network_spec(cfg, name)
    arch = net.arch or {}
    torch.manual_seed(seed + NETWORKS.index(name))
    module: torch.nn.Module
    if name == "speech_encoder":
        speech = SpeechEncoder(arch["n_mels"], arch["n_classes"], cfg.speech_encoder)
        # as the trainer would: normalise the synthetic log-mel statistics away
        speech.set_input_normalization(torch.full((cfg.audio.n_mels,), _LOG_MEL_MEAN),
                                       torch.full((cfg.audio.n_mels,), _LOG_MEL_STD))
        module = speech
    elif name == "face_encoder":
        module = FaceEncoder(arch["n_classes"], cfg.face_encoder, arch["img_size"])
    elif net.network_class == "ContextLSTM":
        module = ContextLSTM(arch["input_dim"], arch["n_classes"], cfg.context)
    else:
        module = FusionLSTM(arch["input_dim"], arch["n_classes"], cfg.fusion)
    return module.eval().cpu()

# ----------------------------------------------------------------------------------------- inputs


def _log_mel(rng: np.random.Generator, frames: int, n_mels: int) -> np.ndarray:
    """Log-mel-like (1, frames, n_mels): smooth spectral envelope + frame energy + noise."""
    envelope = np.convolve(rng.normal(0, 1.5, n_mels + 8), np.ones(9) / 9, mode="valid")[:n_mels]
    energy = np.convolve(rng.normal(0, 2.0, frames + 20), np.ones(21) / 21, mode="valid")[:frames]
    x = _LOG_MEL_MEAN + envelope[None, :] + 3 * energy[:, None] + rng.normal(0, 1.0, (frames, n_mels))
    return x[None].astype(np.float32)


def _faces(rng: np.random.Generator, batch: int, size: int, cfg: ModelConfig) -> np.ndarray:
    """Normalised image-like crops (batch, 3, size, size): smooth blobs in [0, 1], then (x - mean) / std."""
    coarse = rng.uniform(0, 1, (batch, 3, 8, 8))
    idx = np.minimum((np.arange(size) * 8) // size, 7)
    img = coarse[:, :, idx][:, :, :, idx] * 0.8 + rng.uniform(0, 0.2, (batch, 3, size, size))
    mean = np.asarray(cfg.face.mean).reshape(1, 3, 1, 1)
    std = np.asarray(cfg.face.std).reshape(1, 3, 1, 1)
    out: np.ndarray = ((img - mean) / std).astype(np.float32)
    return out


def _input(cfg: ModelConfig, name: str, io_spec: TensorSpec, shape: tuple[int, ...],
           rng: np.random.Generator) -> np.ndarray:
    if name == "speech_encoder":
        return _log_mel(rng, shape[1], shape[2])
    if name == "face_encoder":
        return _faces(rng, shape[0], shape[2], cfg)
    if io_spec.name == "c":  # LSTM cell state: unbounded, mostly within a few units
        return rng.normal(0, 1.0, shape).astype(np.float32)
    if name == "fusion" and io_spec.name == "x":  # selected context features: LSTM outputs
        return np.tanh(rng.normal(0, 0.7, shape)).astype(np.float32)
    if name == "face_context" and io_spec.name == "x":  # ReLU embeddings: non-negative
        return np.maximum(rng.normal(0, 1.0, shape), 0).astype(np.float32)
    return np.tanh(rng.normal(0, 0.7, shape)).astype(np.float32)  # speech features, h


def case_inputs(cfg: ModelConfig, case: Case, seed: int = 0) -> dict[str, np.ndarray]:
    """The case's input arrays by ONNX input name."""
    net = network_spec(cfg, case.network)
    rng = np.random.default_rng(seed)
    return {spec.name: _input(cfg, case.network, spec, case.shapes[spec.name], rng) for spec in net.inputs}


def cases_for(cfg: ModelConfig, name: str, runs: int, warmup: int, heavy_runs: int) -> list[Case]:
    """Speech encoder (1, 300 frames, n_mels); face encoder at frames_per_utterance crops and at 1;
    step graphs at batch 1. Face encoders at >= HEAVY_CROP px are timed ``heavy_runs`` times."""
    net = network_spec(cfg, name)
    if name == "speech_encoder":
        shape = (1, SPEECH_FRAMES, cfg.audio.n_mels)
        return [Case(cfg.name, name, f"{SPEECH_FRAMES} frames", {"log_mel": shape}, runs, warmup)]
    if name == "face_encoder":
        crop = cfg.face.crop_size
        n = heavy_runs if crop >= HEAVY_CROP else runs
        batches = sorted({cfg.face.frames_per_utterance, 1}, reverse=True)
        return [Case(cfg.name, name, f"batch {b}", {"face": (b, 3, crop, crop)}, n, warmup) for b in batches]
    shapes = {spec.name: tuple(int(d) for d in spec.shape) for spec in net.inputs}
    return [Case(cfg.name, name, "step, batch 1", shapes, runs, warmup)]


def calibration_samples(cfg: ModelConfig, name: str, n: int, seed: int = 1000) -> list[dict[str, np.ndarray]]:
    """``n`` realistic-scale single inputs (batch 1; speech at 100..500 frames) for calibration."""
    net = network_spec(cfg, name)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        feed = {}
        for spec in net.inputs:
            if name == "speech_encoder":
                shape: tuple[int, ...] = (1, int(rng.integers(100, 500)), cfg.audio.n_mels)
            elif name == "face_encoder":
                shape = (1, 3, cfg.face.crop_size, cfg.face.crop_size)
            else:
                shape = tuple(int(d) for d in spec.shape)
            feed[spec.name] = _input(cfg, name, spec, shape, rng)
        out.append(feed)
    return out
