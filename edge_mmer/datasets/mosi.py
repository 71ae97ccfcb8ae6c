"""CMU-MOSI (Zadeh et al. 2016): 93 YouTube opinion videos, 2,199 segments, sentiment in [-3, 3].

The task here is the paper's: binary polarity, ``positive`` when the score is >= 0 ("Has0"; the
reports also give "Non0", which drops score-0 segments). The score is kept on every utterance for
those metrics. The context sequence is the video, its segments in order. Four sources (``source=``
overrides the detection):

``raw`` (segment videos, decoded by the front ends like any media dataset), in either layout:
  * MMSA: ``label.csv`` (columns ``video_id, clip_id, label, mode``, any order, more allowed) and
    ``Raw/<video_id>/<clip_id>.mp4``; ``mode`` gives the split (train / valid / test);
  * CMU-MultimodalSDK: ``Raw/Video/Segmented/<video_id>_<i>.mp4`` (audio from
    ``Raw/Audio/WAV_16000/Segmented/<video_id>_<i>.wav`` when present), labels from the raw
    release's ``Labels/OpinionLevelSentiment.csv`` by (video, segment number), else from
    ``CMU_MOSI_Opinion_Labels.csd`` (segment ``i`` = row ``i - 1``, needs h5py; a video whose files
    are not segments 1..rows is refused, see :mod:`edge_mmer.datasets.mosi_sdk`); splits from the
    SDK's standard folds (52 / 10 / 31 videos).
``csd`` (CMU-MultimodalSDK computational sequences, HDF5; needs h5py): an audio file (default: the
  one whose name has ``COVAREP``; ``audio=NAME``), a visual one (``Facet`` or ``OpenFace``;
  ``vision=NAME``) and the labels (``Opinion_Labels``; ``labels=NAME``). Unaligned files are cut per
  segment by the label intervals; aligned ones (keys ``<vid>[<i>]``) are used as they are. Standard folds.
``pickle``: the MMSA ``aligned_50.pkl`` / ``unaligned_50.pkl`` or the MulT ``mosi_data.pkl``.
  **A pickle can run code when it is loaded: load only your own, trusted copy.** Training side only;
  nothing the runtime reads is ever a pickle.

Feature sources carry no media: each segment's feature sequence is pooled over time (mean and
standard deviation per dimension, ``-inf`` / NaN set to 0) into one vector per modality, and those
vectors train the context, selection, fusion and SVM stages directly (no encoders).

Options: ``source``, ``audio``, ``vision``, ``labels`` (csd file names), ``zero=positive`` (default) or
``drop`` (leave out score-0 segments everywhere).
"""

from __future__ import annotations

import csv
import io
import logging
import pickle
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edge_mmer.datasets.base import DatasetError, DefectSummary, FeatureUtterance, LoadedDataset, MediaUtterance
from edge_mmer.datasets.mosi_sdk import (
    OPINION_CSV,
    check_segment_files,
    find_opinion_csv,
    read_opinion_csv,
    segment_files,
)
from edge_mmer.datasets.options import Options

log = logging.getLogger(__name__)

__all__ = ["LABELS", "STANDARD_FOLDS", "binary_label", "load_mosi", "pool_sequence", "read_csd"]

LABELS = ("negative", "positive")

