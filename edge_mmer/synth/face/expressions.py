"""Facial expressions of the synthetic speakers: one prototype per emotion, jittered per utterance.

The face is deliberately ambiguous between ``angry`` and ``disgust`` (both lowered, angled brows;
they differ only subtly in the mouth/nose), whereas the synthetic voice confuses ``neutral`` and
``disgust``: each modality alone is imperfect, so fusion has something to do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_mmer.config import LABELS

__all__ = ["Expression", "base_expression", "neutral_expression", "sample_expression"]


@dataclass(frozen=True)
class Expression:
    """Facial expression parameters (all dimensionless)."""

    brow_raise: float = 0.0  # + raises the brows (surprise/fear), - lowers
    brow_angle: float = 0.0  # + inner ends down (anger), - inner ends up (sadness)
    eye_open: float = 1.0  # eye aperture multiplier
    mouth_curve: float = 0.0  # + smile, - frown
    mouth_open: float = 0.0  # resting jaw opening, 0..1
    mouth_width: float = 1.0  # mouth width multiplier
    nose_wrinkle: float = 0.0  # 0..1, wrinkles on the nose bridge
    upper_lip_raise: float = 0.0  # 0..1, raised upper lip (disgust)
    cheek_raise: float = 0.0  # 0..1, raised cheeks (smile)


# Per-class expression prototypes.  angry and disgust are intentionally close.
_PROTOTYPES: dict[str, Expression] = {
    "neutral": Expression(),
    "happy": Expression(
        brow_raise=0.15,
        brow_angle=-0.05,
        eye_open=0.85,
        mouth_curve=1.0,
        mouth_open=0.25,
        mouth_width=1.2,
        cheek_raise=1.0,
    ),
    "angry": Expression(
        brow_raise=-0.65,
        brow_angle=1.0,
        eye_open=0.8,
        mouth_curve=-0.35,
        mouth_open=0.05,
        mouth_width=0.9,
        nose_wrinkle=0.25,
        upper_lip_raise=0.1,
    ),
    "sad": Expression(
        brow_raise=0.1,
        brow_angle=-0.9,
        eye_open=0.7,
        mouth_curve=-0.9,
        mouth_open=0.0,
        mouth_width=0.9,
    ),
    "fear": Expression(
        brow_raise=0.9,
        brow_angle=-0.45,
        eye_open=1.45,
        mouth_curve=-0.2,
        mouth_open=0.6,
        mouth_width=1.05,
    ),
    "disgust": Expression(
        brow_raise=-0.55,
        brow_angle=0.85,
        eye_open=0.75,
        mouth_curve=-0.45,
        mouth_open=0.08,
        mouth_width=0.9,
        nose_wrinkle=0.45,
        upper_lip_raise=0.35,
    ),
}

_EXPR_JITTER: dict[str, float] = {
    "brow_raise": 0.2,
    "brow_angle": 0.2,
    "eye_open": 0.1,
    "mouth_curve": 0.2,
    "mouth_open": 0.06,
    "mouth_width": 0.05,
    "nose_wrinkle": 0.12,
    "upper_lip_raise": 0.12,
    "cheek_raise": 0.15,
}


def base_expression(label: str) -> Expression:
    """Return the noise-free expression prototype for ``label``."""
    try:
        return _PROTOTYPES[label]
    except KeyError:
        raise ValueError(f"unknown emotion label {label!r}; expected one of {LABELS}") from None


def neutral_expression() -> Expression:
    """The neutral expression prototype."""
    return _PROTOTYPES["neutral"]


def sample_expression(label: str, rng: np.random.Generator, jitter: float = 1.0) -> Expression:
    """Draw a per-utterance expression for ``label`` with random variation."""
    proto = base_expression(label)
    values: dict[str, float] = {}
    for name, sd in _EXPR_JITTER.items():
        v = float(getattr(proto, name)) + float(rng.normal(0.0, sd * jitter))
        values[name] = v
    values["eye_open"] = float(np.clip(values["eye_open"], 0.5, 1.7))
    values["mouth_open"] = float(np.clip(values["mouth_open"], 0.0, 0.8))
    values["mouth_width"] = float(np.clip(values["mouth_width"], 0.75, 1.3))
    for name in ("nose_wrinkle", "upper_lip_raise", "cheek_raise"):
        values[name] = float(np.clip(values[name], 0.0, 1.0))
    return Expression(**values)
