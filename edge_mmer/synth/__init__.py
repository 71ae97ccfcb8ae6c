"""``edge-mmer synth``: a deterministic synthetic audio-visual emotion dataset.

Speech comes from espeak-ng with class-dependent prosody, faces from a procedural
OpenCV renderer that the stock Haar cascade detects.  The voice confuses
``neutral``/``disgust`` and the face confuses ``angry``/``disgust``, so fusing the
two modalities has something to add.
"""

from edge_mmer.synth.dataset import FORMAT_VERSION, GENERATOR, SynthConfig, generate_dataset, make_speakers
from edge_mmer.synth.demo import make_demo_clip
from edge_mmer.synth.speech import EspeakError, EspeakNotFoundError

__all__ = [
    "FORMAT_VERSION",
    "GENERATOR",
    "EspeakError",
    "EspeakNotFoundError",
    "SynthConfig",
    "generate_dataset",
    "make_demo_clip",
    "make_speakers",
]