# CMU-MultimodalSDK, mmsdk/mmdatasdk/dataset/standard_datasets/CMU_MOSI/cmu_mosi_std_folds.py
_TRAIN = """2iD-tVS8NPw 8d-gEyoeBzc Qr1Ca94K55A Ci-AH39fi3Y 8qrpnFRGt2A Bfr499ggo-0 QN9ZIUWUXsY 9T9Hf74oK10
7JsX8y1ysxY 1iG0909rllw Oz06ZWiO20M BioHAh1qJAQ 9c67fiY0wGQ Iu2PFX3z_1s Nzq88NnDkEk Clx4VXItLTE 9J25DZhivz8
Af8D0E4ZXaw TvyZBvOMOTc W8NXH0Djyww 8OtFthrtaJM 0h-zjBukYpk Vj1wYRQjB-o GWuJjcEuzt8 BI97DNYfe5I PZ-lDQFboO8
1DmNV9C1hbY OQvJTdtJ2H4 I5y0__X72p0 9qR7uwkblbs G6GlGvlkxAQ 6_0THN4chvY Njd1F0vZSm4 BvYR0L6f2Ig 03bSnISJMiM
Dg_0XKD0Mf4 5W7Z1C_fDaE VbQk4H8hgr0 G-xst2euQUc MLal-t_vJPM BXuRRbG0Ugk LSi-o-IrDMs Jkswaaud0hk 2WGyTLYerpo
6Egk_28TtTM Sqr0AcuoNnk POKffnXeBds 73jzhE8R1TQ OtBXNcAL_lE HEsqda8_d0Q VCslbP0mgZI IumbAb8q2dM"""
_VALID = """WKA5OygbEKI c5xsKMxpXnc atnd_PF-Lbs bvLlb-M3UXU bOL9jKpeJRs _dI--eQ6qVU ZAIRrfG22O0 X3j2zQgwYgE
aiEXnCPZubE ZUXBRvtny7o"""
_TEST = """tmZoasNr4rU zhpQhgha_KU lXPQBPVc5Cw iiK8YX8oH1E tStelxIAHjw nzpVDcQ0ywM etzxEpPuc6I cW1FSBF59ik
d6hH302o4v8 k5Y_838nuGo pLTX3ipuDJI jUzDDGyPkXU f_pcplsH_V0 yvsjCA6Y5Fc nbWiPyCm4g0 rnaNMUZpvvg wMbj6ajWbic
cM3Yna7AavY yDtzw_Y-7RU vyB00TXsimI dq3Nf_lMPnE phBUpBr1hSo d3_k5Xpfmik v0zCBqDeKcE tIrG4oNLFzE fvVhgmXxadc
ob23OKe5a9Q cXypl4FnoZo vvZ4IcEtiZc f9O3YtZ2VfI c7UH_rxdZv4"""
STANDARD_FOLDS: dict[str, tuple[str, ...]] = {
    "train": tuple(_TRAIN.split()), "val": tuple(_VALID.split()), "test": tuple(_TEST.split())}
_FOLD_OF = {vid: split for split, vids in STANDARD_FOLDS.items() for vid in vids}
_SPLIT_NAMES = {"train": "train", "valid": "val", "validation": "val", "dev": "val", "val": "val", "test": "test"}
_ALIGNED_KEY = re.compile(r"^(.+)\[(\d+)\]$")


def binary_label(score: float) -> str:
    """The paper's binary task, "Has0" convention: score >= 0 is positive."""
    return "positive" if score >= 0 else "negative"


