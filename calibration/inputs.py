"""Real inputs per network: what each of a bundle's networks is fed when prepared utterances go
through the decision path.

The encoders see the front ends' output one utterance at a time (the log-mel, the normalised face
crops); the context LSTMs see the encoder features, and the fusion LSTM the masked, concatenated
context features (steps with a face only), each session from a zero state. That is exactly what
:func:`edge_mmer.networks.utterance_channels` feeds them, because it is what runs here, through taps
(:class:`~edge_mmer.calibration.tap.TapRunner`) around the given runners. The INT8 calibration-set
builder keeps every feed as a calibration sample (torch runners); conversion parity gives the same
feeds to PyTorch and to ONNX Runtime. Torch-free: the runners decide what runs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from edge_mmer.bundle import Bundle
from edge_mmer.decision import DecisionHead
from edge_mmer.networks import Networks, utterance_channels
from edge_mmer.runner import Runner
from edge_mmer.vocab import STEP_NETWORKS

from .tap import TapRunner

log = logging.getLogger(__name__)

__all__ = ["NetworkInputs", "Utterance", "record_network_inputs"]


class Utterance(Protocol):
    """One utterance after the training front ends (:class:`edge_mmer.datasets.frontend.UtteranceInput`)."""

    @property
    def mel(self) -> np.ndarray: ...  # (T, n_mels) float32 log-mel

    @property
    def faces(self) -> np.ndarray | None: ...  # (n, S, S, 3) uint8 BGR crops, None without a face


@dataclass
class NetworkInputs:
    """Every network's feeds, in the order they ran."""

    n_utterances: int
    feeds: dict[str, list[dict[str, np.ndarray]]] = field(default_factory=dict)  # network -> one feed per run
    input_names: dict[str, list[str]] = field(default_factory=dict)  # network -> its inputs, manifest order
    steps: dict[str, list[int]] = field(default_factory=dict)  # step network -> runs per session it stepped in
    skipped: dict[str, int] = field(default_factory=dict)  # defective utterances left out, per reason

    @property
    def mels(self) -> list[np.ndarray]:
        """The speech encoder's (T, n_mels) log-mel, one per utterance."""
        return [next(iter(feed.values()))[0] for feed in self.feeds.get("speech_encoder", [])]

    @property
    def faces(self) -> list[np.ndarray]:
        """The face encoder's (n, 3, S, S) normalised crops, one per utterance with a face."""
        return [next(iter(feed.values())) for feed in self.feeds.get("face_encoder", [])]

    def sequences(self, network: str) -> list[np.ndarray]:
        """A step graph's ``x`` per session it stepped in, as (L, D) sequences."""
        feeds = self.feeds.get(network, [])
        out, start = [], 0
        for n in self.steps.get(network, []):
            out.append(np.concatenate([f["x"] for f in feeds[start:start + n]]))
            start += n
        return out

    def arrays(self) -> dict[str, dict[str, list[np.ndarray]]]:
        """``{network: {input name: [array per run]}}``: a calibration set's layout (an input that
        never ran has an empty list)."""
        return {net: {name: [feed[name] for feed in self.feeds.get(net, [])] for name in names}
                for net, names in self.input_names.items()}


def record_network_inputs(bundle: Bundle, runners: Mapping[str, Runner], sessions: Sequence[Sequence[Utterance]],
                          skipped: Mapping[str, int] | None = None) -> NetworkInputs:
    """Run ``sessions`` (each from a zero state) through the decision path on ``runners`` (one per
    network; activated here, left active) and keep every network's feeds."""
    head = DecisionHead.from_bundle(bundle)
    taps = {name: TapRunner(runner) for name, runner in runners.items()}
    networks = Networks(dict(taps))
    networks.activate()
    stepping = [name for name in STEP_NETWORKS if name in taps]  # a single-modality bundle has two or one
    steps: dict[str, list[int]] = {name: [] for name in stepping}
    for session in sessions:
        networks.reset_states()
        before = {name: taps[name].recorded for name in stepping}
        for utt in session:
            crops = None if utt.faces is None else list(utt.faces)
            utterance_channels(networks, head, bundle.config.face, utt.mel, crops)
        for name in stepping:
            if taps[name].recorded > before[name]:
                steps[name].append(taps[name].recorded - before[name])
    return NetworkInputs(n_utterances=sum(len(s) for s in sessions),
                         feeds={name: tap.feeds for name, tap in taps.items()},
                         input_names={name: [s.name for s in runner.inputs] for name, runner in runners.items()},
                         steps=steps, skipped=dict(skipped or {}))
