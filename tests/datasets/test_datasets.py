"""Dataset loaders on tiny fixtures in each real layout (written for real: PyAV clips, wavs, CSVs with
the known defects, HDF5 .csd files, pickles), media decoding, the front ends and the feature cache."""

from __future__ import annotations

import logging
import math
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support import datasets as fx

from edge_mmer.config import demo_config
from edge_mmer.datasets import DatasetError, MediaUtterance, media, open_dataset, parse_spec
from edge_mmer.datasets.base import FeatureUtterance, assign_splits
from edge_mmer.datasets.frontend import extract_all
from edge_mmer.datasets.meld import parse_meld_time
from edge_mmer.datasets.mosi import STANDARD_FOLDS, pool_sequence

pytest.importorskip("av", reason="PyAV (the 'train' extra) writes and decodes the fixtures")

CFG = demo_config()


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Any]]:
    base = tmp_path_factory.mktemp("layouts")
    out: dict[str, tuple[Path, Any]] = {}
    for name, make in (("ravdess", fx.make_ravdess), ("cremad", fx.make_cremad), ("meld", fx.make_meld),
                       ("mosi_raw", fx.make_mosi_raw_mmsa), ("csv", fx.make_csv_manifest)):
        root = base / name
        root.mkdir()
        out[name] = (root, make(root))
    return out


# --------------------------------------------------------------------------------------------- specs