def pool_sequence(seq: np.ndarray, length: int | None = None) -> np.ndarray:
    """(T, D) -> (2D,): mean and standard deviation over the first ``length`` steps (all when None);
    non-finite values count as 0. All-zero rows are padding and left out: the SDK pads MulT's
    sequences on the left and the pickle has no lengths, MMSA-FET pads on the right. An empty (or
    all-padding) sequence pools to zeros."""
    x = np.asarray(seq, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if length is not None:
        x = x[: max(0, int(length))]
    x = np.where(np.isfinite(x), x, 0.0)
    x = x[np.any(x != 0.0, axis=1)]
    if x.shape[0] == 0:
        return np.zeros(2 * x.shape[1], dtype=np.float32)
    return np.concatenate([x.mean(0), x.std(0)]).astype(np.float32)


class _Builder:
    """Collects utterances, applies the zero policy and the labels, counts defects."""

    def __init__(self, zero: str) -> None:
        self.zero = zero
        self.summary = DefectSummary()
        self.items: list[tuple[str, str, int, str, float, dict[str, Any]]] = []

    def add(self, vid: str, clip: int, split: str, score: float, **payload: Any) -> None:
        uid = f"{vid}_{clip}"
        if not np.isfinite(score) or abs(score) > 3.0 + 1e-6:
            self.summary.skip("bad_label", uid)
            return
        if score == 0.0 and self.zero == "drop":
            self.summary.handle("zero_label_dropped", uid)
            return
        self.items.append((uid, vid, clip, split, float(score), payload))


def _standard_split(vid: str, summary: DefectSummary, counted: set[str]) -> str | None:
    """The video's standard fold; a video outside them is counted once (its segments are skipped)."""
    split = _FOLD_OF.get(vid)
    if split is None and vid not in counted:
        counted.add(vid)
        summary.skip("video_not_in_standard_folds", vid)
    return split


# ------------------------------------------------------------------------------------------- HDF5


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:
        raise DatasetError("reading CMU-MultimodalSDK .csd files needs h5py: pip install edge-mmer[datasets] "
                           "(or pip install h5py)") from None
    return h5py


def read_csd(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A computational sequence: key -> (features (T, D), intervals (T, 2) seconds)."""
    h5py = _h5py()
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    try:
        with h5py.File(path, "r") as f:
            roots = [k for k in f if isinstance(f[k], h5py.Group) and "data" in f[k]]
            if len(roots) != 1:
                raise DatasetError(f"{path}: expected one root group holding 'data', found {list(f)}")
            data = f[roots[0]]["data"]
            for key in data:
                g = data[key]
                if "features" not in g or "intervals" not in g:
                    raise DatasetError(f"{path}: data/{key} lacks 'features' or 'intervals'")
                out[str(key)] = (np.asarray(g["features"][()]), np.asarray(g["intervals"][()], dtype=np.float64))
    except OSError as exc:
        raise DatasetError(f"{path}: not a readable HDF5 computational sequence: {exc}") from None
    return out


def _pick(root: Path, explicit: str | None, patterns: tuple[str, ...], what: str) -> Path | None:
    if explicit:
        p = Path(explicit) if Path(explicit).is_absolute() else root / explicit
        if not p.is_file():
            raise DatasetError(f"{p}: the {what} .csd file named in the options does not exist")
        return p
    files = sorted(root.rglob("*.csd"))
    for pat in patterns:
        for f in files:
            if pat.lower() in f.name.lower():
                return f
    return None


def _load_csd(root: Path, opts: Options, b: _Builder) -> dict[str, Any]:
    audio_p = _pick(root, opts.string("audio"), ("COVAREP", "opensmile"), "audio")
    vision_p = _pick(root, opts.string("vision"), ("Facet_42", "Facet42", "Facet", "OpenFace"), "visual")
    labels_p = _pick(root, opts.string("labels"), ("Opinion_Labels", "Labels"), "labels")
    if audio_p is None or labels_p is None:
        raise DatasetError(f"{root}: needs an audio .csd (COVAREP) and the labels .csd (CMU_MOSI_Opinion_Labels); "
                           f"found {[p.name for p in sorted(root.rglob('*.csd'))]}")
    labels, audio = read_csd(labels_p), read_csd(audio_p)
    vision = read_csd(vision_p) if vision_p is not None else {}
    if vision_p is None:
        log.warning("%s: no visual .csd (FACET / OpenFace): the face channel is absent", root)

    def segments() -> Iterator[tuple[str, int, float, str, tuple[float, float] | None]]:
        for key in sorted(labels):
            feats, intervals = labels[key]
            m = _ALIGNED_KEY.match(key)
            if m:  # aligned: one key per segment, <vid>[i] with i the 0-based label row (SDK dataset.py):
                # segment i + 1, numbered from 1 as the unaligned files, MMSA and the raw layouts are
                yield m.group(1), int(m.group(2)) + 1, float(np.asarray(feats).reshape(-1)[0]), key, None
                continue
            for i in range(len(feats)):
                yield key, i + 1, float(np.asarray(feats[i]).reshape(-1)[0]), key, (float(intervals[i][0]),
                                                                                    float(intervals[i][1]))

    def cut(seqs: dict[str, tuple[np.ndarray, np.ndarray]], key: str, window: tuple[float, float] | None
            ) -> np.ndarray | None:
        if key not in seqs:
            return None
        feats, intervals = seqs[key]
        if window is not None:
            mid = intervals.mean(axis=1) if intervals.ndim == 2 else intervals
            feats = feats[(mid >= window[0]) & (mid < window[1])]
        return feats if len(feats) else None

    counted: set[str] = set()
    for vid, clip, score, key, window in segments():
        split = _standard_split(vid, b.summary, counted)
        if split is None:
            continue
        a = cut(audio, key, window)
        if a is None:
            b.summary.skip("no_audio_features", f"{vid}_{clip}")
            continue
        v = cut(vision, key, window)
        if v is None and vision:
            b.summary.handle("no_visual_features", f"{vid}_{clip}")
        b.add(vid, clip, split, score, speech=pool_sequence(a), face=None if v is None else pool_sequence(v))
    return {"audio_features": audio_p.name, "visual_features": vision_p.name if vision_p else None,
            "labels_file": labels_p.name, "pooling": "mean,std over time", "splits": "CMU-MultimodalSDK standard folds"}


# ------------------------------------------------------------------------------------------ pickle


def _times(parts: list[str]) -> tuple[float, float] | None:
    """MulT's ``[video_id, start_s, end_s]`` id (as reported in MulT's tracker, #36:
    ``('-3g5yACwYnA', '82.753', '100.555')``): the segment's times, or None for another layout."""
    if len(parts) != 3 or not all("." in p for p in parts[1:]):
        return None
    try:
        return float(parts[1]), float(parts[2])
    except ValueError:
        return None


def _ids(raw: Any, n: int) -> list[tuple[str, int]]:
    """Per row, (video id, segment number). A MulT id holds the segment's start and end times, not
    its number: the segments of a video are numbered by start time (1-based), so two segments that
    start in the same second stay two segments."""
    out = []
    timed: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for i in range(n):
        x = raw[i] if raw is not None else i
        if isinstance(x, bytes):
            x = x.decode("utf-8", "replace")
        if isinstance(x, (list, tuple, np.ndarray)):
            parts = [p.decode() if isinstance(p, bytes) else str(p) for p in np.asarray(x).reshape(-1)]
            times = _times(parts)
            if times is not None:
                timed[parts[0]].append((*times, i))
                out.append((parts[0], -1))  # numbered below
                continue
            vid, clip = parts[0], parts[1] if len(parts) > 1 else str(i)
        else:
            s = str(x)
            if "$_$" in s:
                vid, clip = s.split("$_$", 1)
            elif _ALIGNED_KEY.match(s):
                m = _ALIGNED_KEY.match(s)
                assert m is not None
                vid, clip = m.group(1), str(int(m.group(2)) + 1)  # 0-based in the SDK's keys
            elif "_" in s and s.rsplit("_", 1)[1].isdigit():
                vid, clip = s.rsplit("_", 1)
            else:
                vid, clip = s, str(i)
        try:
            out.append((vid, int(float(clip))))
        except ValueError:
            out.append((vid, i))
    for vid, rows in timed.items():
        for k, (_start, _end, i) in enumerate(sorted(rows), start=1):
            out[i] = (vid, k)
    return out


def _load_pickle(path: Path, b: _Builder) -> dict[str, Any]:
    log.warning("loading the pickle %s: a pickle can run code when it is loaded; only load your own, trusted "
                "copy (training side only: the runtime never reads a pickle)", path)
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)  # the user's own dataset file, training side only; see the warning
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError) as exc:
        raise DatasetError(f"{path}: not a readable pickle: {exc}") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a dict of splits (train / valid / test), got {type(data).__name__}")
    layout = None
    for name, part in data.items():
        split = _SPLIT_NAMES.get(str(name).lower())
        if split is None:
            raise DatasetError(f"{path}: unknown split {name!r} (expected train, valid, test)")
        if not isinstance(part, dict) or "audio" not in part:
            raise DatasetError(f"{path}: split {name!r} is not a dict with an 'audio' array")
        if "regression_labels" in part:
            layout, scores = "MMSA", np.asarray(part["regression_labels"], dtype=np.float64).reshape(-1)
        elif "labels" in part:
            labels = part["labels"]
            if isinstance(labels, dict):  # some MMSA versions: labels = {'M': ..., 'T': ...}
                labels = labels.get("M", next(iter(labels.values())))
            layout = layout or "MulT"
            scores = np.asarray(labels, dtype=np.float64).reshape(len(part["audio"]), -1)[:, 0]
        else:
            raise DatasetError(f"{path}: split {name!r} has neither 'regression_labels' (MMSA) nor 'labels' (MulT)")
        audio = np.asarray(part["audio"], dtype=np.float64)
        vision = np.asarray(part["vision"], dtype=np.float64) if "vision" in part else None
        n = audio.shape[0]
        if len(scores) != n or (vision is not None and vision.shape[0] != n):
            raise DatasetError(f"{path}: split {name!r}: audio, vision and labels differ in length")
        a_len = part.get("audio_lengths")
        v_len = part.get("vision_lengths")
        for i, (vid, clip) in enumerate(_ids(part.get("id"), n)):
            face = None
            if vision is not None:
                face = pool_sequence(vision[i], None if v_len is None else int(v_len[i]))
            b.add(vid, clip, split, float(scores[i]),
                  speech=pool_sequence(audio[i], None if a_len is None else int(a_len[i])), face=face)
    return {"pickle_layout": layout, "pooling": "mean,std over time", "splits": "the pickle's own (train/valid/test)"}


