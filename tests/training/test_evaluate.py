"""`train` then `evaluate` end to end on a tiny fixture of every dataset kind (the metrics themselves:
core/test_metrics.py)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import datasets as fx
from support.cli import run_cli
from support.configs import TINY, TINY_TOML

pytestmark = [pytest.mark.slow, pytest.mark.needs_torch]

Trained = dict[str, tuple[str, Path, dict[str, Any], Path]]
"""Dataset kind -> (spec, bundle, training metrics, feature cache)."""


def _needs_av() -> None:
    pytest.importorskip("av", reason="PyAV (the 'train' extra) writes and decodes the fixtures")


def _h5py() -> None:
    pytest.importorskip("h5py", reason="h5py (the 'datasets' extra) reads CMU-MultimodalSDK .csd files")


KINDS: dict[str, tuple[Callable[[Path], object], str]] = {
    "ravdess": (fx.make_ravdess, "ravdess:{root}"),
    "cremad": (fx.make_cremad, "cremad:{root}"),
    "meld": (fx.make_meld, "meld:{root}?max_clip_s=2"),
    "mosi-raw": (fx.make_mosi_raw_mmsa, "mosi:{root}"),
    "mosi-csd": (fx.make_mosi_csd, "mosi:{root}"),
    "mosi-pickle": (lambda r: fx.make_mosi_mmsa_pickle(r / "aligned_50.pkl"), "mosi:{root}/aligned_50.pkl"),
    "csv": (fx.make_csv_manifest, "csv:{root}/manifest.csv"),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """Each kind's fixture trained once with the TINY configuration (spec, bundle, metrics, cache)."""
    _needs_av()
    from edge_mmer.train import TrainOptions, train

    base = tmp_path_factory.mktemp("kinds")
    cache = base / "cache"
    out: Trained = {}
    for kind, (make, spec) in KINDS.items():
        if kind == "mosi-csd":
            try:
                import h5py  # noqa: F401
            except ImportError:
                continue
        root = base / kind
        root.mkdir()
        make(root)
        s = spec.format(root=root)
        res = train(TINY, TrainOptions(dataset=s, out=base / f"bundle-{kind}", seed=0, device="cpu", progress=False,
                                       ablation=kind == "meld", cache_dir=cache, workers=1))
        out[kind] = (s, res.bundle_dir, res.metrics, cache)
    return out


