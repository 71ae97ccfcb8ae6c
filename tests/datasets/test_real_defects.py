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


@pytest.fixture(scope="module")
def meld(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("av", reason="the dataset fixtures are written with PyAV")
    root = tmp_path_factory.mktemp("meld") / "MELD.Raw"
    fx.make_meld(root, dialogues=2, utterances=3)
    return root


def _copy(meld: Path, tmp_path: Path) -> Path:
    out = tmp_path / "MELD.Raw"
    shutil.copytree(meld, out)
    return out


def test_meld_raw_c1_controls_are_mapped_back(meld: Path, tmp_path: Path) -> None:
    """MELD.Raw's CSVs hold cp1252 bytes decoded as Latin-1 and stored as UTF-8 (U+0092 for a right
    quote, 3,566 utterances of the real set), with LF line ends."""
    root = _copy(meld, tmp_path)
    for name in ("train_sent_emo.csv", "dev_sent_emo.csv", "test_sent_emo.csv"):
        path = root / name
        text = path.read_text(encoding="utf-8").replace("\r\n", "\n")
        c1: dict[str, str | int | None] = {"\u2019": "\u0092", "\u201c": "\u0093", "\u201d": "\u0094"}
        path.write_text(text.translate(str.maketrans(c1)), encoding="utf-8", newline="")
    assert "\u0092" in (root / "train_sent_emo.csv").read_text(encoding="utf-8")
    ds = open_dataset(f"meld:{root}")
    assert ds.summary.handled["c1_controls"] == 3 and "crlf_line_ends" not in ds.summary.handled
    texts = [u.text for u in ds.utterances()]
    assert not any(any("\u0080" <= ch <= "\u009f" for ch in t) for t in texts)
    assert any("I'm fine" in t for t in texts)  # U+0092 -> U+2019 -> the curly-quote rule's "'"


def test_meld_appledouble_and_dyadic_names(meld: Path, tmp_path: Path) -> None:
    root = _copy(meld, tmp_path)
    (root / "train_splits" / "._dia0_utt0.mp4").write_bytes(b"\x00\x05\x16\x07" + b"\x00" * 60)
    plain = open_dataset(f"meld:{meld}")
    ds = open_dataset(f"meld:{root}")
    assert ds.summary.skipped["clip_without_row"] == plain.summary.skipped["clip_without_row"]
    for name in ("train_sent_emo.csv", "dev_sent_emo.csv", "test_sent_emo.csv"):
        (root / name).rename(root / name.replace(".csv", "_dya.csv"))
    assert len(open_dataset(f"meld:{root}")) == len(plain)


def test_meld_inner_tarballs_not_extracted(meld: Path, tmp_path: Path) -> None:
    root = tmp_path / "MELD.Raw"
    root.mkdir()
    for name in ("train_sent_emo.csv", "dev_sent_emo.csv", "test_sent_emo.csv"):
        shutil.copy(meld / name, root / name)
    for tar in ("train", "dev", "test"):
        (root / f"{tar}.tar.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 16)
    with pytest.raises(DatasetError, match=r"inner tarballs that are not extracted yet: .*train\.tar\.gz"):
        open_dataset(f"meld:{root}")


def test_mosi_raw_takes_max_clip_s(tmp_path: Path) -> None:
    pytest.importorskip("av", reason="the dataset fixtures are written with PyAV")
    fx.make_mosi_raw_mmsa(tmp_path, clips=2)
    assert open_dataset(f"mosi:{tmp_path}?max_clip_s=5").max_clip_s == 5.0
    assert open_dataset(f"mosi:{tmp_path}").max_clip_s == 60.0


def test_cremad_undecodable_flv_keeps_the_wav(tmp_path: Path) -> None:
    """1064_TIE_SAD_XX.flv of the real set has no duration: its wav is fine, so the utterance stays,
    audio only (the whole utterance used to be dropped as corrupt)."""
    pytest.importorskip("av", reason="the dataset fixtures are written with PyAV")
    from edge_mmer.config import demo_config
    from edge_mmer.datasets.frontend import extract_all

    root = tmp_path / "cremad"
    fx.make_cremad(root, actors=(1001, 1002, 1003), emotions=("NEU", "SAD"), sentences=("TIE",))
    flv = root / "VideoFlash" / "1002_TIE_SAD_XX.flv"
    flv.write_bytes(flv.read_bytes()[:200])  # truncated: no decodable frame
    ds = open_dataset(f"cremad:{root}")
    utt = next(u for u in ds.utterances() if u.id == "1002_TIE_SAD_XX")
    entries, stats = extract_all([utt], demo_config(), workers=1)
    entry = entries[utt.id]
    assert entry.error is None and entry.mel is not None and entry.faces is None and stats.failed == 0


def test_ravdess_actor_split_is_fixed_by_actor_number(tmp_path: Path) -> None:
    """RAVDESS has no song for Actor_18: ``vocal=song`` sees 23 actors. Splitting the actors present
    made actor 17 validation for song but train for speech; the split is by actor number (01-17 /
    18-19 / 20-24 at the default fractions), whichever actors a selection or a partial copy has."""
    pytest.importorskip("av", reason="the dataset fixtures are written with PyAV")
    present = tuple(a for a in range(1, 25) if a != 18)
    fx.make_ravdess(tmp_path, actors=present, emotions=("01", "03"), statements=("01",))
    ds = open_dataset(f"ravdess:{tmp_path}")
    splits = {u.speaker: u.split for u in ds.utterances()}
    assert "actor18" not in splits
    assert ds.info["actors"] == {"train": [f"actor{a:02d}" for a in range(1, 18)], "val": ["actor19"],
                                 "test": [f"actor{a:02d}" for a in range(20, 25)]}
    few = tmp_path / "few"  # a partial copy: actors 17, 19, 21 keep their splits (a stray actor 25 moves none)
    fx.make_ravdess(few, actors=(17, 19, 21, 25), emotions=("01", "03"), statements=("01",))
    assert {u.speaker: u.split for u in open_dataset(f"ravdess:{few}").utterances()} == {
        "actor17": "train", "actor19": "val", "actor21": "test", "actor25": "train"}


def test_cremad_fixture_is_like_the_real_set(tmp_path: Path) -> None:
    """The real set's AudioWAV/ and VideoFlash/ match 1:1 (all 7,442 names) and its flvs carry a sound
    track (FLV1 video + MP3): the fixture too, and the loader then takes the sound from the wav with
    nothing to count."""
    av = pytest.importorskip("av", reason="the dataset fixtures are written with PyAV")
    root = tmp_path / "cremad"
    fx.make_cremad(root)
    wavs = {p.stem for p in (root / "AudioWAV").glob("*.wav")}
    flvs = sorted((root / "VideoFlash").glob("*.flv"))
    assert wavs == {p.stem for p in flvs}
    for flv in flvs:
        with av.open(str(flv)) as c:
            assert c.streams.video and c.streams.audio, flv.name
    ds = open_dataset(f"cremad:{root}")
    assert not ds.summary.handled and not ds.summary.skipped
    assert all(u.audio_path.suffix == ".wav" and u.video_path.suffix == ".flv" for u in ds.utterances())
