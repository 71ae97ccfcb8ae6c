"""Fuzzy-integral fusion: lambda solver, measure properties, Sugeno/Choquet, JSON round trip."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from edge_mmer.fuzzy import (
    FuzzyMeasure,
    densities_from_recall,
    fit_fuzzy_measure,
    fuzzy_integral,
    solve_lambda,
    subset_key,
)

density = st.floats(min_value=0.01, max_value=0.99)
support = st.floats(min_value=0.0, max_value=1.0)
METHODS = ("sugeno", "choquet")


def _measure_values(g: list[float], lam: float) -> float:
    """g(A_n) for the whole set by the recursion (no clamping)."""
    acc = g[0]
    for gi in g[1:]:
        acc = gi + acc + lam * gi * acc
    return acc


# --- solve_lambda ---------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.lists(density, min_size=2, max_size=5))
def test_lambda_root_and_sign_rule(g: list[float]) -> None:
    total = sum(g)
    assume(abs(total - 1.0) > 1e-6)
    lam = solve_lambda(g)
    assert lam > -1.0 and lam != 0.0
    assert (lam < 0) == (total > 1)
    # it is a root: 1 + lam = prod(1 + lam g)
    assert np.prod([1 + lam * gi for gi in g]) == pytest.approx(1 + lam, rel=1e-9, abs=1e-12)
    # hence g(A_n) = 1 for the full set
    assert _measure_values(g, lam) == pytest.approx(1.0, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.lists(density, min_size=2, max_size=5))
def test_bisection_matches_brentq(g: list[float]) -> None:
    optimize = pytest.importorskip("scipy.optimize")
    assume(abs(sum(g) - 1.0) > 1e-6)
    bis = solve_lambda(g, method="bisect")
    brent = solve_lambda(g, method="brentq")

    def f(lam: float) -> float:
        return float(np.prod([1 + lam * gi for gi in g]) - 1 - lam)

    lo, hi = (-1 + 1e-12, -1e-9) if sum(g) > 1 else (1e-9, 1e7)
    assume(f(lo) * f(hi) < 0)
    independent = optimize.brentq(f, lo, hi, xtol=1e-14, rtol=1e-14, maxiter=1000)
    assert bis == pytest.approx(brent, rel=1e-9, abs=1e-9)
    assert bis == pytest.approx(independent, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(
    ("g", "expected"),
    [
        ([0.3, 0.7], 0.0),  # additive
        ([0.2, 0.3, 0.5], 0.0),
        ([0.6], 0.0),  # one channel
        ([0.5, 0.5, 0.5], -3.0 + 5.0**0.5),  # (1 + l/2)^3 = 1 + l  <=>  l^2 + 6 l + 4 = 0
        ([0.01, 0.01], 9800.0),  # 1 + l = (1 + 0.01 l)^2  ->  l = 0.98 / 1e-4
    ],
)
def test_lambda_known_values(g: list[float], expected: float) -> None:
    for method in ("bisect", "auto"):
        assert solve_lambda(g, method=method) == pytest.approx(expected, rel=1e-10, abs=1e-12)


def test_lambda_validation() -> None:
    for bad in ([0.0, 0.5], [1.0, 0.5], [1.2], [-0.1, 0.5], [float("nan"), 0.5]):
        with pytest.raises(ValueError, match=r"\(0, 1\)"):
            solve_lambda(bad)
    with pytest.raises(ValueError, match="at least one"):
        solve_lambda([])
    with pytest.raises(ValueError, match="method"):
        solve_lambda([0.5, 0.6], method="newton")


# --- measure --------------------------------------------------------------------------------------

def _random_measure(rng: np.random.Generator, channels: tuple[str, ...] = ("speech", "face", "fused"), k: int = 6,
                    low: float = 0.05, high: float = 0.95) -> FuzzyMeasure:
    return fit_fuzzy_measure({ch: rng.uniform(low, high, size=k) for ch in channels})


def test_fit_solves_every_subset() -> None:
    rng = np.random.default_rng(0)
    m = _random_measure(rng)
    assert set(m.lambdas) == {"speech", "face", "fused", "face+speech", "fused+speech", "face+fused",
                              "face+fused+speech"}
    for key in ("speech", "face", "fused"):
        np.testing.assert_array_equal(m.lambdas[key], 0.0)
    for r in (2, 3):
        for subset in itertools.combinations(m.channels, r):
            lam = m.lambda_for(subset)
            for k in range(m.n_classes):
                g = [float(m.densities[ch][k]) for ch in subset]
                assert lam[k] == solve_lambda(g)
                assert _measure_values(g, float(lam[k])) == pytest.approx(1.0, abs=1e-9)
    assert subset_key(["speech", "face"]) == "face+speech"
    with pytest.raises(KeyError):
        m.lambda_for(["voice"])


def test_fit_validation() -> None:
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        fit_fuzzy_measure({"a": np.array([0.5, 1.0]), "b": np.array([0.5, 0.5])})
    with pytest.raises(ValueError, match="shape"):
        fit_fuzzy_measure({"a": np.array([0.5, 0.4]), "b": np.array([0.5, 0.5, 0.5])})
    with pytest.raises(ValueError, match=r"'\+'"):
        fit_fuzzy_measure({"a+b": np.array([0.5, 0.4])})
    with pytest.raises(ValueError, match="at least one"):
        fit_fuzzy_measure({})


def test_densities_from_recall() -> None:
    out = densities_from_recall(np.array([0.0, 0.03, 0.5, 0.97, 1.0]))
    np.testing.assert_allclose(out, [0.05, 0.05, 0.5, 0.95, 0.95])
    assert np.all((out > 0) & (out < 1))
    np.testing.assert_allclose(densities_from_recall(np.array([0.0, 1.0]), low=0.2, high=0.8), [0.2, 0.8])
    with pytest.raises(ValueError, match="low"):
        densities_from_recall(np.array([0.5]), low=0.0)
    with pytest.raises(ValueError, match="within"):
        densities_from_recall(np.array([1.5]))


def test_json_round_trip() -> None:
    m = _random_measure(np.random.default_rng(1))
    data = m.to_dict()
    text = json.dumps(data)
    assert "face+fused+speech" in data["lambdas"]
    for back in (FuzzyMeasure.from_dict(json.loads(text)), FuzzyMeasure.from_json(text)):
        assert back.channels == m.channels
        for ch in m.channels:
            np.testing.assert_array_equal(back.densities[ch], m.densities[ch])
        assert set(back.lambdas) == set(m.lambdas)
        for key in m.lambdas:
            np.testing.assert_array_equal(back.lambdas[key], m.lambdas[key])
    broken = json.loads(text)
    del broken["lambdas"]["face+speech"]
    with pytest.raises(ValueError, match="face\\+speech"):
        FuzzyMeasure.from_dict(broken)
    with pytest.raises(ValueError, match="malformed"):
        FuzzyMeasure.from_dict({"channels": ["a"]})


# --- integrals ------------------------------------------------------------------------------------

def _reference_integral(h: list[float], g: list[float], lam: float, method: str) -> float:
    """Literal transcription of fusion.md for one class (pure Python)."""
    order = sorted(range(len(h)), key=lambda i: -h[i])
    g_a: list[float] = []
    for pos, i in enumerate(order):
        g_a.append(g[i] if pos == 0 else g[i] + g_a[-1] + lam * g[i] * g_a[-1])
    g_a[-1] = 1.0 if len(h) == 1 else g_a[-1]
    hs = [h[i] for i in order]
    if method == "sugeno":
        return max(min(hs[i], g_a[i]) for i in range(len(h)))
    prev = 0.0
    total = 0.0
    for i in range(len(h)):
        total += hs[i] * (g_a[i] - prev)
        prev = g_a[i]
    return total


@pytest.mark.parametrize("method", METHODS)
def test_matches_literal_transcription(method: str) -> None:
    rng = np.random.default_rng(2)
    m = _random_measure(rng)
    for _ in range(20):
        sup = {ch: rng.dirichlet(np.ones(6)) for ch in m.channels}
        for r in (1, 2, 3):
            for subset in itertools.combinations(m.channels, r):
                present = {ch: sup[ch] for ch in subset}
                out = fuzzy_integral(present, m, method)
                lam = m.lambda_for(subset)
                for k in range(6):
                    ref = _reference_integral([float(sup[ch][k]) for ch in m.channels if ch in subset],
                                              [float(m.densities[ch][k]) for ch in m.channels if ch in subset],
                                              float(lam[k]), method)
                    assert out[k] == pytest.approx(ref, abs=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_single_channel_returns_its_supports(method: str) -> None:
    rng = np.random.default_rng(3)
    m = _random_measure(rng)
    h = rng.dirichlet(np.ones(6))
    np.testing.assert_array_equal(fuzzy_integral({"face": h}, m, method), h)
    # the other channels missing as None behaves like absent keys
    np.testing.assert_array_equal(fuzzy_integral({"face": h, "speech": None, "fused": None}, m, method), h)


def test_choquet_additive_is_weighted_mean() -> None:
    g = {"speech": np.array([0.2, 0.5, 0.7]), "face": np.array([0.3, 0.25, 0.1]), "fused": np.array([0.5, 0.25, 0.2])}
    m = fit_fuzzy_measure(g)
    np.testing.assert_array_equal(m.lambda_for(g), 0.0)
    rng = np.random.default_rng(4)
    for _ in range(10):
        sup = {ch: rng.uniform(0, 1, size=3) for ch in g}
        expected = sum(g[ch] * sup[ch] for ch in g)
        np.testing.assert_allclose(fuzzy_integral(sup, m, "choquet"), expected, atol=1e-12)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(density, min_size=2, max_size=3),
    st.lists(support, min_size=3, max_size=3),
    st.sampled_from(METHODS),
    st.integers(0, 2),
    st.floats(0.0, 1.0),
)
def test_bounds_and_monotonicity(g: list[float], h: list[float], method: str, which: int, bump: float) -> None:
    chans = ("a", "b", "c")[: len(g)]
    m = fit_fuzzy_measure({ch: np.array([gi]) for ch, gi in zip(chans, g, strict=True)})
    sup = {ch: np.array([h[i]]) for i, ch in enumerate(chans)}
    mu = float(fuzzy_integral(sup, m, method)[0])
    hs = [h[i] for i in range(len(chans))]
    assert min(hs) - 1e-12 <= mu <= max(hs) + 1e-12
    which %= len(chans)
    raised = dict(sup)
    raised[chans[which]] = np.array([min(1.0, hs[which] + bump)])
    assert float(fuzzy_integral(raised, m, method)[0]) >= mu - 1e-12


@settings(max_examples=100, deadline=None)
@given(st.lists(density, min_size=3, max_size=3), st.sampled_from(METHODS))
def test_full_set_measure_is_one_both_signs(g: list[float], method: str) -> None:
    """g(A_n) = 1: constant supports h for every channel integrate to exactly h."""
    assume(abs(sum(g) - 1) > 1e-6)
    m = fit_fuzzy_measure({ch: np.array([gi]) for ch, gi in zip("abc", g, strict=True)})
    lam = float(m.lambda_for(["a", "b", "c"])[0])
    assert _measure_values(g, lam) == pytest.approx(1.0, abs=1e-9)
    for hv in (0.0, 0.37, 1.0):
        out = fuzzy_integral({ch: np.array([hv]) for ch in "abc"}, m, method)
        assert out[0] == pytest.approx(hv, abs=1e-12)


def test_both_lambda_signs_occur() -> None:
    strong = fit_fuzzy_measure({"a": np.array([0.9]), "b": np.array([0.8])})
    weak = fit_fuzzy_measure({"a": np.array([0.2]), "b": np.array([0.3])})
    assert -1 < strong.lambda_for(["a", "b"])[0] < 0
    assert weak.lambda_for(["a", "b"])[0] > 0


@pytest.mark.parametrize("method", METHODS)
def test_batch_matches_per_row(method: str) -> None:
    rng = np.random.default_rng(5)
    m = _random_measure(rng)
    batch = {ch: rng.dirichlet(np.ones(6), size=7) for ch in ("speech", "face")}
    out = fuzzy_integral(batch, m, method)
    assert out.shape == (7, 6)
    for n in range(7):
        np.testing.assert_allclose(out[n], fuzzy_integral({ch: v[n] for ch, v in batch.items()}, m, method),
                                   atol=1e-15)


def test_sugeno_hand_example() -> None:
    # two channels, densities 0.4 / 0.3 -> lambda > 0; h = (0.9, 0.6)
    m = fit_fuzzy_measure({"a": np.array([0.4]), "b": np.array([0.3])})
    lam = float(m.lambda_for(["a", "b"])[0])
    assert 1 + lam == pytest.approx((1 + 0.4 * lam) * (1 + 0.3 * lam))
    out_s = fuzzy_integral({"a": np.array([0.9]), "b": np.array([0.6])}, m, "sugeno")
    assert out_s[0] == pytest.approx(max(min(0.9, 0.4), min(0.6, 1.0)))  # = 0.6
    out_c = fuzzy_integral({"a": np.array([0.9]), "b": np.array([0.6])}, m, "choquet")
    assert out_c[0] == pytest.approx(0.9 * 0.4 + 0.6 * (1 - 0.4))


def test_integral_validation() -> None:
    m = _random_measure(np.random.default_rng(6))
    h = np.full(6, 1 / 6)
    with pytest.raises(ValueError, match="method"):
        fuzzy_integral({"face": h}, m, "mean")
    with pytest.raises(ValueError, match="unknown channel"):
        fuzzy_integral({"voice": h}, m)
    with pytest.raises(ValueError, match="no channel"):
        fuzzy_integral({"face": None}, m)
    with pytest.raises(ValueError, match="shape"):
        fuzzy_integral({"face": h, "speech": h[:5]}, m)
    with pytest.raises(ValueError, match="NaN"):
        fuzzy_integral({"face": np.full(6, np.nan)}, m)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fuzzy_integral({"face": np.full(6, 1.5)}, m)


def test_bisection_fallback_without_scipy(monkeypatch: pytest.MonkeyPatch) -> None:
    g = [0.35, 0.5, 0.45]
    expected = solve_lambda(g, method="bisect")
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)  # makes `from scipy.optimize import ...` fail
    assert solve_lambda(g) == expected  # "auto" falls back to bisection
    with pytest.raises(ImportError):
        solve_lambda(g, method="brentq")
    m = fit_fuzzy_measure({"a": np.array([0.35, 0.2]), "b": np.array([0.5, 0.3]), "c": np.array([0.45, 0.4])})
    assert m.lambda_for(["a", "b", "c"])[0] == expected


def test_runtime_modules_import_without_torch_or_scipy() -> None:
    code = (
        "import sys\n"
        "import edge_mmer.features, edge_mmer.features.audio, edge_mmer.features.face, edge_mmer.selection, "
        "edge_mmer.fuzzy\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'scipy', 'librosa'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
