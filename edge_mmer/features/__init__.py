"""Front ends shared by training and the torch-free runtime: log-mel speech features and face crops."""

from edge_mmer.features.audio import log_mel, mel_filterbank, n_frames, pcm16_to_float
from edge_mmer.features.face import (
    FaceBox,
    HaarFaceDetector,
    crop_face,
    largest_face,
    preprocess_face,
    preprocess_faces,
)

__all__ = [
    "FaceBox",
    "HaarFaceDetector",
    "crop_face",
    "largest_face",
    "log_mel",
    "mel_filterbank",
    "n_frames",
    "pcm16_to_float",
    "preprocess_face",
    "preprocess_faces",
]
