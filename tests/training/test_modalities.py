"""Single-modality bundles: ``--modalities speech`` on a MELD-layout set whose frames hold no face
(48 kHz stereo AAC, as the real clips), converted and run in the loop with ``--camera none``; a
face-only bundle; the refusal that suggests ``--modalities speech``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="training needs torch (the 'train' extra)")  # for the imports below

from support import datasets as fx
from support.cli import run_cli
from support.configs import TINY, TINY_TOML
from support.demo import DEMO_CLIP, demo_av

from edge_mmer.bundle import read_bundle
from edge_mmer.decision import DecisionHead
from edge_mmer.errors import TrainError
from edge_mmer.train import TrainOptions, train

pytestmark = [pytest.mark.needs_torch]


def _needs_av() -> None:
    pytest.importorskip("av", reason="the dataset fixtures are written with PyAV")


@pytest.fixture(scope="module")
def faceless_meld(tmp_path_factory: pytest.TempPathFactory) -> str:
    _needs_av()
    root = tmp_path_factory.mktemp("meld") / "MELD.Raw"
    fx.make_meld(root, faces=False, audio_rate=48000, stereo=True)
    return f"meld:{root}?max_clip_s=2"


def test_no_face_in_training_suggests_speech_only(faceless_meld: str, tmp_path: Path) -> None:
    with pytest.raises(TrainError, match=r"no face was found in any training utterance.*--modalities speech"):
        train(TINY, TrainOptions(dataset=faceless_meld, out=tmp_path / "b", device="cpu", progress=False,
                                 ablation=False, checkpoints=False))
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
def test_speech_only_bundle_trains_without_faces_and_runs_with_camera_none(faceless_meld: str,
                                                                            tmp_path: Path) -> None:
    toml = tmp_path / "tiny.toml"
    toml.write_text(TINY_TOML)
    out = tmp_path / "speech"
    trained = run_cli("train", "--dataset", faceless_meld, "--config", str(toml), "--out", str(out), "--device",
                      "cpu", "--modalities", "speech", "--no-progress", timeout=600)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "official score (meld)" in trained.stdout
    bundle = read_bundle(out, verify=True)
    assert set(bundle.network_specs) == {"speech_encoder", "speech_context"}
    assert set(bundle.manifest["svms"]) == {"speech"} and set(bundle.manifest["selection"]) == {"speech"}
    assert bundle.manifest["metrics"]["modalities"] == ["speech"]
    head = DecisionHead.from_bundle(bundle)
    assert head.channels == ("speech",)
    refused = run_cli("evaluate", "--bundle", str(out), "--dataset", faceless_meld, "--no-progress", timeout=300)
    assert refused.returncode == 1 and "single-modality bundle (speech only)" in refused.stderr
    converted = run_cli("convert", "--bundle", str(out), "--no-progress", timeout=600)
    assert converted.returncode == 0, converted.stderr[-3000:]
    audio, _ = demo_av()
    wav = fx.write_wav(tmp_path / "speech.wav", audio[: 16000 * 7])
    run = run_cli("run", "--bundle", str(out), "--camera", "none", "--mic", str(wav), timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert events and all(e["channels"]["face"] is None and e["channels"]["fused"] is None for e in events)
    assert all(e["channels"]["speech"]["label"] == e["label"] for e in events)


@pytest.mark.slow
def test_face_only_bundle(dataset: Path, tmp_path: Path) -> None:
    result = train(TINY, TrainOptions(dataset=dataset, out=tmp_path / "face", device="cpu", progress=False,
                                      ablation=False, checkpoints=False, modalities=("face",)))
    bundle = read_bundle(result.bundle_dir, verify=True)
    assert set(bundle.network_specs) == {"face_encoder", "face_context"}
    assert set(bundle.manifest["svms"]) == {"face"}
    report = result.metrics["test"]
    assert report["speech"]["n"] == 0 and report["fused"]["n"] == 0 and report["face"]["n"] > 0
    assert report["final"]["n"] == report["face"]["n"]  # no decision without a face
    converted = run_cli("convert", "--bundle", str(result.bundle_dir), "--no-progress", timeout=600)
    assert converted.returncode == 0, converted.stderr[-3000:]
    run = run_cli("run", "--bundle", str(result.bundle_dir), "--camera", str(DEMO_CLIP), "--mic", "none", timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert events and all(e["trigger"] == "face_only" and e["channels"]["speech"] is None for e in events)
