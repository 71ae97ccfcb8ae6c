"""Shared fixtures: one tiny synthetic dataset for every test that trains or converts."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 speakers (train / val / test one each), 2 sessions of 4 utterances: seconds to make."""
    from edge_mmer.synth import SynthConfig, generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("data") / "synthetic",
                            SynthConfig(seed=3, n_speakers=3, sessions_per_speaker=2, utterances_per_session=4),
                            progress=False, workers=1)


@pytest.fixture(scope="session")
def tiny_bundle(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The TINY configuration trained once on ``dataset`` (no ablation): shared by the conversion
    and quantization tests (copy it before changing it)."""
    from test_train import TINY

    from edge_mmer.train import TrainOptions, train

    out = tmp_path_factory.mktemp("train") / "bundle"
    return train(TINY, TrainOptions(dataset=dataset, out=out, seed=1, device="cpu", progress=False,
                                    ablation=False)).bundle_dir
