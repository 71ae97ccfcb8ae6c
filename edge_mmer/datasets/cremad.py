"""CREMA-D (Cao et al. 2014): 7,442 acted clips of 91 actors (1001-1091), ODbL.

``AudioWAV/1001_DFA_ANG_XX.wav`` (actor, sentence, emotion ANG/DIS/FEA/HAP/NEU/SAD, level LO/MD/HI/XX)
with its video ``VideoFlash/1001_DFA_ANG_XX.flv``. Audio comes from the wav; frames from the flv.
A wav without its flv is kept with the face channel absent (counted); an flv without its wav is
skipped (counted). git-LFS pointer stubs (a clone without git-lfs, a GitHub zip) are named as such:
an error when no real wav is left, else skipped and counted (``lfs_pointer``). Labels map to the
paper's six: neutral, happy, angry, sad, fear, disgust.

Options: ``val`` / ``test`` fractions of the actors (0.1 / 0.2), ``session_length`` (8).
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from pathlib import Path

from edge_mmer.datasets.acted import Clip, build_acted_dataset
from edge_mmer.datasets.base import DatasetError, DefectSummary, LoadedDataset, is_lfs_pointer
from edge_mmer.datasets.options import Options

log = logging.getLogger(__name__)

__all__ = ["EMOTIONS", "LABELS", "load_cremad"]

EMOTIONS = {"NEU": "neutral", "HAP": "happy", "ANG": "angry", "SAD": "sad", "FEA": "fear", "DIS": "disgust"}
LABELS = tuple(EMOTIONS.values())
SENTENCES = ("IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI")
_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


def _find_dir(root: Path, name: str) -> Path | None:
    for cand in (root / name, *root.glob(f"*/{name}")):
        if cand.is_dir():
            return cand
    return None


def _clip(wav: Path, videos: dict[str, Path], summary: DefectSummary) -> Clip | None:
    """One wav (and its flv) as a clip, or None with the defect counted."""
    if wav.name.startswith("._"):
        return None
    m = _NAME.match(wav.stem)
    if m is None:
        summary.skip("unrecognised_name", wav.name)
        return None
    _actor, sentence, emotion, _level = m.groups()
    if emotion not in EMOTIONS:
        summary.skip("unknown_emotion", wav.name)
        return None
    if sentence not in SENTENCES:
        summary.handle("unknown_sentence_code", wav.name)
    if wav.stat().st_size == 0:
        summary.skip("empty_file", wav.name)
        return None
    if is_lfs_pointer(wav):
        summary.skip("lfs_pointer", wav.name)
        return None
    video = videos.get(wav.stem)
    if video is not None and is_lfs_pointer(video):
        summary.handle("lfs_pointer_video", video.name)  # the wav is real: audio only
        video = None
    if video is None:
        summary.handle("audio_without_video", wav.name)
    return Clip(wav.stem, EMOTIONS[emotion], wav, video)


def _check_stubs(root: Path, summary: DefectSummary, any_clip: bool) -> None:
    """git-LFS pointer stubs: an error naming the cause when nothing real is left, else a warning."""
    stubs = summary.skipped.get("lfs_pointer", 0)
    if not stubs:
        return
    hint = (f"{stubs} files of {root} are git-LFS pointer stubs, not audio: the copy comes from a clone without "
            "git-lfs or a GitHub zip download; fetch the media with 'git lfs install && git lfs pull' in the "
            "clone (or clone again with git-lfs installed)")
    if not any_clip:
        raise DatasetError(hint)
    log.warning("%s (those clips are skipped)", hint)


def load_cremad(root: Path, options: Options, spec: str = "") -> LoadedDataset:
    if not root.is_dir():
        raise DatasetError(f"{root}: CREMA-D directory does not exist")
    val_f, test_f = options.fraction("val", 0.1), options.fraction("test", 0.2)
    length = options.integer("session_length", 8)
    options.check_used()
    wav_dir = _find_dir(root, "AudioWAV")
    if wav_dir is None:
        raise DatasetError(f"{root}: no AudioWAV/ folder (CREMA-D layout: AudioWAV/ and VideoFlash/)")
    video_dir = _find_dir(root, "VideoFlash")
    summary = DefectSummary()
    if video_dir is None:
        log.warning("%s: no VideoFlash/ folder: every clip is audio only (no face channel)", root)
    videos = {p.stem: p for p in video_dir.glob("*.flv")} if video_dir is not None else {}
    by_actor: dict[str, list[Clip]] = defaultdict(list)
    seen: set[str] = set()
    for wav in sorted(wav_dir.glob("*.wav")):
        clip = _clip(wav, videos, summary)
        if clip is not None:
            seen.add(wav.stem)
            by_actor[wav.stem[:4]].append(clip)
    for stem in sorted(set(videos) - seen):
        if _NAME.match(stem):
            summary.skip("video_without_audio", f"{stem}.flv")
    _check_stubs(root, summary, bool(by_actor))
    if not by_actor:
        raise DatasetError(f"{wav_dir}: no CREMA-D wav files (named 1001_DFA_ANG_XX.wav) found")
    ds = build_acted_dataset("cremad", root, spec, LABELS, by_actor, val_fraction=val_f, test_fraction=test_f,
                             session_length=length, summary=summary)
    log.info("CREMA-D: %d clips of %d actors (%s)", len(ds), len(by_actor), summary.format())
    return ds
