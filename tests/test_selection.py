"""Chi-square selection (paper eq. 1) against scipy's 2x2 contingency statistic."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_mmer.selection import ChiSquareSelection, chi_square_scores, fit_chi_square, n_keep

scipy_stats = pytest.importorskip("scipy.stats")


def _scipy_chi(binary: np.ndarray, y: np.ndarray, f: int, c: int) -> float:
    present = binary[:, f]
    in_c = y == c
    a = int(np.sum(present & in_c))
    b = int(np.sum(present & ~in_c))
    cc = int(np.sum(~present & in_c))
    d = int(np.sum(~present & ~in_c))
    table = np.array([[a, b], [cc, d]])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            stat = float(scipy_stats.chi2_contingency(table, correction=False)[0])
    except ValueError:
        # a zero row/column: scipy refuses (zero expected frequency); no information, our score is 0
        assert (table.sum(axis=0) == 0).any() or (table.sum(axis=1) == 0).any()
        return 0.0
    return 0.0 if math.isnan(stat) else stat


@pytest.mark.parametrize("seed", range(5))
def test_scores_match_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, f, k = 40 + 10 * seed, 12, 4
    binary = rng.random((n, f)) < rng.uniform(0.1, 0.9, size=f)
    binary[:, 0] = True  # constant present: zero denominator
    binary[:, 1] = False  # constant absent
    y = rng.integers(0, k, size=n)
    y[y == 3] = 2  # class 3 never occurs: zero denominator for every feature
    chi = chi_square_scores(binary, y, k)
    assert chi.shape == (f, k) and chi.dtype == np.float64
    for fi in range(f):
        for c in range(k):
            assert chi[fi, c] == pytest.approx(_scipy_chi(binary, y, fi, c), rel=1e-10, abs=1e-12)
    assert np.all(chi[0] == 0) and np.all(chi[1] == 0) and np.all(chi[:, 3] == 0)


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 30), st.integers(1, 6), st.integers(2, 4), st.integers(0, 2**31 - 1))
def test_scores_match_scipy_property(n: int, f: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    binary = rng.random((n, f)) < 0.5
    y = rng.integers(0, k, size=n)
    chi = chi_square_scores(binary, y, k)
    assert np.all(np.isfinite(chi)) and np.all(chi >= 0)
    for fi in range(f):
        for c in range(k):
            assert chi[fi, c] == pytest.approx(_scipy_chi(binary, y, fi, c), rel=1e-9, abs=1e-12)


def test_perfect_predictor_scores_n() -> None:
    y = np.array([0, 0, 1, 1, 1, 0])
    binary = (y == 1)[:, None]
    chi = chi_square_scores(binary, y, 2)
    np.testing.assert_allclose(chi[0], [6.0, 6.0])  # Chi = N for a perfect 2x2 association


def test_accepts_01_ints_and_rejects_bad_input() -> None:
    y = np.array([0, 1, 0, 1])
    b = np.array([[1], [0], [1], [1]])
    np.testing.assert_array_equal(chi_square_scores(b, y, 2), chi_square_scores(b.astype(bool), y, 2))
    with pytest.raises(ValueError, match="0/1"):
        chi_square_scores(b * 2, y, 2)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        chi_square_scores(b, np.array([0, 1, 2, 0]), 2)
    with pytest.raises(ValueError, match="shape"):
        chi_square_scores(b, y[:3], 2)
    with pytest.raises(ValueError, match="n_classes"):
        chi_square_scores(b, np.zeros(4, int), 1)


def test_fit_median_binarisation_and_chi_max() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 8)).astype(np.float32)
    y = rng.integers(0, 3, size=50)
    sel = fit_chi_square(x, y, 3, keep_fraction=0.5)
    np.testing.assert_array_equal(sel.medians, np.median(x, axis=0).astype(np.float32))
    binary = x > sel.medians
    np.testing.assert_array_equal(sel.binarize(x), binary)
    np.testing.assert_allclose(sel.scores, chi_square_scores(binary, y, 3).max(axis=1))
    assert sel.medians.dtype == np.float32 and sel.scores.dtype == np.float64 and sel.mask.dtype == np.bool_


@pytest.mark.parametrize(("fraction", "n_features", "expected"),
                         [(0.5, 8, 4), (0.5, 7, 4), (0.3, 10, 3), (0.7, 10, 7), (1.0, 5, 5), (0.01, 5, 1),
                          (0.1, 30, 3)])
def test_top_k_count(fraction: float, n_features: int, expected: int) -> None:
    assert n_keep(fraction, n_features) == expected
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, n_features))
    y = rng.integers(0, 2, size=40)
    sel = fit_chi_square(x, y, 2, keep_fraction=fraction)
    assert sel.n_selected == expected
    assert sel.apply(x).shape == (40, expected)


def test_top_k_ordering_and_ties() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((60, 10))
    y = rng.integers(0, 3, size=60)
    sel = fit_chi_square(x, y, 3, keep_fraction=0.4)
    kept = sel.indices
    dropped = np.flatnonzero(~sel.mask)
    assert sel.scores[kept].min() >= sel.scores[dropped].max()
    np.testing.assert_array_equal(np.sort(sel.ranking[:4]), kept)
    # identical columns tie: the lower index wins
    x_tie = np.repeat(x[:, :1], 4, axis=1)
    sel_tie = fit_chi_square(x_tie, y, 3, keep_fraction=0.5)
    assert sel_tie.indices.tolist() == [0, 1]
    assert sel_tie.ranking.tolist() == [0, 1, 2, 3]


def test_informative_feature_ranked_first() -> None:
    rng = np.random.default_rng(3)
    n, f = 300, 20
    y = rng.integers(0, 4, size=n)
    x = rng.uniform(-1, 1, size=(n, f))
    x[:, 13] = np.where(y == 2, 0.8, -0.8) + 0.3 * rng.standard_normal(n)  # planted: signals class 2
    sel = fit_chi_square(x, y, 4, keep_fraction=0.25)
    assert sel.ranking[0] == 13
    assert sel.mask[13]


def test_keep_fraction_one_keeps_all_and_apply_1d() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((20, 6))
    y = rng.integers(0, 2, size=20)
    sel = fit_chi_square(x, y, 2, keep_fraction=1.0)
    assert sel.mask.all()
    np.testing.assert_array_equal(sel.apply(x), x)
    half = fit_chi_square(x, y, 2, keep_fraction=0.5)
    np.testing.assert_array_equal(half.apply(x[3]), x[3, half.mask])
    np.testing.assert_array_equal(half.apply(x)[3], half.apply(x[3]))
    with pytest.raises(ValueError, match="features"):
        half.apply(x[:, :5])


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5, float("nan")])
def test_keep_fraction_validation(fraction: float) -> None:
    x = np.zeros((4, 3))
    with pytest.raises(ValueError, match="keep_fraction"):
        fit_chi_square(x, np.array([0, 1, 0, 1]), 2, keep_fraction=fraction)


def test_fit_validation() -> None:
    y = np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="NaN"):
        fit_chi_square(np.array([[0.0], [np.nan], [1.0], [2.0]]), y, 2)
    with pytest.raises(ValueError, match="shape"):
        fit_chi_square(np.zeros(4), y, 2)
    with pytest.raises(ValueError, match="integers"):
        fit_chi_square(np.zeros((4, 2)), np.array([0.5, 1, 0, 1]), 2)


def test_arrays_round_trip() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((30, 9))
    y = rng.integers(0, 3, size=30)
    sel = fit_chi_square(x, y, 3, keep_fraction=0.5)
    arrays = sel.to_arrays(prefix="speech.")
    assert set(arrays) == {"speech.medians", "speech.scores", "speech.mask", "speech.keep_fraction"}
    back = ChiSquareSelection.from_arrays(arrays, prefix="speech.")
    np.testing.assert_array_equal(back.medians, sel.medians)
    np.testing.assert_array_equal(back.scores, sel.scores)
    np.testing.assert_array_equal(back.mask, sel.mask)
    assert back.keep_fraction == sel.keep_fraction
    np.testing.assert_array_equal(back.apply(x), sel.apply(x))
    with pytest.raises(KeyError, match="medians"):
        ChiSquareSelection.from_arrays({k: v for k, v in arrays.items() if "medians" not in k}, prefix="speech.")
