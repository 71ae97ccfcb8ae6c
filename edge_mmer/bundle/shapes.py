"""TensorRT optimization-profile shapes (min / opt / max) for every network of a model bundle.

Part of the bundle contract: the converter builds plans with these ranges and records them, and the
runtime hands the same ranges to ONNX Runtime's TensorRT EP, so both derive them here, torch-free.

TensorRT needs, for each input with a dynamic axis, the smallest, the typical and the largest shape
it will see. They follow from the bundle's front ends, never from guesses:

* ``time`` (speech encoder, log-mel frames): the frames of an utterance of ``audio.min_utterance_s``
  .. ``audio.max_utterance_s``, counted exactly as :func:`edge_mmer.features.audio.n_frames` counts
  them, the maximum as the VAD cuts it (whole VAD frames, :data:`VAD_FRAME_MS`); opt = a typical
  utterance (``TYPICAL_UTTERANCE_S``). A longer input still is clamped by the runtime
  (:mod:`edge_mmer.runtime.runners.fit`).
* ``batch`` (face encoder, face crops of one utterance): 1 ..
  ``max(face.frames_per_utterance, ceil(face.analysis_fps * audio.max_utterance_s))``;
  opt = ``face.frames_per_utterance``.

Step graphs (context and fusion LSTMs) have only fixed dimensions: min = opt = max. DLA takes static
shapes only: :func:`static_profile_for_dla` pins every input to one shape.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from edge_mmer.bundle.views import NetworkSpec
from edge_mmer.config import ModelConfig
from edge_mmer.features.audio import n_frames

log = logging.getLogger(__name__)

Shape = tuple[int, ...]
ShapeRange = tuple[Shape, Shape, Shape]

TYPICAL_UTTERANCE_S = 2.5
"""The utterance length TensorRT tunes the speech encoder for (opt of the ``time`` axis)."""

VAD_FRAME_MS = (10, 20, 30)
"""The frame sizes webrtcvad accepts. The VAD cuts an utterance after the frame that reaches
``max_utterance_s``, so with 30 ms frames 8 s becomes 267 frames = 8.01 s = 799 log-mel frames, not 798."""


def _vad_cut_samples(seconds: float, sample_rate: int) -> int:
    """The longest utterance the VAD can cut at ``seconds``: whole frames of any allowed size, rounded up."""
    return max(math.ceil(seconds * 1000.0 / ms - 1e-9) * ms * sample_rate // 1000 for ms in VAD_FRAME_MS)


def speech_frame_range(config: ModelConfig) -> tuple[int, int, int]:
    """(min, opt, max) log-mel frames of an utterance, from the bundle's audio front end."""
    audio = config.audio

    def frames(seconds: float) -> int:
        return n_frames(max(1, round(seconds * audio.sample_rate)), audio)

    lo = frames(audio.min_utterance_s)
    hi = n_frames(max(1, _vad_cut_samples(audio.max_utterance_s, audio.sample_rate)), audio)
    opt = min(max(frames(TYPICAL_UTTERANCE_S), lo), hi)
    return lo, opt, hi


def face_batch_range(config: ModelConfig) -> tuple[int, int, int]:
    """(min, opt, max) face crops per utterance, from the face front end and the longest utterance."""
    per_utt = config.face.frames_per_utterance
    hi = max(per_utt, math.ceil(config.face.analysis_fps * config.audio.max_utterance_s))
    return 1, per_utt, hi


AXIS_RANGES: dict[str, Callable[[ModelConfig], tuple[int, int, int]]] = {
    "time": speech_frame_range,
    "batch": face_batch_range,
}
"""Dynamic axis name (as the manifest writes it) -> its (min, opt, max) from the bundle config."""


def _check_range(name: str, rng: ShapeRange) -> ShapeRange:
    if len(rng) != 3:
        raise ValueError(f"profile for input '{name}': expected (min, opt, max), got {rng!r}")
    lo, opt, hi = (tuple(int(d) for d in s) for s in rng)
    if not (len(lo) == len(opt) == len(hi)):
        raise ValueError(f"profile for input '{name}': min/opt/max have different ranks: {lo}, {opt}, {hi}")
    for axis, (a, b, c) in enumerate(zip(lo, opt, hi, strict=True)):
        if not 1 <= a <= b <= c:
            raise ValueError(
                f"profile for input '{name}', axis {axis}: need 1 <= min <= opt <= max, got {a}, {b}, {c}"
            )
    return lo, opt, hi