# ------------------------------------------------------------------------------------------- raw


def _load_raw_mmsa(root: Path, label_csv: Path, b: _Builder) -> dict[str, Any]:
    text = label_csv.read_bytes().decode("utf-8-sig", errors="replace")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    cols = [c.strip() for c in reader.fieldnames or []]
    for c in ("video_id", "clip_id", "label", "mode"):
        if c not in cols:
            raise DatasetError(f"{label_csv}: missing column '{c}' (found: {', '.join(cols)})")
    for lineno, row in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        vid = row["video_id"]
        try:
            clip, score = int(row["clip_id"]), float(row["label"])
        except ValueError:
            b.summary.skip("bad_row", f"{label_csv.name}:{lineno}")
            continue
        split = _SPLIT_NAMES.get(row["mode"].lower())
        if split is None:
            b.summary.skip("bad_row", f"{label_csv.name}:{lineno} (mode {row['mode']!r})")
            continue
        video = root / "Raw" / vid / f"{clip}.mp4"
        if not video.is_file():
            b.summary.skip("missing_clip", f"{vid}_{clip}")
            continue
        b.add(vid, clip, split, score, video=video, audio=None, text=row.get("text", ""))
    return {"layout": "MMSA raw (label.csv + Raw/<video>/<clip>.mp4)", "splits": "label.csv 'mode'"}


