"""Label maps at load time (``?map=``, ``?drop=``, ``?labels=``): RAVDESS fearful -> fear without calm
and surprised, MELD joy -> happy, and the errors that name a label the dataset does not have."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import datasets as fx

from edge_mmer.datasets import open_dataset
from edge_mmer.datasets.base import DatasetError
from edge_mmer.datasets.labelmap import relabel, shared_labels


@pytest.fixture(scope="module")
def ravdess(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("av", reason="the dataset fixtures are written with PyAV")
    root = tmp_path_factory.mktemp("ravdess")
    fx.make_ravdess(root, actors=(1, 18, 20), emotions=("01", "02", "03", "06", "08"), statements=("01",))
    return root


def test_ravdess_fearful_to_fear_without_calm_and_surprised(ravdess: Path) -> None:
    plain = open_dataset(f"ravdess:{ravdess}")
    assert plain.labels == ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
    ds = open_dataset(f"ravdess:{ravdess}?map=fearful:fear&drop=calm,surprised")
    assert ds.labels == ("neutral", "happy", "sad", "angry", "fear", "disgust")
    assert {u.label for u in ds.utterances()} == {"neutral", "happy", "fear", "disgust"}  # disgust: audio only
    assert all(ds.labels[u.label_index] == u.label for u in ds.utterances())
    assert len(ds) == len(plain) - 2 * 3 and ds.summary.handled["label_dropped"] == 6
    # calm merged into neutral instead of dropped
    merged = open_dataset(f"ravdess:{ravdess}?map=calm:neutral")
    assert merged.labels[0] == "neutral" and "calm" not in merged.labels
    assert sum(u.label == "neutral" for u in merged.utterances()) == 2 * 3


def test_labels_option_fixes_the_order_and_the_set(ravdess: Path) -> None:
    ds = open_dataset(f"ravdess:{ravdess}?map=fearful:fear&labels=fear,happy,neutral,anger")
    assert ds.labels == ("fear", "happy", "neutral", "anger")
    assert sorted({(u.label, u.label_index) for u in ds.utterances()}) == [("fear", 0), ("happy", 1), ("neutral", 2)]
    again = relabel(open_dataset(f"ravdess:{ravdess}"), ("happy", "neutral"))
    assert again.labels == ("happy", "neutral") and len(again) == 6
    assert shared_labels(("neutral", "calm", "happy"), ("happy", "sad", "neutral")) == ("happy", "neutral")


def test_label_map_errors_name_the_label(ravdess: Path) -> None:
    with pytest.raises(DatasetError, match=r"map: label\(s\) joy not in the dataset \(its labels: neutral, calm"):
        open_dataset(f"ravdess:{ravdess}?map=joy:happy")
    with pytest.raises(DatasetError, match=r"drop: label\(s\) fearful not in the dataset .*after the map.*fear"):
        open_dataset(f"ravdess:{ravdess}?map=fearful:fear&drop=fearful")
    with pytest.raises(DatasetError, match=r"expected OLD:NEW pairs joined by ',', got 'fearful'"):
        open_dataset(f"ravdess:{ravdess}?map=fearful")
    with pytest.raises(DatasetError, match="no label left"):
        open_dataset(f"ravdess:{ravdess}?labels=joy")


def test_meld_joy_to_happy(tmp_path: Path) -> None:
    pytest.importorskip("av", reason="the dataset fixtures are written with PyAV")
    fx.make_meld(tmp_path, dialogues=2, utterances=2)
    ds = open_dataset(f"meld:{tmp_path}?map=joy:happy,anger:angry,sadness:sad")
    assert ds.labels == ("neutral", "happy", "sad", "angry", "surprise", "fear", "disgust")
    assert {u.label for u in ds.utterances()} == {"neutral", "happy", "sad", "angry"}
