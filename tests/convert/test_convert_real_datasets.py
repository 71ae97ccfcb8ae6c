"""`convert` and `calibrate build` on bundles trained on a real dataset layout (a tiny RAVDESS fixture,
written for real with PyAV), not only the synthetic set: the recorded ``KIND:PATH`` spec is used,
``--data`` replaces its path and keeps its options, defective media is skipped and counted as in
training, and a bundle trained on precomputed features (no encoders) is refused with the reason."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import datasets as fx
from support.configs import TINY

pytest.importorskip("torch", reason="conversion needs torch (the 'train' extra)")
pytest.importorskip("onnxruntime", reason="conversion needs the 'onnx' extra")
pytest.importorskip("onnxslim", reason="conversion needs the 'onnx' extra")
pytest.importorskip("av", reason="PyAV (the 'train' extra) writes and decodes the fixtures")

from edge_mmer.bundle import read_bundle
from edge_mmer.calibration import load_calibration_set
from edge_mmer.calibration.from_dataset import build_from_dataset
from edge_mmer.convert.onnx_artifacts import ConvertError, ConvertOptions, convert_bundle
from edge_mmer.convert.parity import DatasetMissingError, FeatureBundleError, resolve_dataset

pytestmark = [pytest.mark.slow, pytest.mark.needs_torch]

NETWORKS = ("speech_encoder", "face_encoder", "speech_context", "face_context", "fusion")
OPTIONS = "max_clip_s=30"  # a recorded option that --data must keep


@pytest.fixture(scope="module")
def ravdess(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Path]:
    """A RAVDESS fixture (actors 1 / 18 / 20 = train / val / test, 2 emotions x 2 statements each, plus a
    corrupt clip of the validation actor) trained once with the TINY configuration: (spec, root, bundle)."""
    from edge_mmer.train import TrainOptions, train

    base = tmp_path_factory.mktemp("ravdess")
    root = base / "RAVDESS"
    fx.make_ravdess(root, actors=(1, 18, 20), emotions=("01", "05"))
    corrupt = root / "Video_Speech_Actor_18" / "Actor_18" / "01-01-08-01-01-01-18.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    spec = f"ravdess:{root}?{OPTIONS}"
    result = train(TINY, TrainOptions(dataset=spec, out=base / "bundle", seed=0, device="cpu", progress=False,
                                      ablation=False, workers=1))
    assert result.metrics["dataset"]["defects"]["skipped"]["corrupt_clip"] == 1
    return spec, root, result.bundle_dir


@pytest.fixture(scope="module")
def features_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A bundle trained on an MMSA pickle (precomputed features: no encoders)."""
    from edge_mmer.train import TrainOptions, train

    base = tmp_path_factory.mktemp("mosi")
    fx.make_mosi_mmsa_pickle(base / "aligned_50.pkl", videos=2, clips=6)
    spec = f"mosi:{base / 'aligned_50.pkl'}"
    result = train(TINY, TrainOptions(dataset=spec, out=base / "bundle", seed=0, device="cpu", progress=False,
                                      ablation=False))
    return spec, result.bundle_dir


