"""The torch-free back end of the pipeline: chi-square masks -> LIBSVMs -> fuzzy integral.

Training, offline evaluation and the runtime all call :class:`DecisionHead`, so the decision a
deployed unit makes is the one the metrics were measured on.

Channels: ``speech`` (masked speech context features), ``face`` (masked face context features) and
``fused`` (the fusion LSTM's FC features). A channel whose input is absent (no face in view) is
left out and the fuzzy integral runs over the channels present. A single-modality bundle has one
modality's mask and one channel's LIBSVM (:func:`channels_for`): its head holds only those.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from edge_mmer.bundle import Bundle, BundleError
from edge_mmer.fuzzy import FuzzyMeasure, fuzzy_integral
from edge_mmer.selection import ChiSquareSelection
from edge_mmer.svm import TrainedSVM
from edge_mmer.vocab import CHANNELS, MODALITIES

log = logging.getLogger(__name__)

__all__ = ["Decision", "DecisionHead", "channels_for"]


def channels_for(modalities: Iterable[str]) -> tuple[str, ...]:
    """The decision channels of a bundle over ``modalities``: each modality's own, plus ``fused``
    when both are there (in :data:`~edge_mmer.vocab.CHANNELS` order)."""
    present = set(modalities)
    unknown = present - set(MODALITIES)
    if unknown or not present:
        raise ValueError(f"modalities: expected some of {', '.join(MODALITIES)}, got {sorted(present)}")
    return tuple(c for c in CHANNELS if c in present or (c == "fused" and present == set(MODALITIES)))


@dataclass(frozen=True)
class Decision:
    """One utterance's decision: the final label and scores plus each channel's supports."""

    label_index: int
    scores: np.ndarray  # (K,) fuzzy-integral scores
    channels: dict[str, np.ndarray | None]  # channel -> (K,) LIBSVM probabilities, None when absent


@dataclass
class DecisionHead:
    """Masks, SVMs and the fuzzy measure of one bundle."""

    selections: dict[str, ChiSquareSelection]  # "speech" / "face" (the modalities present)
    svms: dict[str, TrainedSVM]  # "speech" / "face" / "fused" (the channels present)
    measure: FuzzyMeasure
    method: str = "sugeno"

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> DecisionHead:
        """Load masks, SVMs and the fuzzy measure; every file's sha256 is checked as it is read."""
        selections = {}
        for modality in (m for m in MODALITIES if m in bundle.selection_specs):
            rel = bundle.selection_spec(modality).file
            try:
                selections[modality] = ChiSquareSelection.from_arrays(bundle.load_tensors(rel))
            except (KeyError, ValueError) as exc:
                raise BundleError(bundle.path, f"bundle file '{rel}'",
                                  f"not a valid chi-square selection: {exc}") from exc
        if not selections:
            raise BundleError(bundle.path, "manifest.json field 'selection'", "no speech or face selection")
        svms = {name: bundle.load_svm(name) for name in channels_for(selections)}
        try:
            measure = FuzzyMeasure.from_dict(bundle.fuzzy)
        except ValueError as exc:
            raise BundleError(bundle.path, "manifest.json field 'fuzzy'", str(exc)) from exc
        method = str(bundle.fuzzy.get("integral", "sugeno"))
        if method not in ("sugeno", "choquet"):
            raise BundleError(bundle.path, "manifest.json field 'fuzzy.integral'",
                              f"expected 'sugeno' or 'choquet', got {method!r}")
        return cls(selections=selections, svms=svms, measure=measure, method=method)

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels this head decides with (its LIBSVMs), in :data:`CHANNELS` order."""
        return tuple(c for c in CHANNELS if c in self.svms)

    def mask(self, modality: str, features: np.ndarray) -> np.ndarray:
        """Apply the modality's chi-square mask to (N, F) or (F,) features."""
        return self.selections[modality].apply(features)

    def channel_probabilities(self, channel_inputs: dict[str, np.ndarray | None]) -> dict[str, np.ndarray | None]:
        """(N, F) inputs per channel -> (N, K) LIBSVM probabilities; None stays None."""
        out: dict[str, np.ndarray | None] = {}
        for name in CHANNELS:
            x = channel_inputs.get(name)
            if x is not None and name not in self.svms:
                raise ValueError(f"channel {name!r} has inputs but this bundle has no {name} LIBSVM "
                                 f"(it has {', '.join(self.svms)})")
            out[name] = None if x is None else self.svms[name].predict_proba(np.atleast_2d(x))
        return out

    def fuse(self, probs: dict[str, np.ndarray | None], method: str | None = None) -> np.ndarray:
        """Fuzzy-integral scores for one utterance from per-channel (K,) supports (None = absent)."""
        present = {k: v for k, v in probs.items() if v is not None}
        if not present:
            raise ValueError("fuse: no channel present")
        return fuzzy_integral(present, self.measure, method or self.method)

    def decide(self, channel_inputs: dict[str, np.ndarray | None], method: str | None = None) -> Decision:
        """One utterance: per-channel feature vectors (already masked) -> :class:`Decision`."""
        probs = self.channel_probabilities(channel_inputs)
        single = {k: (None if v is None else v[0]) for k, v in probs.items()}
        scores = self.fuse(single, method)
        return Decision(label_index=int(np.argmax(scores)), scores=scores, channels=single)