def test_spec_parsing_and_errors(tmp_path: Path) -> None:
    s = parse_spec("meld:/data/MELD?target=sentiment&max_clip_s=30")
    assert (s.kind, s.path, s.options) == ("meld", Path("/data/MELD"), {"target": "sentiment", "max_clip_s": "30"})
    assert parse_spec("synthetic", default_synthetic=Path("data/s")).path == Path("data/s")
    with pytest.raises(DatasetError, match=r"unknown kind 'iemocap'.*ravdess.*synthetic:DIR"):
        parse_spec("iemocap:/x")
    with pytest.raises(DatasetError, match="expected ravdess:PATH"):
        parse_spec("ravdess")
    (tmp_path / "m.csv").write_text("path,label\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"unknown dataset option\(s\) 'colour'.*labels"):
        open_dataset(f"csv:{tmp_path / 'm.csv'}?colour=red")
    with pytest.raises(DatasetError, match=r"option 'target' of 'meld'.*'emotion' or 'sentiment'"):
        open_dataset(f"meld:{tmp_path}?target=mood")
    with pytest.raises(DatasetError, match="does not exist"):
        open_dataset(f"ravdess:{tmp_path / 'nope'}")


def test_speaker_splits_are_group_independent() -> None:
    actors = [f"actor{i:02d}" for i in range(1, 25)]
    splits = assign_splits(actors, 0.1, 0.2)
    assert [a for a in actors if splits[a] == "test"] == [f"actor{i}" for i in range(20, 25)]
    assert [a for a in actors if splits[a] == "val"] == ["actor18", "actor19"]
    assert assign_splits(["a", "b", "c"], 0.1, 0.2) == {"a": "train", "b": "val", "c": "test"}


# ------------------------------------------------------------------------------------------ loaders


def test_ravdess(roots: dict[str, Any]) -> None:
    root, made = roots["ravdess"]
    ds = open_dataset(f"ravdess:{root}")
    assert ds.labels == ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
    assert len(ds) == made["clips"] == 25
    assert {u.speaker: u.split for u in ds.utterances()} == {"actor01": "train", "actor18": "val", "actor20": "test"}
    u = next(u for u in ds.utterances() if u.id == "01-01-05-01-02-01-18")
    assert (u.label, u.speaker, u.split, u.video_path.name) == ("angry", "actor18", "val", "01-01-05-01-02-01-18.mp4")
    assert u.audio_path is None  # the mp4's own 48 kHz stereo AAC track
    both = next(u for u in ds.utterances() if u.id == "01-01-03-01-01-01-01")  # the wav is the lossless sound
    assert both.audio_path is not None and both.audio_path.name == "03-01-03-01-01-01-01.wav" and both.video_path
    alone = next(u for u in ds.utterances() if u.id == "03-01-07-01-01-01-01")  # the audio-only download
    assert alone.video_path is None and alone.label == "disgust"
    assert ds.summary.handled == {"not_audio_video": 1, "audio_only": 1, "other_vocal_channel": 1}
    assert ds.summary.skipped == {"unrecognised_name": 1}
    # sessions: one actor's clips in a seeded shuffle, not the file order (which groups emotions)
    sessions = ds.sessions("train")
    assert len(sessions) == 2 and [u.index for u in sessions[0]] == list(range(8))
    ids = [u.id for u in sessions[0]]
    assert ids != sorted(ids) and ids == [u.id for u in open_dataset(f"ravdess:{root}").sessions("train")[0]]
    assert len(open_dataset(f"ravdess:{root}?vocal=all")) == 26


def test_cremad(roots: dict[str, Any]) -> None:
    root, made = roots["cremad"]
    ds = open_dataset(f"cremad:{root}")
    assert ds.labels == ("neutral", "happy", "angry", "sad", "fear", "disgust") == CFG.labels
    assert len(ds) == made["clips"] == 24 and not ds.summary.handled and not ds.summary.skipped
    first = next(u for u in ds.utterances() if u.id == "1001_DFA_NEU_XX")
    assert first.audio_path.suffix == ".wav" and first.video_path.suffix == ".flv" and first.label == "neutral"
    assert {u.split for u in ds.utterances() if u.speaker == "1003"} == {"test"}


def test_cremad_partial_copy(tmp_path: Path) -> None:
    """Not in the real set (its wavs and flvs match 1:1), but in a partial copy: a wav without its flv
    is kept audio only, an flv without its wav is skipped; both counted."""
    made = fx.make_cremad(tmp_path, actors=(1001, 1002), emotions=("NEU", "HAP"), sentences=("DFA",),
                          mismatched=True)
    ds = open_dataset(f"cremad:{tmp_path}")
    assert len(ds) == made["clips"] == 4
    assert ds.summary.handled == {"audio_without_video": 1} and ds.summary.skipped == {"video_without_audio": 1}
    first = next(u for u in ds.utterances() if u.id == "1001_DFA_NEU_XX")
    assert first.video_path is None and first.audio_path.suffix == ".wav"
    assert all(u.video_path is not None for u in ds.utterances() if u is not first)


def test_meld_defects_and_dialogues(roots: dict[str, Any]) -> None:
    root, made = roots["meld"]
    ds = open_dataset(f"meld:{root}?max_clip_s=2")
    assert ds.labels == ("neutral", "joy", "sadness", "anger", "surprise", "fear", "disgust")
    assert ds.max_clip_s == 2.0
    assert {s: len(ds.utterances(s)) for s in ("train", "val", "test")} == made.loaded
    assert {s: len(ds.sessions(s)) for s in ("train", "val", "test")} == made.sessions
    assert ds.summary.skipped == {"missing_clip": 1, "clip_without_row": 2}
    assert ds.summary.examples["missing_clip"] == ["val/dia110_utt7"]
    assert set(ds.summary.examples["clip_without_row"]) == {"val/dia66_utt9.mp4",
                                                            "test/final_videos_testdia101_utt0.mp4"}
    assert ds.summary.handled["crlf_line_ends"] == 3 and ds.summary.handled["curly_quotes"] == 10
    assert ds.summary.handled["one_digit_hour"] >= 10
    dialogue = next(s for s in ds.sessions("test") if s[0].session == "test/dia1")
    assert [u.index for u in dialogue] == [0, 1, 2, 3] and dialogue[0].text.startswith('"Oh my God"')
    senti = open_dataset(f"meld:{root}?target=sentiment")
    assert senti.labels == ("negative", "neutral", "positive") and senti.task == "sentiment"
    assert {u.label for u in senti.utterances() if u.session == "train/dia0"} <= {"negative", "neutral", "positive"}


def test_meld_csv_variants(tmp_path: Path) -> None:
    for text, short in (("0:13:42,477", True), ("00:13:42,477", False)):
        seconds, flag = parse_meld_time(text)
        assert seconds == pytest.approx(822.477) and flag is short
    with pytest.raises(ValueError):
        parse_meld_time("13:42")
    (tmp_path / "train_splits").mkdir()
    fx.write_clip(tmp_path / "train_splits" / "dia5_utt0.mp4", 1)
    # cp1252 bytes (a curly apostrophe is 0x92), LF line ends, the dyadic variant's columns
    text = ("Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Old_Dialogue_ID,Old_Utterance_ID,Season,"
            "Episode,StartTime,EndTime\n\"It\x92s me\",Joey,Joy,positive,0,0,5,0,1,1,\"0:00:01,000\",\"0:00:02,000\"\n")
    (tmp_path / "train_sent_emo.csv").write_bytes(text.encode("latin-1"))
    ds = open_dataset(f"meld:{tmp_path}")
    assert len(ds) == 1 and ds.utterances()[0].video_path.name == "dia5_utt0.mp4"
    assert ds.utterances()[0].label == "joy" and ds.summary.handled["not_utf8"] == 1
    (tmp_path / "train_sent_emo.csv").write_text("Utterance,Speaker,Emotion\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"train_sent_emo.csv: missing column\(s\) Sentiment, Dialogue_ID"):
        open_dataset(f"meld:{tmp_path}")


def test_mosi_raw_mmsa_layout(roots: dict[str, Any]) -> None:
    root, made = roots["mosi_raw"]
    ds = open_dataset(f"mosi:{root}")
    assert ds.labels == ("negative", "positive") and ds.task == "sentiment-binary" and not ds.features_only
    assert len(ds) == made["segments"] and ds.summary.skipped == {"missing_clip": 1}
    for split in ("train", "val", "test"):
        (session,) = ds.sessions(split)
        assert session[0].session == STANDARD_FOLDS[split][0]
        assert [u.id for u in session] == [f"{session[0].session}_{c}" for c in range(1, 6)]
    for u in ds.utterances():
        assert isinstance(u, MediaUtterance) and u.score is not None
        assert u.label == ("positive" if u.score >= 0 else "negative")
    assert any(u.score == 0.0 and u.label == "positive" for u in ds.utterances())  # Has0: 0 is positive
    assert len(open_dataset(f"mosi:{root}?zero=drop")) == len(ds) - sum(u.score == 0 for u in ds.utterances())


def test_mosi_folds_are_the_sdk_standard() -> None:
    assert [len(STANDARD_FOLDS[s]) for s in ("train", "val", "test")] == [52, 10, 31]
    assert len(set().union(*STANDARD_FOLDS.values())) == 93


def test_mosi_raw_sdk_layout_labels_from_the_opinion_csv(tmp_path: Path) -> None:
    """The raw release's ``Labels/OpinionLevelSentiment.csv`` (headerless: start, end, video_id,
    segment_no, label) labels each ``<vid>_<i>.mp4`` by its (video, segment number), whatever the
    time order of the numbers; no .csd (and no h5py) is needed."""
    made = fx.make_mosi_raw_sdk(tmp_path, labels="csv")
    ds = open_dataset(f"mosi:{tmp_path}")
    assert len(ds) == made.segments and ds.summary.skipped == {"missing_clip": made.missing_clip}
    assert ds.info["labels_file"] == "OpinionLevelSentiment.csv"
    assert {u.id: u.score for u in ds.utterances()} == pytest.approx(made.scores)
    first = ds.sessions("train")[0][0]
    assert first.audio_path is None and first.video_path.name.endswith("_1.mp4")  # no wav: audio from the mp4
    assert all(u.audio_path is not None for u in ds.utterances() if u is not first)
    assert [u.id.rsplit("_", 1)[1] for u in ds.sessions("test")[0]] == ["1", "2", "3"]


@pytest.mark.needs_h5py  # h5py reads CMU-MultimodalSDK .csd files
def test_mosi_raw_sdk_layout_prefers_the_csv_to_the_csd(tmp_path: Path) -> None:
    made = fx.make_mosi_raw_sdk(tmp_path, labels="both")
    ds = open_dataset(f"mosi:{tmp_path}")
    assert ds.info["labels_file"] == "OpinionLevelSentiment.csv"
    assert {u.id: u.score for u in ds.utterances()} == pytest.approx(made.scores)


@pytest.mark.needs_h5py
def test_mosi_raw_sdk_layout_csd_checks_the_files_per_video(tmp_path: Path) -> None:
    """The labels .csd has no segment numbers (segment i = row i - 1): used only when each video's
    files are exactly segments 1..rows, else refused naming the video (no silent mislabel)."""
    made = fx.make_mosi_raw_sdk(tmp_path, labels="csd")
    ds = open_dataset(f"mosi:{tmp_path}")
    assert len(ds) == made.segments and ds.info["labels_file"] == "CMU_MOSI_Opinion_Labels.csd"
    vid = STANDARD_FOLDS["val"][0]
    (tmp_path / "Raw" / "Video" / "Segmented" / f"{vid}_2.mp4").unlink()
    with pytest.raises(DatasetError, match=rf"video {vid}: segment files 1, 3 but 3 rows .*OpinionLevelSentiment"):
        open_dataset(f"mosi:{tmp_path}")


@pytest.mark.needs_h5py
def test_mosi_csd_features(tmp_path: Path) -> None:
    made = fx.make_mosi_csd(tmp_path)
    ds = open_dataset(f"mosi:{tmp_path}")
    assert ds.features_only and ds.info["audio_features"] == "CMU_MOSI_COVAREP.csd"
    assert {s: len(ds.utterances(s)) for s in ("train", "val", "test")} == dict.fromkeys(("train", "val", "test"),
                                                                                         made["per_split"])
    assert ds.summary.skipped == {"video_not_in_standard_folds": 1}
    u = ds.utterances("test")[0]
    assert isinstance(u, FeatureUtterance) and u.face is not None
    assert u.speech.shape == (148,) and u.face.shape == (70,)
    assert all(np.isfinite(x.speech).all() for x in ds.utterances())  # COVAREP's -inf pooled as 0
    # an aligned file: keys <vid>[<i>], one per segment
    import h5py

    aligned = tmp_path / "aligned"
    with h5py.File(tmp_path / "CMU_MOSI_Opinion_Labels.csd", "r") as f:
        vid = STANDARD_FOLDS["train"][0]
        scores = f["Opinion Segment Labels"]["data"][vid]["features"][()].reshape(-1)
    labels, audio = {}, {}
    for i, sc in enumerate(scores[:4]):  # the SDK's align() keys: <vid>[i], i the 0-based label row
        labels[f"{vid}[{i}]"] = (np.array([[sc]], np.float32), np.array([[0.0, 1.0]]))
        audio[f"{vid}[{i}]"] = (np.full((3, 5), float(i), np.float32), np.zeros((3, 2)))
    fx._csd(aligned / "CMU_MOSI_Opinion_Labels.csd", "Opinion Segment Labels", labels)
    fx._csd(aligned / "CMU_MOSI_COVAREP.csd", "COVAREP", audio)
    al = open_dataset(f"mosi:{aligned}")
    assert [u.index for u in al.utterances()] == [0, 1, 2, 3] and al.utterances()[2].speech[:5].tolist() == [2.0] * 5
    assert [u.id.rsplit("_", 1)[1] for u in al.utterances()] == ["1", "2", "3", "4"]  # 1-based, as every layout
    assert all(u.face is None for u in al.utterances())


def test_mosi_pickles(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    made = fx.make_mosi_mmsa_pickle(tmp_path / "aligned_50.pkl")
    with caplog.at_level(logging.WARNING):
        ds = open_dataset(f"mosi:{tmp_path / 'aligned_50.pkl'}")
    assert "trusted" in caplog.text and ds.info["pickle_layout"] == "MMSA" and ds.features_only
    assert [len(ds.utterances(s)) for s in ("train", "val", "test")] == [made["per_split"]] * 3
    session = ds.sessions("val")[0]
    assert session[0].session == STANDARD_FOLDS["val"][0] and [u.id.rsplit("_", 1)[1] for u in session] == [
        str(c) for c in range(1, 9)]
    assert session[0].speech.shape == (10,) and session[0].face.shape == (40,)
    mult = fx.make_mosi_mult_pickle(tmp_path / "mosi_data.pkl")
    m = open_dataset(f"mosi:{tmp_path / 'mosi_data.pkl'}")
    assert m.info["pickle_layout"] == "MulT" and len(m.utterances("test")) == mult["per_split"]
    assert "duplicate_segment" not in m.summary.skipped  # two segments starting in one second stay two
    assert [u.id.rsplit("_", 1)[1] for u in m.sessions("test")[0]] == [str(c) for c in range(1, 13)]
    assert all(np.isfinite(u.speech).all() for u in m.utterances())
    (tmp_path / "bad.pkl").write_bytes(b"not a pickle")
    with pytest.raises(DatasetError, match=r"bad\.pkl: not a readable pickle"):
        open_dataset(f"mosi:{tmp_path / 'bad.pkl'}")


def test_pooling() -> None:
    x = np.array([[1.0, -np.inf], [3.0, 2.0], [100.0, 100.0]])
    np.testing.assert_allclose(pool_sequence(x, length=2), [2.0, 1.0, 1.0, 1.0])
    assert pool_sequence(np.zeros((0, 3))).shape == (6,)


def test_pooling_ignores_zero_padding() -> None:
    """The SDK pads MulT's sequences with zero rows on the left (no lengths in the pickle); MMSA-FET
    pads on the right (with lengths). Neither padding enters the mean and the standard deviation."""
    real = np.array([[1.0, 2.0], [3.0, -np.inf], [5.0, 6.0]])
    want = pool_sequence(real)
    pad = np.zeros((4, 2))
    np.testing.assert_allclose(pool_sequence(np.vstack([pad, real])), want)  # MulT: left, no length
    np.testing.assert_allclose(pool_sequence(np.vstack([real, pad])), want)  # right, no length
    np.testing.assert_allclose(pool_sequence(np.vstack([real, pad]), length=5), want)  # MMSA: a length past the data
    np.testing.assert_allclose(pool_sequence(np.zeros((5, 2))), np.zeros(4))  # all padding: zeros


def test_csv_manifest(roots: dict[str, Any], tmp_path: Path) -> None:
    root, made = roots["csv"]
    ds = open_dataset(f"csv:{root / 'manifest.csv'}")
    assert ds.labels == ("calm", "excited") and len(ds) == made["utterances"]
    assert ds.summary.skipped == {"missing_clip": 1, "bad_time": 1}
    assert len({u.split for u in ds.utterances()}) == 3
    for spk in ("spk0", "spk1", "spk2"):
        assert len({u.split for u in ds.utterances() if u.speaker == spk}) == 1  # speaker-independent
    windows = [u for u in ds.utterances() if u.start_s is not None]
    assert sorted((u.start_s, u.end_s) for u in windows) == [(0.2, 0.9), (1.1, 1.8)]
    wav = next(u for u in ds.utterances() if u.audio_path is not None)
    assert wav.video_path is None and wav.audio_path.name == "voice.wav"
    # headerless, positional, labels fixed by the option
    (tmp_path / "rec").mkdir()
    shutil.copy(root / "rec" / "spk0_0.mp4", tmp_path / "rec" / "a.mp4")
    (tmp_path / "m.csv").write_text("rec/a.mp4,b,s1\nrec/a.mp4,a,s2,0.1,0.5\nrec/a.mp4,b,s3\n", encoding="utf-8")
    plain = open_dataset(f"csv:{tmp_path / 'm.csv'}?labels=b,a")
    assert plain.labels == ("b", "a") and [u.label_index for u in plain.utterances()] == [0, 1, 0]
    (tmp_path / "m2.csv").write_text("path,label,split\nrec/a.mp4,b,train\nrec/a.mp4,a,\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="column 'split' is empty on some rows"):
        open_dataset(f"csv:{tmp_path / 'm2.csv'}")


# -------------------------------------------------------------------------------------------- media


def test_media_decoding(roots: dict[str, Any], tmp_path: Path) -> None:
    root, _ = roots["csv"]
    clip = root / "rec" / "spk0_0.mp4"  # 0.8 s, 8 fps, AAC at 16 kHz
    wave = media.decode_audio(clip)
    assert wave.dtype == np.float32 and wave.ndim == 1 and abs(wave.size - 12800) < 1600
    assert np.abs(wave).max() > 0.05
    cut = media.decode_audio(root / "rec" / "long.mp4", 16000, 0.5, 1.0)
    assert cut.size == 8000
    frames = media.decode_frames(clip, None)
    assert len(frames) == 6 and frames[0].shape == (96, 96, 3) and frames[0].dtype == np.uint8
    at5 = media.decode_frames(clip, 5.0)  # the runtime's slot grid floor(t * 5): t = 0, .125, ..., .625
    assert len(at5) == len({math.floor(i / 8 * 5 + 1e-9) for i in range(6)}) == 4
    assert len(media.decode_frames(root / "rec" / "long.mp4", None, 0.5, 1.0)) == 4
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(media.MediaError, match=r"bad\.mp4"):
        media.decode_audio(tmp_path / "bad.mp4")
    with pytest.raises(media.MediaError, match="has no video stream"):
        media.decode_frames(root / "rec" / "voice.wav", 5.0)
    with pytest.raises(media.MediaError, match="file is missing"):
        media.decode_frames(tmp_path / "none.mp4", 5.0)
    info = media.probe(root / "rec" / "long.mp4")
    assert info.has_audio and info.has_video and info.duration_s == pytest.approx(2.0, abs=0.2)
    flv = roots["cremad"][0] / "VideoFlash" / "1001_DFA_HAP_XX.flv"
    assert len(media.decode_frames(flv, 5.0)) >= 3


# ------------------------------------------------------------------------------- front ends and cache


def test_front_ends_workers_cache_and_resume(roots: dict[str, Any], tmp_path: Path) -> None:
    root, _ = roots["cremad"]
    utts = open_dataset(f"cremad:{root}").utterances()[:10]
    cache = tmp_path / "cache"
    first, stats = extract_all(utts, CFG, cache_dir=cache, workers=2)
    assert (stats.decoded, stats.cached, stats.failed) == (10, 0, 0)
    for u in utts:
        e = first[u.id]
        assert e.mel is not None and e.mel.shape[1] == CFG.audio.n_mels
        if u.video_path is None:
            assert e.faces is None
        else:
            assert e.faces is not None and 1 <= len(e.faces) <= CFG.face.frames_per_utterance
            assert e.faces.shape[1:] == (CFG.face.crop_size, CFG.face.crop_size, 3)
    plain, _ = extract_all(utts, CFG, workers=1)  # no cache, in this process: the same arrays
    for u in utts:
        np.testing.assert_array_equal(plain[u.id].mel, first[u.id].mel)
        assert (plain[u.id].faces is None) == (first[u.id].faces is None)
        if plain[u.id].faces is not None:
            np.testing.assert_array_equal(plain[u.id].faces, first[u.id].faces)
    # a second run decodes nothing (counted in this process)
    before = media.DECODES
    again, stats = extract_all(utts, CFG, cache_dir=cache, workers=1)
    assert (stats.decoded, stats.cached) == (0, 10) and before == media.DECODES
    np.testing.assert_array_equal(again[utts[3].id].mel, first[utts[3].id].mel)
    # another front-end setting is another key
    other = replace(CFG, face=replace(CFG.face, frames_per_utterance=2))
    _, stats = extract_all(utts[:2], other, cache_dir=cache)
    assert stats.decoded == 2
    # a changed file is decoded again, the others come from the cache
    fx.write_wav(utts[0].audio_path, fx.tone(5, 0.5, 99))
    _, stats = extract_all(utts, CFG, cache_dir=cache)
    assert (stats.decoded, stats.cached) == (1, 9)
    # an interrupted run keeps what it finished
    fresh = tmp_path / "fresh"
    done: list[str] = []

    def stop_after_three(uid: str, entry: object) -> None:
        done.append(uid)
        if len(done) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract_all(utts, CFG, cache_dir=fresh, workers=1, on_result=stop_after_three)
    _, stats = extract_all(utts, CFG, cache_dir=fresh, workers=1)
    assert (stats.decoded, stats.cached) == (7, 3)


def test_defective_media_is_counted_not_raised(roots: dict[str, Any], tmp_path: Path) -> None:
    root, made = roots["meld"]
    ds = open_dataset(f"meld:{root}?max_clip_s=2")
    bad = [u for u in ds.utterances() if u.id in (*made.corrupt, *made.overlong)]
    entries, stats = extract_all(bad, CFG, cache_dir=tmp_path, max_clip_s=ds.max_clip_s)
    assert stats.reasons == {"corrupt_clip": 1, "overlong_clip": 1}
    assert entries["train/dia125_utt3"].error == "corrupt_clip" and "dia125_utt3.mp4" in entries[
        "train/dia125_utt3"].detail
    _, stats = extract_all(bad, CFG, cache_dir=tmp_path, max_clip_s=ds.max_clip_s)
    assert (stats.decoded, stats.failed) == (0, 2)  # failures are cached too
