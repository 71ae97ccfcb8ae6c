"""INT8 drift is measured on the runtime's decision path, and it reproduces the figures stored in the
demo bundle: its committed INT8 artifacts, re-measured on the full synthetic test split (120
utterances) through ``Networks`` over ONNX Runtime runners and ``decide_utterance``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.paths import DEMO_BUNDLE, ROOT

pytest.importorskip("onnxruntime", reason="drift runs the ONNX artifacts")
pytest.importorskip("torch", reason="the training front ends (prepare_split) need the training stack")

from edge_mmer.bundle import read_bundle
from edge_mmer.convert.drift import measure_drift
from edge_mmer.convert.int8 import prepare_test_split
from edge_mmer.decision import DecisionHead

# the demo dataset is generated (espeak-ng) when data/synthetic is not it
pytestmark = [pytest.mark.slow, pytest.mark.needs_torch, pytest.mark.needs_espeak]

DEMO = DEMO_BUNDLE
FLAVOURS = ("int8-cpu", "int8-trt")


def _is_demo_dataset(path: Path) -> bool:
    from edge_mmer.synth import SynthConfig

    try:
        meta = json.loads((path / "dataset.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    want = SynthConfig(seed=0)
    cfg = meta.get("config", {})
    return all(cfg.get(k) == getattr(want, k) for k in ("seed", "n_speakers", "sessions_per_speaker",
                                                          "utterances_per_session", "fps", "sample_rate"))


@pytest.fixture(scope="module")
def demo_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic dataset the demo bundle was trained on: data/synthetic when it is that one
    (``edge-mmer synth --out data/synthetic``), else generated with the demo's seed (about a minute)."""
    here = ROOT / "data" / "synthetic"
    if _is_demo_dataset(here):
        return here
    from edge_mmer.synth import SynthConfig, generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("demo-data") / "synthetic", SynthConfig(seed=0),
                            progress=False, workers=2)


def test_drift_of_the_demo_int8_artifacts_reproduces(demo_dataset: Path) -> None:
    bundle = read_bundle(DEMO)
    prepared = prepare_test_split(bundle, demo_dataset, None, workers=2)
    fp32 = {n: bundle.read_bytes(net["artifacts"]["onnx-fp32"]["file"]) for n, net in bundle.networks.items()}
    int8 = {f: {n: bundle.read_bytes(net["artifacts"][f]["file"]) for n, net in bundle.networks.items()
                if f in net["artifacts"]} for f in FLAVOURS}
    assert all(set(nets) == {"speech_encoder", "face_encoder", "fusion"} for nets in int8.values())
    ref, drift = measure_drift(bundle, fp32, int8, prepared, DecisionHead.from_bundle(bundle))
    assert len(ref.labels) == 120
    for flavour in FLAVOURS:
        for name in int8[flavour]:
            stored = bundle.networks[name]["artifacts"][flavour]["drift"]
            got = drift[flavour].networks[name]
            assert got["runs"] == stored["network"]["runs"] and got["reference"] == stored["network"]["reference"]
            for key in ("cosine", "max_abs"):
                assert got[key] == pytest.approx(stored["network"][key], rel=1e-6, abs=0), (name, flavour, key)
            # agreement, accuracies, utterances, which networks ran INT8: exactly
            assert drift[flavour].end_to_end == stored["end_to_end"], (name, flavour)