@pytest.mark.parametrize("kind", list(KINDS))
def test_train_then_evaluate(kind: str, trained: Trained, tmp_path: Path) -> None:
    from edge_mmer.bundle import read_bundle
    from edge_mmer.datasets import open_dataset
    from edge_mmer.evaluate import EvaluateOptions, evaluate_bundle

    if kind == "mosi-csd":
        _h5py()
    spec, bundle_dir, metrics, cache = trained[kind]
    ds = open_dataset(spec)
    bundle = read_bundle(bundle_dir)
    assert tuple(bundle.labels) == ds.labels and not bundle.synthetic
    assert bundle.provenance["dataset"]["kind"] == ds.kind and bundle.provenance["dataset"]["spec"] == spec
    assert metrics["dataset"]["kind"] == ds.kind and metrics["counts"]["test"] > 0
    has_encoders = "speech_encoder" in bundle.networks
    assert has_encoders == (not ds.features_only)
    if ds.features_only:
        assert "no encoders" in bundle.manifest["description"]
        assert len(bundle.networks["speech_context"]["input"]["mean"]) == bundle.networks["speech_context"]["arch"][
            "input_dim"]

    result = evaluate_bundle(EvaluateOptions(bundle=bundle_dir, dataset=spec, out=tmp_path / "eval", cache_dir=cache,
                                             progress=False))
    files = {p.name for p in (tmp_path / "eval").iterdir()}
    assert files == {"report.json", "report.md", "confusion.png"}
    assert (tmp_path / "eval" / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report == json.loads(json.dumps(result.report))
    # the same pipeline on the same test split: evaluation reproduces training's figures
    for ch in ("speech", "face", "fused", "final"):
        assert report["channels"][ch]["accuracy"] == pytest.approx(metrics["test"][ch]["accuracy"])
        assert report["channels"][ch]["weighted_f1"] == pytest.approx(metrics["test"][ch]["weighted_f1"])
        assert report["channels"][ch]["confusion"] == metrics["test"][ch]["confusion"]  # label for label
        assert set(report["channels"][ch]["per_class"]) == set(ds.labels)
    assert report["final_by_integral"] == pytest.approx(metrics["final_by_integral"]["test"])
    assert report["n"] == metrics["counts"]["test"]
    md = (tmp_path / "eval" / "report.md").read_text()
    assert "Table 3" in md and "chi-square" in md and "## Official score" in md
    if ds.task == "sentiment-binary":
        assert set(report["protocol"]["official"]) >= {"acc2_has0", "f1_has0", "acc2_non0", "f1_non0"}
        assert "Acc-2 Has0" in md and "not reported" in md
        official = metrics["protocol"]["official"]
        assert report["protocol"]["official"]["acc2_has0"] == pytest.approx(official["acc2_has0"])
    if kind == "meld":
        final = report["channels"]["final"]
        assert report["protocol"]["official"]["weighted_f1"] == pytest.approx(final["weighted_f1"])
        assert "MELD weighted F1" in md
        skipped = metrics["dataset"]["defects"]["skipped"]
        assert skipped == {"missing_clip": 1, "clip_without_row": 2, "corrupt_clip": 1, "overlong_clip": 1}
        assert report["dataset"]["defects"]["skipped"]["overlong_clip"] == 1  # the test split's, found again
        assert "without" in report["chi_square"] and "training run" in report["chi_square"]["without"]["source"]


@pytest.mark.parametrize("kind", ["meld", "mosi-pickle"])
def test_evaluate_ablation_retrains_the_back_end(kind: str, trained: Trained, tmp_path: Path) -> None:
    """--ablation: the back end retrained keeping every feature on this dataset's train / val (media and
    precomputed features alike); the with-chi-square figures stay the bundle's own."""
    from edge_mmer.evaluate import EvaluateOptions, EvaluationError, evaluate_bundle

    spec, bundle_dir, metrics, cache = trained[kind]
    with pytest.raises(EvaluationError, match="split 'test'"):
        evaluate_bundle(EvaluateOptions(bundle=bundle_dir, dataset=spec, split="val", ablation=True, progress=False))
    report = evaluate_bundle(EvaluateOptions(bundle=bundle_dir, dataset=spec, out=tmp_path / "eval", cache_dir=cache,
                                             ablation=True, progress=False)).report
    without = report["chi_square"]["without"]
    assert "retrained" in without["source"] and spec in without["source"]
    for ch in ("speech", "face", "fused", "final"):
        assert 0.0 <= without[ch]["accuracy"] <= 1.0
        assert report["channels"][ch]["confusion"] == metrics["test"][ch]["confusion"]
    assert "without chi-square" in (tmp_path / "eval" / "report.md").read_text()


def test_second_training_run_reuses_the_cache(tmp_path: Path) -> None:
    """First run: two worker processes fill the cache. Second run: nothing is decoded (counted)."""
    _needs_av()
    from edge_mmer.datasets import media
    from edge_mmer.train import TrainOptions, train

    fx.make_ravdess(tmp_path / "ravdess", actors=(1, 18, 20), emotions=("01", "05"))
    spec = f"ravdess:{tmp_path / 'ravdess'}"
    common = {"dataset": spec, "seed": 0, "device": "cpu", "progress": False, "ablation": False,
              "cache_dir": tmp_path / "cache"}
    first = train(TINY, TrainOptions(out=tmp_path / "b1", workers=2, **common))  # type: ignore[arg-type]
    # 12 audio-video clips and the audio-only download's one trial without its mp4
    assert first.metrics["extraction"] == {"decoded": 13, "cached": 0, "failed": 0, "reasons": {}}
    before = media.DECODES
    second = train(TINY, TrainOptions(out=tmp_path / "b2", workers=1, **common))  # type: ignore[arg-type]
    assert before == media.DECODES
    assert second.metrics["extraction"] == {"decoded": 0, "cached": 13, "failed": 0, "reasons": {}}
    assert second.metrics["test"]["final"]["confusion"] == first.metrics["test"]["final"]["confusion"]


def test_evaluate_refuses_a_mismatched_dataset(trained: Trained) -> None:
    from edge_mmer.evaluate import EvaluateOptions, EvaluationError, evaluate_bundle

    _, ravdess_bundle, _, _ = trained["ravdess"]
    # another corpus is scored over the shared classes (test_cross_corpus...); none shared is refused
    with pytest.raises(EvaluationError, match=r"labels.*no class in common"):
        evaluate_bundle(EvaluateOptions(bundle=ravdess_bundle, dataset=trained["meld"][0] + "&labels=joy,anger",
                                        progress=False))
    _, pickle_bundle, _, _ = trained["mosi-pickle"]
    with pytest.raises(EvaluationError, match="precomputed features"):
        evaluate_bundle(EvaluateOptions(bundle=pickle_bundle, dataset=trained["mosi-raw"][0], progress=False))


def test_cli_train_and_evaluate(tmp_path: Path) -> None:
    _needs_av()
    fx.make_csv_manifest(tmp_path / "own")
    (tmp_path / "tiny.toml").write_text(TINY_TOML, encoding="utf-8")
    spec = f"csv:{tmp_path / 'own' / 'manifest.csv'}"
    cache = str(tmp_path / "cache")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli("-q", *args, timeout=300)

    out = cli("train", "--dataset", spec, "--config", str(tmp_path / "tiny.toml"), "--out", str(tmp_path / "b"),
              "--no-ablation", "--device", "cpu", "--workers", "2", "--cache", cache, "--no-progress")
    assert out.returncode == 0, out.stderr
    assert "calm" in out.stdout and "official score (csv)" in out.stdout and "skipped bad_time 1" in out.stdout
    ev = cli("evaluate", "--bundle", str(tmp_path / "b"), "--dataset", spec, "--cache", cache, "--no-progress")
    assert ev.returncode == 0, ev.stderr
    assert "## Accuracy per class" in ev.stdout and (tmp_path / "b.eval" / "csv-test" / "report.json").is_file()
    bad = cli("evaluate", "--bundle", str(tmp_path / "b"), "--dataset", f"meld:{tmp_path / 'none'}")
    assert bad.returncode == 2 and "edge-mmer evaluate: " in bad.stderr and "does not exist" in bad.stderr


def test_cross_corpus_evaluation_over_the_shared_classes(trained: Trained, tmp_path: Path) -> None:
    """The CREMA-D bundle scored on RAVDESS (fearful -> fear, calm and surprised dropped): the
    bundle's labels, over the utterances of the classes both corpora have."""
    from edge_mmer.evaluate import EvaluateOptions, EvaluationError, evaluate_bundle

    _, bundle_dir, _, cache = trained["cremad"]
    ravdess = trained["ravdess"][0] + "?map=fearful:fear&drop=calm,surprised"
    result = evaluate_bundle(EvaluateOptions(bundle=bundle_dir, dataset=ravdess, out=tmp_path / "x",
                                             cache_dir=cache, progress=False))
    report = result.report
    assert report["labels"] == list(read_labels(bundle_dir)) and report["channels"]["final"]["n"] > 0
    surprise_only = trained["meld"][0] + "&labels=surprise"  # CREMA-D has no surprise
    with pytest.raises(EvaluationError, match="no class in common"):
        evaluate_bundle(EvaluateOptions(bundle=bundle_dir, dataset=surprise_only, out=tmp_path / "y",
                                        cache_dir=cache, progress=False))


def read_labels(bundle_dir: Path) -> tuple[str, ...]:
    from edge_mmer.bundle import read_bundle

    return tuple(read_bundle(bundle_dir).labels)