def _sdk_labels(root: Path, video_dir: Path, opts: Options, b: _Builder) -> tuple[str, dict[str, dict[int, float]]]:
    """(labels file name, video -> segment number -> score): the raw release's opinion CSV when present
    (and no ``labels=`` names a .csd), else the labels .csd, checked file count against rows per video."""
    explicit = opts.string("labels")
    csv_p = None if explicit else find_opinion_csv(root)
    if csv_p is not None:
        return csv_p.name, read_opinion_csv(csv_p, b.summary)
    labels_p = _pick(root, explicit, ("Opinion_Labels",), "labels")
    if labels_p is None:
        raise DatasetError(f"{root}: CMU-MOSI raw segments need their labels: the raw release's "
                           f"Labels/{OPINION_CSV} or CMU_MOSI_Opinion_Labels.csd (or the MMSA layout: "
                           "label.csv + Raw/<video_id>/<clip_id>.mp4)")
    files = segment_files(video_dir)
    out: dict[str, dict[int, float]] = {}
    for vid, (feats, _) in read_csd(labels_p).items():
        if vid in _FOLD_OF:
            check_segment_files(vid, files.get(vid, set()), len(feats), labels_p.name)
        out[vid] = {i + 1: float(np.asarray(feats[i]).reshape(-1)[0]) for i in range(len(feats))}
    return labels_p.name, out


