"""LIBSVM wrapper: scaling, grid search, probabilities, text model files, determinism, bad files."""

from __future__ import annotations

import ctypes
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from support.paths import ROOT, TESTS

from edge_mmer.config import SVMConfig
from edge_mmer.svm import (
    FeatureScaling,
    SVMModelError,
    TrainedSVM,
    fit_scaling,
    grid_best,
    load_svm,
    train_svm,
    validate_model_text,
)

SMALL_GRID = SVMConfig(c_grid=(0.5, 8.0), gamma_grid=(0.01, 0.1), folds=3)

def blobs(
    n_per_class: int = 30,
    n_classes: int = 3,
    n_features: int = 6,
    sep: float = 6.0,
    seed: int = 0,
    classes: list[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    classes = list(range(n_classes)) if classes is None else classes
    centres = rng.normal(0, sep, size=(max(classes) + 1, n_features))
    X = np.concatenate([centres[c] + rng.normal(0, 1, size=(n_per_class, n_features)) for c in classes])
    y = np.repeat(np.asarray(classes), n_per_class)
    order = rng.permutation(len(y))
    return X[order] * 10 + 3, y[order]  # unscaled on purpose


@pytest.fixture(scope="module")
def trained() -> tuple[TrainedSVM, np.ndarray, np.ndarray]:
    X, y = blobs()
    return train_svm(X, y, SMALL_GRID, seed=7), X, y


# ----------------------------------------------------------------------------------- scaling


def test_scaling_maps_training_range_to_minus_one_one_and_constant_to_zero() -> None:
    X = np.array([[0.0, 5.0, 2.0], [10.0, 5.0, 4.0], [5.0, 5.0, 3.0]])
    s = fit_scaling(X)
    out = s.apply(X)
    np.testing.assert_allclose(out[:, 0], [-1.0, 1.0, 0.0])
    np.testing.assert_array_equal(out[:, 1], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(out[:, 2], [-1.0, 1.0, 0.0])
    np.testing.assert_allclose(s.apply(X[0]), out[0])  # 1-D row


def test_scaling_json_round_trip_is_exact() -> None:
    rng = np.random.default_rng(3)
    s = fit_scaling(rng.normal(size=(20, 5)) * np.pi)
    import json

    back = FeatureScaling.from_dict(json.loads(json.dumps(s.to_dict())))
    np.testing.assert_array_equal(back.lo, s.lo)
    np.testing.assert_array_equal(back.hi, s.hi)


@pytest.mark.parametrize(
    "bad",
    [
        {"lo": [0.0], "hi": [1.0, 2.0]},
        {"lo": [1.0], "hi": [0.0]},
        {"lo": ["a"], "hi": [1.0]},
        {"lo": [0.0]},
        {"lo": [0.0], "hi": [1.0], "upper": 2},
    ],
)
def test_scaling_from_dict_rejects_bad_input(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="scaling"):
        FeatureScaling.from_dict(bad)


def test_scaling_rejects_wrong_width() -> None:
    with pytest.raises(ValueError, match="width 3"):
        fit_scaling(np.zeros((4, 3))).apply(np.zeros((2, 4)))


# ---------------------------------------------------------------------------------- training


def test_separable_blobs_are_learned(trained: tuple[TrainedSVM, np.ndarray, np.ndarray]) -> None:
    svm, X, y = trained
    assert svm.cv_accuracy >= 0.97
    assert np.mean(svm.predict(X) == y) >= 0.97
    X_test, y_test = blobs(seed=0, n_per_class=10)  # same centres (drawn first), fresh noise
    assert np.mean(svm.predict(X_test) == y_test) >= 0.95


def test_grid_is_complete_and_the_best_cv_point_is_chosen() -> None:
    # Overlapping classes: accuracy differs across the grid, so the choice is meaningful.
    X, y = blobs(n_per_class=40, sep=0.8, seed=5)
    cfg = SVMConfig(c_grid=(0.5, 4.0, 32.0), gamma_grid=(0.001, 0.05, 2.0), folds=4)
    svm = train_svm(X, y, cfg, seed=1)
    assert [(c, g) for c, g, _ in svm.grid] == [(c, g) for c in cfg.c_grid for g in cfg.gamma_grid]
    accs = [a for _, _, a in svm.grid]
    assert len(set(accs)) > 1
    assert svm.cv_accuracy == max(accs)
    assert (svm.c, svm.gamma, svm.cv_accuracy) == grid_best(svm.grid)
    # tie-break: the smallest C, then the smallest gamma, among the best
    best = [(c, g) for c, g, a in svm.grid if a == max(accs)]
    assert (svm.c, svm.gamma) == min(best)


def test_model_file_header_matches_the_chosen_parameters(trained: tuple[TrainedSVM, np.ndarray, np.ndarray]) -> None:
    svm, _, _ = trained
    text = svm.model_bytes().decode("ascii")
    assert f"gamma {svm.gamma:g}" in text.splitlines()[2]
    assert "probA" in text and "probB" in text


def test_predict_proba_shape_order_and_sums(trained: tuple[TrainedSVM, np.ndarray, np.ndarray]) -> None:
    svm, X, y = trained
    p = svm.predict_proba(X)
    assert p.shape == (len(X), 3) and p.dtype == np.float64
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(p >= 0)
    # columns are class indices: the true class has the highest probability
    assert np.mean(np.argmax(p, axis=1) == y) >= 0.97
    assert svm.predict_proba(X[0]).shape == (3,)


def test_columns_follow_class_index_not_libsvm_label_order() -> None:
    # LIBSVM orders labels by first appearance; put class 2 first, then 0, then 1.
    X, y = blobs(n_per_class=25, seed=11)
    order = np.argsort([{2: 0, 0: 1, 1: 2}[int(v)] for v in y], kind="stable")
    X, y = X[order], y[order]
    svm = train_svm(X, y, SMALL_GRID, seed=0)
    assert list(svm.model.get_labels()) == [2, 0, 1]
    p = svm.predict_proba(X)
    assert np.mean(np.argmax(p, axis=1) == y) >= 0.97


def test_absent_class_gets_a_zero_column() -> None:
    X, y = blobs(n_per_class=25, classes=[0, 2, 3], seed=4)
    svm = train_svm(X, y, SMALL_GRID, seed=0, n_classes=5)
    p = svm.predict_proba(X)
    assert p.shape == (len(X), 5)
    np.testing.assert_array_equal(p[:, [1, 4]], 0.0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    assert np.mean(svm.predict(X) == y) >= 0.97
    assert svm.labels == (0, 2, 3)


def test_rejects_bad_training_input() -> None:
    X, y = blobs()
    with pytest.raises(ValueError, match="two classes"):
        train_svm(X, np.zeros_like(y), SMALL_GRID, seed=0)
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        train_svm(X_nan, y, SMALL_GRID, seed=0)
    with pytest.raises(ValueError, match="n_classes"):
        train_svm(X, y, SMALL_GRID, seed=0, n_classes=2)


# ---------------------------------------------------------------------------- files, loading


def test_save_load_round_trip_gives_identical_probabilities(
    trained: tuple[TrainedSVM, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    svm, X, _ = trained
    path = svm.save(tmp_path / "speech.model")
    assert path.read_bytes().startswith(b"svm_type c_svc\nkernel_type rbf\n")
    for p in (path, str(path), bytes(path)):  # Path, str and bytes paths
        loaded = load_svm(p, svm.scaling.to_dict(), n_classes=3, c=svm.c, cv_accuracy=svm.cv_accuracy)
        np.testing.assert_array_equal(loaded.predict_proba(X), svm.predict_proba(X))
        assert loaded.gamma == svm.gamma and loaded.c == svm.c
        assert loaded.model_bytes() == svm.model_bytes()


def test_same_seed_gives_a_byte_identical_model_even_if_rand_was_used_in_between(tmp_path: Path) -> None:
    X, y = blobs(sep=2.0, seed=2)
    a = train_svm(X, y, SMALL_GRID, seed=42)
    libc = ctypes.CDLL(None)
    for _ in range(1000):  # disturb the C library's rand() state
        libc.rand()
    b = train_svm(X, y, SMALL_GRID, seed=42)
    assert a.model_bytes() == b.model_bytes()


def test_same_seed_gives_a_byte_identical_model_across_processes(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        sys.path[:0] = [{str(ROOT)!r}, {str(TESTS)!r}, {str(Path(__file__).parent)!r}]
        from test_svm import blobs, SMALL_GRID
        from edge_mmer.svm import train_svm
        X, y = blobs(sep=2.0, seed=2)
        train_svm(X, y, SMALL_GRID, seed=42).save(sys.argv[1])
        """
    )
    outs = []
    for i in range(2):
        out = tmp_path / f"m{i}.model"
        subprocess.run([sys.executable, "-c", script, str(out)], check=True, timeout=120)
        outs.append(out.read_bytes())
    X, y = blobs(sep=2.0, seed=2)
    assert outs[0] == outs[1] == train_svm(X, y, SMALL_GRID, seed=42).model_bytes()


def _corrupt_variants(text: str) -> dict[str, str]:
    lines = text.split("\n")
    sv = lines.index("SV")
    return {
        "garbage": "this is not a model\n",
        "empty": "",
        "truncated": "\n".join(lines[: sv + 3]) + "\n",
        "bad_svm_type": text.replace("svm_type c_svc", "svm_type nu_svr", 1),
        "nr_class_mismatch": text.replace("nr_class 3", "nr_class 4", 1),
        "total_sv_too_big": "\n".join(ln if not ln.startswith("total_sv") else "total_sv 99999" for ln in lines),
        "missing_probA": "\n".join(ln for ln in lines if not ln.startswith("probA")),
        "bad_sv_value": "\n".join([*lines[: sv + 1], lines[sv + 1].replace(":", ":x", 1), *lines[sv + 2 :]]),
        "decreasing_index": "\n".join([*lines[: sv + 1], lines[sv + 1] + " 1:0.5", *lines[sv + 2 :]]),
        "label_out_of_range": text.replace("label 0 1 2", "label 0 1 7", 1),
        "binary": "\x00\xff\x10" * 40,
    }


CORRUPTIONS = [
    "garbage",
    "empty",
    "truncated",
    "bad_svm_type",
    "nr_class_mismatch",
    "total_sv_too_big",
    "missing_probA",
    "bad_sv_value",
    "decreasing_index",
    "label_out_of_range",
    "binary",
]


@pytest.mark.parametrize("variant", CORRUPTIONS)
def test_corrupted_model_file_gives_a_clear_error_naming_the_file(
    variant: str, trained: tuple[TrainedSVM, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    svm, _, _ = trained
    text = svm.model_bytes().decode("ascii")
    bad = _corrupt_variants(text)[variant]
    path = tmp_path / "face.model"
    path.write_bytes(bad.encode("latin-1"))
    with pytest.raises(SVMModelError) as info:
        load_svm(path, svm.scaling, n_classes=3)
    assert str(path) in str(info.value)
    assert "LIBSVM model" in str(info.value)


def test_missing_model_file_names_the_file(tmp_path: Path, trained: tuple[TrainedSVM, np.ndarray, np.ndarray]) -> None:
    with pytest.raises(SVMModelError, match=r"nope\.model"):
        load_svm(tmp_path / "nope.model", trained[0].scaling, n_classes=3)


def test_model_wider_than_the_scaling_is_refused(trained: tuple[TrainedSVM, np.ndarray, np.ndarray]) -> None:
    svm, _, _ = trained
    with pytest.raises(SVMModelError, match="number of features 2"):
        validate_model_text(svm.model_bytes(), "m", n_classes=3, n_features=2)


def test_prediction_is_fast_enough_for_a_thousand_rows() -> None:
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(m, 1.0, size=(150, 300)) for m in (0.0, 0.3)])
    y = np.repeat([0, 1], 150)
    svm = train_svm(X, y, SVMConfig(c_grid=(1.0,), gamma_grid=(0.003,), folds=2), seed=0)
    big = rng.normal(0.15, 1.0, size=(1000, 300))
    p = svm.predict_proba(big)  # correctness only; no timing assertion (shared CI machines)
    assert p.shape == (1000, 2)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
