"""RAVDESS (Livingstone & Russo 2018): acted audio-visual emotion, 24 actors, CC BY-NC-SA 4.0.

File names ``MM-VC-EE-II-SS-RR-AA.ext`` (e.g. ``02-01-06-01-02-01-12.mp4``): modality (01 audio-video,
02 video only, 03 audio only), vocal channel (01 speech, 02 song), emotion (01 neutral, 02 calm,
03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust, 08 surprised), intensity, statement, repetition,
actor. The audio-video mp4s (modality 01) give the frames; an audio-only wav (03, the separate audio
download) of the same trial gives the lossless sound, and a trial with only its wav is kept audio
only (face channel absent, counted ``audio_only``). Video-only files (02) are counted and ignored.
Any folder layout works (``Actor_01/...``, ``Video_Speech_Actor_01/Actor_01/...``): files are
found recursively.

Options: ``vocal=speech`` (default), ``song`` or ``all``; ``val`` / ``test`` fractions of the actors
(defaults 0.1 / 0.2: actors 01-17 train, 18-19 validation, 20-24 test); ``session_length`` (8). The
fractions split the corpus's 24 actors, not the ones found: an actor's split is fixed by its number,
the same for ``vocal=song`` (which has no Actor_18) as for speech, and for a partial copy.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from pathlib import Path

from edge_mmer.datasets.acted import Clip, build_acted_dataset
from edge_mmer.datasets.base import DatasetError, DefectSummary, LoadedDataset
from edge_mmer.datasets.options import Options

log = logging.getLogger(__name__)

__all__ = ["ACTORS", "EMOTIONS", "LABELS", "load_ravdess"]

EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry", "06": "fearful",
            "07": "disgust", "08": "surprised"}
LABELS = tuple(EMOTIONS.values())
#: The corpus's actors (01-24): the actor split is computed over all of them (see the module doc).
ACTORS = tuple(f"actor{a:02d}" for a in range(1, 25))
_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


def _clips(videos: dict[str, tuple[str, str, Path]], wavs: dict[str, tuple[str, str, Path]],
           summary: DefectSummary) -> dict[str, list[Clip]]:
    """One clip per trial: frames from the audio-video mp4, sound from the lossless audio-only wav when
    the trial has one (else the mp4's AAC track); a trial with only its wav is audio only (the face
    channel absent, as a camera-less robot hears it)."""
    by_actor: dict[str, list[Clip]] = defaultdict(list)
    for trial in sorted(set(videos) | set(wavs)):
        actor, emotion, _ = videos.get(trial) or wavs[trial]
        video = videos[trial][2] if trial in videos else None
        wav = wavs[trial][2] if trial in wavs else None
        if video is None:
            summary.handle("audio_only", f"03-{trial}")
        stem = f"01-{trial}" if video is not None else f"03-{trial}"
        by_actor[f"actor{actor}"].append(Clip(stem, EMOTIONS[emotion], wav, video))
    return by_actor


def load_ravdess(root: Path, options: Options, spec: str = "") -> LoadedDataset:
    if not root.is_dir():
        raise DatasetError(f"{root}: RAVDESS directory does not exist")
    vocal = options.choice("vocal", ("speech", "song", "all"), "speech")
    val_f, test_f = options.fraction("val", 0.1), options.fraction("test", 0.2)
    length = options.integer("session_length", 8)
    options.check_used()
    summary = DefectSummary()
    videos: dict[str, tuple[str, str, Path]] = {}  # trial (the name without its modality) -> actor, emotion, mp4
    wavs: dict[str, tuple[str, str, Path]] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name.startswith("._"):
            continue
        m = _NAME.match(path.stem)
        if m is None:
            if path.suffix.lower() in (".mp4", ".wav"):
                summary.skip("unrecognised_name", path.name)
            continue
        modality, channel, emotion, _intensity, _statement, _rep, actor = m.groups()
        audio_only = modality == "03" and path.suffix.lower() == ".wav"
        if not audio_only and (modality != "01" or path.suffix.lower() != ".mp4"):
            summary.handle("not_audio_video", path.name)  # video-only files (02-): no sound
            continue
        if (vocal == "speech" and channel != "01") or (vocal == "song" and channel != "02"):
            summary.handle("other_vocal_channel", path.name)
            continue
        if emotion not in EMOTIONS:
            summary.skip("unknown_emotion", path.name)
            continue
        if path.stat().st_size == 0:
            summary.skip("empty_file", path.name)
            continue
        (wavs if audio_only else videos)[path.stem[3:]] = (actor, emotion, path)
    by_actor = _clips(videos, wavs, summary)
    if not by_actor:
        raise DatasetError(f"{root}: no RAVDESS files (01-*.mp4 audio-video or 03-*.wav audio-only, named "
                           "MM-VC-EE-II-SS-RR-AA) found")
    ds = build_acted_dataset("ravdess", root, spec, LABELS, by_actor, val_fraction=val_f, test_fraction=test_f,
                             session_length=length, summary=summary, info={"vocal": vocal}, roster=ACTORS)
    log.info("RAVDESS: %d clips of %d actors (%s)", len(ds), len(by_actor), summary.format())
    return ds
