"""Loader for the synthetic dataset written by :func:`edge_mmer.synth.generate_dataset`, into the
one dataset type every loader returns (:class:`~edge_mmer.datasets.base.LoadedDataset`, kind
``synthetic``; ``info`` holds the generator's seed).

Torch-free: only numpy, OpenCV and the standard library.  Malformed input raises
:class:`DatasetError` naming the file (and line / field) at fault.
"""

from __future__ import annotations

import json
import logging
import os
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge_mmer.config import AudioConfig, FaceConfig
from edge_mmer.datasets.base import BaseUtterance, DatasetError, LoadedDataset, even_subsample
from edge_mmer.vocab import SAMPLE_RATE, SPLITS

log = logging.getLogger(__name__)

__all__ = ["SUPPORTED_FORMAT_VERSIONS", "DatasetError", "SyntheticDataset", "Utterance", "load_synthetic"]

SUPPORTED_FORMAT_VERSIONS = (1,)


@dataclass(frozen=True)
class Utterance(BaseUtterance):
    """One utterance: a wav file, a video file and its label."""

    text: str
    audio_path: Path
    video_path: Path
    duration_s: float
    n_frames: int = 0
    fps: float = 0.0

    def load_audio(self) -> np.ndarray:
        """The waveform as float32 in [-1, 1] at 16 kHz mono."""
        return read_wav_16k_mono(self.audio_path)

    def speech_audio(self, audio: AudioConfig) -> np.ndarray:
        """What the speech front end sees: the whole wav (16 kHz mono)."""
        return self.load_audio()

    def face_frames(self, face: FaceConfig) -> list[np.ndarray]:
        """What the face front end sees: every decoded frame, evenly subsampled to
        ``face.frames_per_utterance`` (the rule the demo bundle was trained with; media datasets
        sample at ``face.analysis_fps`` first, as the runtime does)."""
        return self.load_frames(max_frames=face.frames_per_utterance)

    def sources(self) -> tuple[Path, ...]:
        return (self.audio_path, self.video_path)

    def load_frames(self, max_frames: int | None = None) -> list[np.ndarray]:
        """Decode BGR uint8 frames; with ``max_frames``, evenly subsample to at most that many."""
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"max_frames must be >= 1 or None, got {max_frames}")
        if not self.video_path.is_file():
            raise DatasetError(f"{self.video_path}: video file of utterance {self.id!r} is missing")
        cap = cv2.VideoCapture(str(self.video_path))
        if not cap.isOpened():
            raise DatasetError(f"{self.video_path}: OpenCV cannot open the video of utterance {self.id!r}")
        frames: list[np.ndarray] = []
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                frames.append(frame)
        finally:
            cap.release()
        if not frames:
            raise DatasetError(f"{self.video_path}: no decodable frames (utterance {self.id!r})")
        return even_subsample(frames, max_frames)


def read_wav_16k_mono(path: Path) -> np.ndarray:
    """Read a 16 kHz mono 16-bit PCM wav as float32 in [-1, 1]; errors name the file."""
    if not path.is_file():
        raise DatasetError(f"{path}: wav file is missing")
    try:
        with wave.open(str(path), "rb") as wf:
            rate, channels, width, n = wf.getframerate(), wf.getnchannels(), wf.getsampwidth(), wf.getnframes()
            raw = wf.readframes(n)
    except (wave.Error, EOFError) as exc:
        raise DatasetError(f"{path}: not a readable PCM wav file: {exc}") from exc
    if rate != SAMPLE_RATE:
        raise DatasetError(f"{path}: sample rate is {rate} Hz, expected {SAMPLE_RATE}")
    if channels != 1:
        raise DatasetError(f"{path}: has {channels} channels, expected mono")
    if width != 2:
        raise DatasetError(f"{path}: sample width is {8 * width} bits, expected 16-bit PCM")
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


SyntheticDataset = LoadedDataset
"""The older name: a synthetic dataset is a :class:`~edge_mmer.datasets.base.LoadedDataset` of kind ``synthetic``."""


