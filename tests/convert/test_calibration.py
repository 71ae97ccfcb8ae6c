"""Calibration sets: npz round trip without pickles, provenance and sha256, the reader, the test split refused."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_mmer.calibration import CalibrationError, CalibrationSet, load_calibration_set, save_calibration_set


def _set() -> CalibrationSet:
    rng = np.random.default_rng(0)
    return CalibrationSet(
        arrays={
            "speech_encoder": {"log_mel": [rng.standard_normal((1, t, 40)).astype(np.float32) for t in (30, 55, 41)]},
            "face_encoder": {"face": [rng.standard_normal((n, 3, 8, 8)).astype(np.float32) for n in (1, 3)]},
            "fusion": {k: [rng.standard_normal((1, 4)).astype(np.float32) for _ in range(5)] for k in ("x", "h", "c")},
        },
        provenance={"source": "dataset:data/x:train", "split": "train", "model_id": "m-1", "created": "now"},
    )


def test_round_trip_no_pickle_sha256_provenance(tmp_path: Path) -> None:
    cs = _set()
    path = tmp_path / "calib.npz"
    digest = save_calibration_set(cs, path)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest() == cs.provenance["sha256"]
    with zipfile.ZipFile(path) as zf:
        assert "speech_encoder/log_mel/000001.npy" in zf.namelist() and "__provenance__.npy" in zf.namelist()
    np.load(path, allow_pickle=False)["__provenance__"]  # a unicode array, no pickle needed
    back = load_calibration_set(path)
    assert back.provenance["sha256"] == digest and back.provenance["source"] == "dataset:data/x:train"
    assert back.provenance["counts"] == {"speech_encoder": 3, "face_encoder": 2, "fusion": 5} == back.counts()
    for net, inputs in cs.arrays.items():
        for name, values in inputs.items():
            assert all(np.array_equal(a, b) for a, b in zip(values, back.arrays[net][name], strict=True))
    assert [s["log_mel"].shape[1] for s in back.samples("speech_encoder")] == [30, 55, 41]


def savez(path: Path, arrays: dict[str, Any]) -> None:
    """``np.savez`` with names that are not identifiers (Any: numpy types ``**kwds`` against its own keywords)."""
    np.savez(path, **arrays)


def test_load_rejects_pickles_and_bad_keys(tmp_path: Path) -> None:
    bad = tmp_path / "obj.npz"
    savez(bad, {"__provenance__": np.array(['{}']), "fusion/x/000000": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(CalibrationError, match="fusion/x/000000"):
        load_calibration_set(bad)
    odd = tmp_path / "odd.npz"
    savez(odd, {"__provenance__": np.array(['{}']), "fusion/x/7": np.zeros((1, 4), np.float32)})
    with pytest.raises(CalibrationError, match=r"odd\.npz.*'fusion/x/7'"):
        load_calibration_set(odd)
    gap = tmp_path / "gap.npz"
    savez(gap, {"__provenance__": np.array(['{}']), "fusion/x/000001": np.zeros((1, 4), np.float32)})
    with pytest.raises(CalibrationError, match="fusion/x/000000' missing"):
        load_calibration_set(gap)
    with pytest.raises(CalibrationError, match="not found"):
        load_calibration_set(tmp_path / "none.npz")


def test_test_split_is_refused(tmp_path: Path) -> None:
    from edge_mmer.calibration.from_dataset import build_from_dataset

    with pytest.raises(ValueError, match="never see the test split"):
        build_from_dataset(tmp_path, tmp_path, split="test")


@pytest.mark.needs_convert  # the calibration reader is ONNX Runtime's quantization API, which imports onnx
def test_reader_yields_every_sample_then_none_and_rewinds() -> None:
    from edge_mmer.calibration.reader import CalibrationReader

    cs = _set()
    reader = CalibrationReader.from_set(cs, "fusion")
    assert len(reader) == 5
    for _ in range(2):
        got = []
        while (feed := reader.get_next()) is not None:
            got.append(feed)
        assert len(got) == 5 and set(got[0]) == {"x", "h", "c"}
        assert np.array_equal(got[4]["x"], cs.arrays["fusion"]["x"][4])
        assert reader.get_next() is None
        reader.rewind()
