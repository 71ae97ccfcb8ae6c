"""The tiny model configuration every training test uses: the demo networks with a few epochs and a
small SVM grid, seconds to train on a CPU. ``TINY_TOML`` is the same configuration as a file."""

from __future__ import annotations

from dataclasses import replace

from edge_mmer.config import ModelConfig, SVMConfig, TrainConfig, demo_config

TINY: ModelConfig = replace(
    demo_config(),
    svm=SVMConfig(c_grid=(1.0, 8.0), gamma_grid=(0.01, 0.1), folds=2),
    train=TrainConfig(speech_epochs=2, face_epochs=2, context_epochs=3, fusion_epochs=3, batch_size=16),
)

TINY_TOML = """preset = "demo"
[svm]
c_grid = [1.0, 8.0]
gamma_grid = [0.01, 0.1]
folds = 2
[train]
speech_epochs = 2
face_epochs = 2
context_epochs = 3
fusion_epochs = 3
batch_size = 16
"""
