"""One decision path: decide_utterance gives the same decision over torch and ONNX Runtime runners."""

from __future__ import annotations

import numpy as np
import pytest
from support.demo import demo_bundle, demo_networks

from edge_mmer.decision import DecisionHead
from edge_mmer.networks import Networks, decide_utterance

pytestmark = pytest.mark.needs_torch  # the torch runners are the training stack's


def test_torch_and_onnxruntime_runners_decide_alike() -> None:
    from edge_mmer.models.torch_runner import torch_runners

    bundle = demo_bundle()
    cfg = bundle.config
    head = DecisionHead.from_bundle(bundle)
    torch_nets = Networks(torch_runners(bundle))
    torch_nets.activate()
    ort_nets = demo_networks()
    rng = np.random.default_rng(0)
    for i in range(4):  # the state is carried from one utterance to the next, with and without a face
        mel = rng.normal(-4, 2, (120 + 10 * i, cfg.audio.n_mels)).astype(np.float32)
        crops = None if i == 2 else [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(3)]
        a = decide_utterance(torch_nets, head, cfg.face, mel, crops)
        b = decide_utterance(ort_nets, head, cfg.face, mel, crops)
        assert a.label_index == b.label_index
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
        assert (a.channels["face"] is None) == (crops is None) == (b.channels["face"] is None)
