"""Evaluation metrics: weighted F1 against scikit-learn, MELD's always-neutral baseline, MOSI's Acc-2."""

from __future__ import annotations

import numpy as np
import pytest

from edge_mmer.metrics import channel_report, mosi_binary_report, protocol_report, weighted_f1


def test_weighted_f1_matches_scikit_learn() -> None:
    metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is the reference for weighted F1")
    rng = np.random.default_rng(0)
    for k in (2, 3, 7):
        y = rng.integers(0, k, 60)
        p = np.where(rng.random(60) < 0.5, y, rng.integers(0, k - 1, 60))  # some classes never predicted
        ref = metrics.precision_recall_fscore_support(y, p, average="weighted", zero_division=0)[2]
        assert weighted_f1(y, p, k) == pytest.approx(ref, abs=1e-12)
    assert weighted_f1(np.array([]), np.array([]), 3) is None


def test_always_neutral_on_meld_test_counts() -> None:
    """datasets.md: on MELD's test split, always predicting neutral gives 48.1 % accuracy and 31.3 weighted F1."""
    counts = {"neutral": 1256, "joy": 402, "sadness": 208, "anger": 345, "surprise": 281, "fear": 50, "disgust": 68}
    labels = list(counts)
    y = np.concatenate([np.full(n, labels.index(lab)) for lab, n in counts.items()])
    report = channel_report(y, np.zeros_like(y), labels)
    assert round(100 * report["accuracy"], 1) == 48.1 and round(100 * report["weighted_f1"], 1) == 31.3
    proto = protocol_report("meld", "emotion", labels, y, {"final": np.zeros_like(y)})
    assert round(100 * proto["official"]["weighted_f1"], 1) == 31.3


def test_mosi_acc2_has0_and_non0() -> None:
    scores = np.array([-2.0, -0.4, 0.0, 0.0, 1.2, 2.8])
    positive = np.array([False, True, True, False, True, False])
    r = mosi_binary_report(scores, positive)
    assert r["acc2_has0"] == pytest.approx(3 / 6)  # truth >= 0: F T T T T T vs F T T F T F
    assert r["n_non0"] == 4 and r["acc2_non0"] == pytest.approx(2 / 4)  # -2, -0.4, 1.2, 2.8
    assert r["acc7"] is None and r["mae"] is None and r["corr"] is None and "predicts the sentiment score" in r["note"]
    proto = protocol_report("mosi", "sentiment-binary", ["negative", "positive"], (scores >= 0).astype(int),
                            {"final": positive.astype(int), "face": np.array([-1, -1, 1, 1, 1, 1])}, scores)
    assert proto["official"]["acc2_has0"] == pytest.approx(0.5) and proto["channels"]["face"]["n"] == 4