def test_calibrate_build_then_convert_fp32_and_int8(ravdess: tuple[str, Path, Path], tmp_path: Path) -> None:
    spec, _root, trained = ravdess
    bundle_dir = tmp_path / "bundle"
    shutil.copytree(trained, bundle_dir)
    assert resolve_dataset(read_bundle(bundle_dir)) == spec  # the recorded spec, options and all

    # the calibration set from the train split, through the CLI (no --data: the recorded dataset)
    calib = tmp_path / "calib.npz"
    cli = subprocess.run([sys.executable, "-m", "edge_mmer.cli", "calibrate", "build", "--bundle", str(bundle_dir),
                          "--out", str(calib), "--utterances", "3", "--no-progress"],
                         capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr
    assert "OK:" in cli.stdout and f"dataset:{spec}:train" in cli.stdout
    cs = load_calibration_set(calib)
    prov = cs.provenance
    assert prov["split"] == "train" and prov["dataset_kind"] == "ravdess" and prov["utterances"] == 3
    assert cs.counts()["speech_encoder"] == 3 and cs.counts()["face_encoder"] > 0  # the fixture's faces are found

    result = convert_bundle(ConvertOptions(bundle=bundle_dir, precisions=("fp32", "int8-cpu"), calibration=calib,
                                           samples=8, progress=False))
    bundle = read_bundle(bundle_dir)  # verifies every file's sha256
    assert set(bundle.networks) == set(NETWORKS)
    for name in NETWORKS:
        fp32 = bundle.networks[name]["artifacts"]["onnx-fp32"]
        assert fp32["file"] in bundle.files and fp32["parity"]["samples"] > 0
        assert fp32["parity"]["max_abs"] <= 1e-4 and fp32["parity"]["cosine"] > 0.99999
        # val actor: 4 clips + 1 corrupt (skipped, as training skipped it)
        assert fp32["parity"]["utterances"] == 4
    assert set(result.artifacts) == set(NETWORKS)
    sha = prov["sha256"]
    assert bundle.provenance["calibration_set_sha256"] == sha
    quantized = [n for n in NETWORKS if "int8-cpu" in bundle.networks[n]["artifacts"]]
    assert {"speech_encoder", "face_encoder"} <= set(quantized)
    for name in quantized:
        art = bundle.networks[name]["artifacts"]["int8-cpu"]
        assert art["file"] in bundle.files and art["calibration"]["sha256"] == sha
        assert art["calibration"]["provenance"]["source"] == f"dataset:{spec}:train"
        e2e = art["drift"]["end_to_end"]
        assert e2e["split"] == "test" and e2e["utterances"] == 4  # actor 3's clips
        assert 0.0 <= e2e["agreement"] <= 1.0 and 0.0 <= e2e["accuracy_fp32"] <= 1.0
        assert art["drift"]["network"]["runs"] > 0 and art["drift"]["network"]["cosine"] > 0.9
        assert isinstance(art["deployable"], bool)
    verify = subprocess.run([sys.executable, "-m", "edge_mmer.cli", "bundle", "verify", str(bundle_dir)],
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stderr


def test_data_replaces_the_recorded_path_and_keeps_the_options(ravdess: tuple[str, Path, Path],
                                                               tmp_path: Path) -> None:
    _spec, root, trained = ravdess
    bundle = read_bundle(trained)
    moved = tmp_path / "elsewhere"
    shutil.copytree(root, moved)
    assert resolve_dataset(bundle, moved) == f"ravdess:{moved}?{OPTIONS}"
    assert resolve_dataset(bundle, f"ravdess:{moved}") == f"ravdess:{moved}"  # a whole spec, as given
    assert resolve_dataset(bundle, resolve_dataset(bundle, moved)) == f"ravdess:{moved}?{OPTIONS}"
    with pytest.raises(DatasetMissingError, match=r"ravdess dataset is not at .*nowhere.*--data"):
        resolve_dataset(bundle, tmp_path / "nowhere")

    bundle_dir = tmp_path / "bundle"
    shutil.copytree(trained, bundle_dir)
    with pytest.raises(ConvertError, match=r"ravdess dataset is not at .*nowhere"):
        convert_bundle(ConvertOptions(bundle=bundle_dir, precisions=("fp32",), data=tmp_path / "nowhere",
                                      progress=False))
    convert_bundle(ConvertOptions(bundle=bundle_dir, precisions=("fp32",), data=moved, samples=2, progress=False,
                                  cache_dir=tmp_path / "cache"))
    par = read_bundle(bundle_dir).networks["speech_encoder"]["artifacts"]["onnx-fp32"]["parity"]
    assert par["utterances"] == 2 and par["max_abs"] <= 1e-4
    # the calibration builder reads the val split too (never test); the corrupt clip is skipped and counted
    cs = build_from_dataset(bundle_dir, moved, "val", 10, progress=False, cache_dir=tmp_path / "cache")
    assert cs.provenance["skipped"] == {"corrupt_clip": 1} and cs.provenance["utterances"] == 4
    assert cs.provenance["source"] == f"dataset:ravdess:{moved}?{OPTIONS}:val"


def test_a_dataset_with_other_labels_is_refused(ravdess: tuple[str, Path, Path], features_bundle: tuple[str, Path],
                                                tmp_path: Path) -> None:
    _spec, _root, trained = ravdess
    bundle_dir = tmp_path / "bundle"
    shutil.copytree(trained, bundle_dir)
    with pytest.raises(ConvertError, match=r"parity samples: dataset mosi:.*labels \['negative', 'positive'\]"):
        convert_bundle(ConvertOptions(bundle=bundle_dir, precisions=("fp32",), data=features_bundle[0],
                                      progress=False))
    assert not (bundle_dir / "onnx").exists()


def test_a_features_only_bundle_is_refused_with_the_reason(features_bundle: tuple[str, Path], tmp_path: Path) -> None:
    spec, trained = features_bundle
    bundle = read_bundle(trained)
    assert "speech_encoder" not in bundle.networks and bundle.provenance["dataset"]["features_only"] is True
    before = (trained / "manifest.json").read_bytes()
    for precisions in (("fp32",), ("fp32", "int8-cpu")):
        with pytest.raises(ConvertError, match=r"no speech_encoder / face_encoder network.*precomputed features"):
            convert_bundle(ConvertOptions(bundle=trained, precisions=precisions, progress=False))
    with pytest.raises(FeatureBundleError, match=r"calibration set needs the encoders of its modalities"):
        build_from_dataset(trained, None, "train", 4, progress=False)
    cli = subprocess.run([sys.executable, "-m", "edge_mmer.cli", "convert", "--bundle", str(trained),
                          "--no-progress"], capture_output=True, text=True, timeout=300)
    assert cli.returncode == 1 and "precomputed features" in cli.stderr and "edge-mmer evaluate" in cli.stderr
    assert (trained / "manifest.json").read_bytes() == before and not (trained / "onnx").exists()
    assert spec in cli.stderr
