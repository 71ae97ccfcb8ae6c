"""Defects of the real downloads, reproduced in small fixtures: CREMA-D as git-LFS pointer stubs (a
GitHub zip, a clone without git-lfs), MELD's C1-control encoding, AppleDouble files and the dyadic
file names, the MELD tree with its inner tarballs not extracted."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support import datasets as fx

from edge_mmer.datasets import open_dataset
from edge_mmer.datasets.base import DatasetError, is_lfs_pointer


def test_cremad_lfs_stubs_are_named(tmp_path: Path) -> None:
    fx.make_cremad_lfs_stubs(tmp_path / "zip")
    with pytest.raises(DatasetError, match=r"9 files of .* are git-LFS pointer stubs.*git lfs pull"):
        open_dataset(f"cremad:{tmp_path / 'zip'}")
    assert is_lfs_pointer(next((tmp_path / "zip" / "AudioWAV").glob("*.wav")))


def test_cremad_some_stubs_are_skipped_and_counted(tmp_path: Path) -> None:
    pytest.importorskip("av", reason="the dataset fixtures are written with PyAV")
    root = tmp_path / "partial"
    fx.make_cremad(root)
    fx.lfs_pointer(root / "AudioWAV" / "1002_DFA_HAP_XX.wav", 80_044)  # its media never pulled
    fx.lfs_pointer(root / "VideoFlash" / "1003_DFA_HAP_XX.flv", 311_233)
    ds = open_dataset(f"cremad:{root}")
    assert ds.summary.skipped["lfs_pointer"] == 1 and ds.summary.handled["lfs_pointer_video"] == 1
    assert "1002_DFA_HAP_XX" not in {u.id for u in ds.utterances()}
    audio_only = next(u for u in ds.utterances() if u.id == "1003_DFA_HAP_XX")
    assert audio_only.video_path is None