@dataclass(frozen=True)
class ShapeProfile:
    """One TensorRT optimization profile: input name -> (min, opt, max) shapes, validated."""

    shapes: Mapping[str, ShapeRange] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checked = {str(name): _check_range(str(name), rng) for name, rng in self.shapes.items()}
        object.__setattr__(self, "shapes", checked)

    @property
    def dynamic_inputs(self) -> list[str]:
        """Inputs whose min, opt and max differ (DLA refuses these)."""
        return [name for name, (lo, opt, hi) in self.shapes.items() if not lo == opt == hi]

    @property
    def is_static(self) -> bool:
        return not self.dynamic_inputs

    def to_record(self) -> dict[str, dict[str, list[int]]]:
        """JSON-ready form, as recorded beside a plan: ``{input: {"min": [...], "opt": [...], "max": [...]}}``."""
        return {
            name: {"min": list(lo), "opt": list(opt), "max": list(hi)} for name, (lo, opt, hi) in self.shapes.items()
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Mapping[str, Any]]) -> ShapeProfile:
        return cls(
            {
                name: (tuple(r["min"]), tuple(r["opt"]), tuple(r["max"]))
                for name, r in record.items()
            }
        )


def _dim_range(network_name: str, name: str, dim: Any, config: ModelConfig) -> tuple[int, int, int]:
    if isinstance(dim, int) and not isinstance(dim, bool):
        return dim, dim, dim
    if isinstance(dim, str):
        resolve = AXIS_RANGES.get(dim)
        if resolve is None:
            raise ValueError(
                f"network '{network_name}', input '{name}': unknown dynamic axis '{dim}' "
                f"(known: {', '.join(sorted(AXIS_RANGES))})"
            )
        return resolve(config)
    raise ValueError(f"network '{network_name}', input '{name}': bad dimension {dim!r}")


def derive_profiles(
    network_name: str, entry: NetworkSpec | Mapping[str, Any], config: ModelConfig
) -> dict[str, ShapeRange]:
    """(min, opt, max) shape per input of one network.

    ``entry`` is the network's view (:meth:`edge_mmer.bundle.Bundle.network`) or its manifest entry
    ``manifest["networks"][network_name]``; string dimensions are dynamic axes resolved through
    :data:`AXIS_RANGES`. An unknown axis name raises :class:`ValueError` naming the network, the
    input and the axis.
    """
    if isinstance(entry, NetworkSpec):
        inputs = [(spec.name, spec.shape) for spec in entry.inputs]
    else:
        inputs = [(str(item["name"]), item["shape"]) for item in entry.get("inputs", [])]
    ranges: dict[str, ShapeRange] = {}
    for name, shape in inputs:
        dims = [_dim_range(network_name, name, dim, config) for dim in shape]
        lo, opt, hi = (tuple(d[i] for d in dims) for i in range(3))
        ranges[name] = _check_range(name, (lo, opt, hi))
    if not ranges:
        raise ValueError(f"network '{network_name}': the manifest entry lists no inputs")
    log.debug("profiles for %s: %s", network_name, ranges)
    return ranges


def static_profile_for_dla(
    profiles: Mapping[str, ShapeRange] | ShapeProfile, pick: Literal["min", "opt", "max"] = "opt"
) -> dict[str, ShapeRange]:
    """Pin every input to one shape (min = opt = max), as DLA requires; ``pick`` chooses which.

    With ``opt`` the face encoder takes exactly ``frames_per_utterance`` crops per call; the runtime
    pads or splits to that batch.
    """
    shapes = profiles.shapes if isinstance(profiles, ShapeProfile) else profiles
    index = {"min": 0, "opt": 1, "max": 2}[pick]
    out: dict[str, ShapeRange] = {}
    for name, rng in shapes.items():
        shape = _check_range(name, rng)[index]
        out[name] = (shape, shape, shape)
    return out