def _field(obj: dict[str, Any], key: str, typ: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise DatasetError(f"{where}: missing field '{key}'")
    value = obj[key]
    if (isinstance(value, bool) and typ is not bool) or not isinstance(value, typ):
        name = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
        raise DatasetError(f"{where}: field '{key}' must be {name}, got {value!r}")
    return value


def _read_meta(root: Path) -> tuple[Path, dict[str, Any]]:
    """``dataset.json``: its path and top-level object."""
    meta_path = root / "dataset.json"
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset directory does not exist")
    if not meta_path.is_file():
        raise DatasetError(f"{meta_path}: missing (not a synthetic dataset directory? run 'edge-mmer synth' first)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{meta_path}: not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise DatasetError(f"{meta_path}: expected a JSON object at top level")
    version = _field(meta, "format_version", int, str(meta_path))
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise DatasetError(f"{meta_path}: field 'format_version' is {version}, supported: {SUPPORTED_FORMAT_VERSIONS}")
    return meta_path, meta


def _labels(meta: dict[str, Any], where: str) -> tuple[str, ...]:
    labels_raw = _field(meta, "labels", list, where)
    if (
        len(labels_raw) < 2
        or not all(isinstance(x, str) for x in labels_raw)
        or len(set(labels_raw)) != len(labels_raw)
    ):
        raise DatasetError(f"{where}: field 'labels' must be a list of two or more distinct strings")
    return tuple(labels_raw)


def _speakers(meta: dict[str, Any], where: str) -> dict[str, str]:
    """speaker id -> its split."""
    speakers: dict[str, str] = {}
    for i, spk in enumerate(_field(meta, "speakers", list, where)):
        w = f"{where}: speakers[{i}]"
        if not isinstance(spk, dict):
            raise DatasetError(f"{w}: expected an object")
        sid = _field(spk, "id", str, w)
        split = _field(spk, "split", str, w)
        if split not in SPLITS:
            raise DatasetError(f"{w}: field 'split' must be one of {SPLITS}, got {split!r}")
        speakers[sid] = split
    return speakers


@dataclass(frozen=True)
class _Listing:
    """What every row of ``utterances.jsonl`` is checked against."""

    root: Path
    meta_name: str
    labels: tuple[str, ...]
    speakers: dict[str, str]
    config: dict[str, Any]
    check_files: bool


def _speaker_split(row: dict[str, Any], w: str, listing: _Listing) -> tuple[str, str]:
    speaker = _field(row, "speaker", str, w)
    split = _field(row, "split", str, w)
    if speaker not in listing.speakers:
        raise DatasetError(f"{w}: field 'speaker' {speaker!r} is not listed in {listing.meta_name}")
    if split != listing.speakers[speaker]:
        raise DatasetError(
            f"{w}: field 'split' is {split!r} but speaker {speaker!r} is in {listing.speakers[speaker]!r}"
        )
    return speaker, split


def _media(row: dict[str, Any], w: str, listing: _Listing) -> tuple[Path, Path]:
    audio_path = listing.root / _field(row, "audio", str, w)
    video_path = listing.root / _field(row, "video", str, w)
    if listing.check_files:
        if not audio_path.is_file():
            raise DatasetError(f"{w}: field 'audio': file {audio_path} is missing")
        if not video_path.is_file():
            raise DatasetError(f"{w}: field 'video': file {video_path} is missing")
    return audio_path, video_path


def _utterance(row: dict[str, Any], w: str, listing: _Listing) -> Utterance:
    """One row of ``utterances.jsonl`` (its ``id`` already checked), every field checked in order."""
    uid = row["id"]
    speaker, split = _speaker_split(row, w, listing)
    label = _field(row, "label", str, w)
    if label not in listing.labels:
        raise DatasetError(f"{w}: field 'label' {label!r} is not one of {listing.labels}")
    index = _field(row, "index", int, w)
    if index < 0:
        raise DatasetError(f"{w}: field 'index' must be >= 0, got {index}")
    duration = float(_field(row, "duration_s", (int, float), w))
    if duration <= 0:
        raise DatasetError(f"{w}: field 'duration_s' must be > 0, got {duration}")
    audio_path, video_path = _media(row, w, listing)
    n_frames = row.get("n_frames", 0)
    fps = row.get("fps", listing.config.get("fps", 0))
    return Utterance(
        id=uid,
        session=_field(row, "session", str, w),
        index=index,
        speaker=speaker,
        split=split,
        label=label,
        label_index=listing.labels.index(label),
        text=_field(row, "text", str, w),
        audio_path=audio_path,
        video_path=video_path,
        duration_s=duration,
        n_frames=int(n_frames) if isinstance(n_frames, int) else 0,
        fps=float(fps) if isinstance(fps, (int, float)) else 0.0,
    )


def _read_utterances(jsonl: Path, listing: _Listing) -> list[Utterance]:
    if not jsonl.is_file():
        raise DatasetError(f"{jsonl}: missing")
    utts: list[Utterance] = []
    seen: set[str] = set()
    with open(jsonl, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            w = f"{jsonl}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{w}: not valid JSON: {exc}") from exc
            if not isinstance(row, dict):
                raise DatasetError(f"{w}: expected a JSON object")
            uid = _field(row, "id", str, w)
            if uid in seen:
                raise DatasetError(f"{w}: field 'id' duplicates {uid!r}")
            seen.add(uid)
            utts.append(_utterance(row, w, listing))
    if not utts:
        raise DatasetError(f"{jsonl}: contains no utterances")
    return utts


def load_synthetic(path: str | os.PathLike[str], check_files: bool = True, spec: str | None = None) -> LoadedDataset:
    """Load ``dataset.json`` + ``utterances.jsonl`` from the dataset directory ``path``.

    With ``check_files`` every referenced wav/mp4 must exist. ``spec``: the ``synthetic:DIR`` text
    it was named by (default ``synthetic:<path>``).
    """
    root = Path(path)
    meta_path, meta = _read_meta(root)
    where = str(meta_path)
    labels = _labels(meta, where)
    seed = _field(meta, "seed", int, where)
    config = _field(meta, "config", dict, where)
    listing = _Listing(root, meta_path.name, labels, _speakers(meta, where), config, check_files)
    utts = _read_utterances(root / "utterances.jsonl", listing)
    log.debug("loaded %d utterances from %s", len(utts), root)
    return LoadedDataset(kind="synthetic", spec=spec if spec is not None else f"synthetic:{root}", root=root,
                         labels=labels, all_utterances=tuple(utts), task="emotion",
                         info={"seed": seed, "synthetic": True})
