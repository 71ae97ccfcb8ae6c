"""End to end: a tiny synthetic dataset -> `train` -> a bundle that verifies, loads and refuses tampering."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch", reason="training needs torch (the 'train' extra)")  # for the imports below

from support.cli import run_cli
from support.configs import TINY

from edge_mmer.bundle import BundleError, read_bundle
from edge_mmer.config import demo_config
from edge_mmer.decision import DecisionHead
from edge_mmer.errors import TrainError
from edge_mmer.train import TrainOptions, format_metrics, train
from edge_mmer.vocab import CHANNELS

pytestmark = [pytest.mark.slow, pytest.mark.needs_torch]


@pytest.fixture(scope="module")
def trained(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("train") / "bundle"
    result = train(TINY, TrainOptions(dataset=dataset, out=out, seed=1, device="cpu", progress=False))
    return result.bundle_dir, result.metrics


def test_training_is_seeded(dataset: Path, trained: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """The same seed gives the same figures and SVM choices. (Weights are not promised bit-identical:
    torch's multi-threaded CPU kernels may sum in another order, a last-bit difference.)"""
    first, metrics = trained
    again = train(TINY, TrainOptions(dataset=dataset, out=tmp_path / "again", seed=1, device="cpu", progress=False))
    svms = (read_bundle(first).svms, read_bundle(again.bundle_dir).svms)
    assert ({k: (v["c"], v["gamma"]) for k, v in svms[0].items()}
            == {k: (v["c"], v["gamma"]) for k, v in svms[1].items()})
    drop = ("train_seconds",)
    assert {k: v for k, v in again.metrics.items() if k not in drop} == {
        k: v for k, v in metrics.items() if k not in drop}


def test_bundle_verifies_and_records_everything(trained: tuple[Path, dict[str, Any]]) -> None:
    out, metrics = trained
    bundle = read_bundle(out)
    m = bundle.manifest
    assert m["synthetic"] is True and "SYNTHETIC" in m["description"]
    assert set(m["networks"]) == {"speech_encoder", "face_encoder", "speech_context", "face_context", "fusion"}
    for net in m["networks"].values():
        assert net["weights"].endswith(".safetensors") and net["inputs"] and net["outputs"]
    assert set(m["svms"]) == set(CHANNELS)
    assert m["fuzzy"]["integral"] in ("sugeno", "choquet")
    assert (out / "reports" / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the paper's Table 3 layout and its Fig. 8 ablation
    for channel in (*CHANNELS, "final"):
        report = metrics["test"][channel]
        assert 0.0 <= report["accuracy"] <= 1.0
        assert set(report["per_class"]) == set(bundle.labels)
        assert sum(map(sum, report["confusion"])) == report["n"]
        assert channel in metrics["without_chi_square"]["test_accuracy"]
    assert metrics["test"]["final"]["n"] == metrics["counts"]["test"]
    assert json.loads((out / "reports" / "metrics.json").read_text()) == m["metrics"]
    table = format_metrics(metrics)
    assert "SYNTHETIC" in table and "no chi-square" in table and "all emotions" in table


def test_decision_head_loads_from_the_bundle(trained: tuple[Path, dict[str, Any]]) -> None:
    out, _ = trained
    bundle = read_bundle(out)
    head = DecisionHead.from_bundle(bundle)
    sel = head.selections["speech"]
    assert sel.mask.sum() == round(sel.mask.size * bundle.config.selection.keep_fraction)
    speech_in = head.svms["speech"].scaling.n_features
    import numpy as np

    decision = head.decide({"speech": np.zeros(speech_in), "face": None, "fused": None})
    # one channel present: the fuzzy integral returns that channel's supports
    assert decision.channels["face"] is None
    speech = decision.channels["speech"]
    assert speech is not None
    np.testing.assert_allclose(decision.scores, speech, atol=1e-12)


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0x01
    path.write_bytes(bytes(data))


def test_one_flipped_byte_in_any_file_is_named(trained: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    out, _ = trained
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert "manifest.json" in files and len(files) >= 12
    for rel in files:
        copy = tmp_path / rel.replace("/", "_")
        shutil.copytree(out, copy)
        _flip(copy / rel, len((copy / rel).read_bytes()) // 2)
        with pytest.raises(BundleError) as info:
            read_bundle(copy)
        assert rel in str(info.value), f"verification error does not name {rel}: {info.value}"
        if rel != "manifest.json":
            # loading without the up-front check still verifies what it reads
            with pytest.raises(BundleError) as info:
                bundle = read_bundle(copy, verify=False)
                DecisionHead.from_bundle(bundle)
                for net in bundle.networks.values():
                    bundle.load_tensors(net["weights"])
                for report in (f for f in files if f.startswith("reports/")):  # confusion, metrics, log, curves
                    bundle.read_bytes(report)
            assert rel in str(info.value), f"loading error does not name {rel}: {info.value}"
        cli = run_cli("bundle", "verify", str(copy))
        assert cli.returncode == 1 and rel in cli.stderr
        shutil.rmtree(copy)


def test_cli_verify_and_show(trained: tuple[Path, dict[str, Any]]) -> None:
    out, _ = trained
    ok = run_cli("bundle", "verify", str(out))
    assert ok.returncode == 0 and ok.stdout.startswith("OK") and "SYNTHETIC" in ok.stdout
    show = run_cli("bundle", "show", str(out))
    assert show.returncode == 0 and "SYNTHETIC" in show.stdout and "speech_encoder" in show.stdout


def test_train_refuses_to_overwrite(trained: tuple[Path, dict[str, Any]]) -> None:
    out, _ = trained
    with pytest.raises(TrainError, match="exists"):
        train(demo_config(), TrainOptions(dataset=out, out=out))


def test_paper_configuration_trains_end_to_end(dataset: Path, tmp_path: Path) -> None:
    """The paper's networks (Inception-ResNet-v2 at 299 px, LSTM 256, FC 300) through the whole
    pipeline, one epoch each and one frame per utterance to keep it to seconds on a CPU."""
    from edge_mmer.config import FaceConfig, paper_config

    paper = paper_config()
    cfg = replace(paper, face=replace(paper.face, frames_per_utterance=1), svm=TINY.svm,
                  train=replace(TINY.train, speech_epochs=1, face_epochs=1, context_epochs=1, fusion_epochs=1,
                                batch_size=4))
    assert isinstance(cfg.face, FaceConfig) and cfg.face.crop_size == 299
    result = train(cfg, TrainOptions(dataset=dataset, out=tmp_path / "paper", seed=0, device="cpu", progress=False,
                                     ablation=False))
    bundle = read_bundle(result.bundle_dir)
    assert bundle.config.face_encoder.width == 1.0
    assert bundle.networks["face_encoder"]["inputs"][0]["shape"] == ["batch", 3, 299, 299]
    assert bundle.networks["fusion"]["outputs"][0]["shape"] == [1, 300]
    assert 0.0 <= result.metrics["test_accuracy"]["final"] <= 1.0
