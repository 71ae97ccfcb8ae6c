"""Procedural talking faces for the synthetic data set (OpenCV + numpy), drawn so that OpenCV's stock
Haar cascade detects them.

:mod:`~edge_mmer.synth.face.identity` (who the speaker is, the per-frame pose, blinks),
:mod:`~edge_mmer.synth.face.expressions` (one expression prototype per emotion, jittered per
utterance), :mod:`~edge_mmer.synth.face.render` (one frame, the static face cached),
:mod:`~edge_mmer.synth.face.draw` (the drawing primitives) and :mod:`~edge_mmer.synth.face.haar`
(the detection-rate check). Everything is deterministic given a :class:`numpy.random.Generator`.
"""

from __future__ import annotations

from edge_mmer.synth.face.expressions import Expression, base_expression, neutral_expression, sample_expression
from edge_mmer.synth.face.haar import HaarStats, haar_detect, haar_detection_rate
from edge_mmer.synth.face.identity import Blinker, FaceIdentity, FacePose, random_identity, sample_pose, smooth_pose
from edge_mmer.synth.face.render import DEFAULT_FRAME_SIZE, render_face

__all__ = [
    "DEFAULT_FRAME_SIZE",
    "Blinker",
    "Expression",
    "FaceIdentity",
    "FacePose",
    "HaarStats",
    "base_expression",
    "haar_detect",
    "haar_detection_rate",
    "neutral_expression",
    "random_identity",
    "render_face",
    "sample_expression",
    "sample_pose",
    "smooth_pose",
]