def _load_raw_sdk(root: Path, video_dir: Path, opts: Options, b: _Builder) -> dict[str, Any]:
    labels_name, labels = _sdk_labels(root, video_dir, opts, b)
    wav_dir = root / "Raw" / "Audio" / "WAV_16000" / "Segmented"
    counted: set[str] = set()
    for vid in sorted(labels):
        split = _standard_split(vid, b.summary, counted)
        if split is None:
            continue
        for clip, score in sorted(labels[vid].items()):
            video = video_dir / f"{vid}_{clip}.mp4"
            if not video.is_file():
                b.summary.skip("missing_clip", f"{vid}_{clip}")
                continue
            wav = wav_dir / f"{vid}_{clip}.wav"
            b.add(vid, clip, split, score, video=video, audio=wav if wav.is_file() else None)
    return {"layout": "CMU-MultimodalSDK raw (Raw/Video/Segmented)", "labels_file": labels_name,
            "splits": "CMU-MultimodalSDK standard folds"}


# ------------------------------------------------------------------------------------------- entry


def _detect(path: Path) -> str:
    if path.is_file():
        if path.suffix.lower() in (".pkl", ".pickle"):
            return "pickle"
        if path.suffix.lower() == ".csd":
            return "csd"
        raise DatasetError(f"{path}: a MOSI file must be a .pkl (MMSA / MulT) or the folder of the dataset")
    if not path.is_dir():
        raise DatasetError(f"{path}: CMU-MOSI path does not exist")
    if (path / "label.csv").is_file() or (path / "Raw" / "Video" / "Segmented").is_dir():
        return "raw"
    if any(path.rglob("*.csd")):
        return "csd"
    raise DatasetError(f"{path}: not a CMU-MOSI layout (expected label.csv + Raw/, Raw/Video/Segmented/, .csd files "
                       "or a .pkl file)")


def load_mosi(path: Path, opts: Options, spec: str = "") -> LoadedDataset:
    source = opts.choice("source", ("auto", "raw", "csd", "pickle"), "auto")
    zero = opts.choice("zero", ("positive", "drop"), "positive")
    if source == "auto":
        source = _detect(path)
    b = _Builder(zero)
    root = path if path.is_dir() else path.parent
    if source == "pickle":
        opts.check_used()
        info = _load_pickle(path, b)
    elif source == "csd":
        info = _load_csd(root, opts, b)
        opts.check_used()
    else:
        if (root / "label.csv").is_file():
            opts.check_used()
            info = _load_raw_mmsa(root, root / "label.csv", b)
        else:
            video_dir = root / "Raw" / "Video" / "Segmented"
            if not video_dir.is_dir():
                raise DatasetError(f"{root}: neither label.csv (MMSA) nor Raw/Video/Segmented/ (CMU-MultimodalSDK)")
            info = _load_raw_sdk(root, video_dir, opts, b)
            opts.check_used()
    if not b.items:
        raise DatasetError(f"{path}: no CMU-MOSI segments loaded ({b.summary.format()})")
    seen: set[str] = set()
    utts: list[Any] = []
    by_video: dict[str, list[tuple[str, str, int, str, float, dict[str, Any]]]] = defaultdict(list)
    for item in b.items:
        if item[0] in seen:
            b.summary.skip("duplicate_segment", item[0])
            continue
        seen.add(item[0])
        by_video[item[1]].append(item)
    for vid in sorted(by_video):
        for k, (uid, _vid, _clip, split, score, payload) in enumerate(sorted(by_video[vid], key=lambda it: it[2])):
            label = binary_label(score)
            common: dict[str, Any] = {"id": uid, "session": vid, "index": k, "speaker": vid, "split": split,
                                      "label": label,
                      "label_index": LABELS.index(label), "score": score}
            if "speech" in payload:
                utts.append(FeatureUtterance(speech=payload["speech"], face=payload["face"], **common))
            else:
                utts.append(MediaUtterance(video_path=payload["video"], audio_path=payload["audio"],
                                           text=payload.get("text", ""), **common))
    features_only = source in ("csd", "pickle")
    info = {**info, "source": source, "zero": zero, "task": "binary polarity (score >= 0 positive)"}
    log.info("CMU-MOSI (%s): %d segments of %d videos (%s)", source, len(utts), len(by_video), b.summary.format())
    return LoadedDataset(kind="mosi", spec=spec, root=path, labels=LABELS, all_utterances=tuple(utts),
                         summary=b.summary, task="sentiment-binary", features_only=features_only, info=info)
