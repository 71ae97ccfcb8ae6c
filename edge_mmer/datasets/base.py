"""The common dataset interface: a dataset is a list of utterances grouped into sessions.

Every loader (synthetic, RAVDESS, CREMA-D, MELD, CMU-MOSI, CSV manifests) returns a
:class:`LoadedDataset`. An utterance (a :class:`BaseUtterance`) is either

* a **media** utterance (:class:`MediaUtterance`): audio (and usually video) on disk, decoded with
  PyAV and passed through the same front ends as the runtime (log-mel; Haar face crops), or
* a **feature** utterance (:class:`FeatureUtterance`): precomputed, time-pooled feature vectors
  (CMU-MOSI ``.csd`` files and the MMSA / MulT pickles), which train the context, selection,
  fusion and SVM stages directly, or
* a synthetic utterance (:class:`~edge_mmer.datasets.synthetic.Utterance`): a generated wav and mp4.

A **session** is the sequence the context LSTMs run over (a MELD dialogue, a MOSI video, a shuffled
run of one actor's clips). Defects found while loading (missing clip, clip with no CSV row, ...)
are skipped and counted in a :class:`DefectSummary`, never raised.

Torch-free: numpy, the standard library, and PyAV / OpenCV lazily through :mod:`.media`.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from edge_mmer.config import AudioConfig, FaceConfig
from edge_mmer.datasets.media import decode_audio, decode_frames
from edge_mmer.errors import DatasetError
from edge_mmer.vocab import SAMPLE_RATE, SPLITS

log = logging.getLogger(__name__)

__all__ = [
    "SPLITS",
    "BaseUtterance",
    "DatasetError",
    "DefectSummary",
    "FeatureUtterance",
    "LoadedDataset",
    "MediaUtterance",
    "UtteranceLike",
    "assign_splits",
    "check_split",
    "chunk_sessions",
    "even_subsample",
    "split_counts",
    "stable_shuffle",
]

MAX_EXAMPLES = 5


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")


@dataclass(frozen=True)
class BaseUtterance:
    """What training needs from an utterance of any dataset: where it sits (session, index,
    speaker, split), its label, and the two front-end inputs. Every loader's utterance type
    (:class:`MediaUtterance`, :class:`FeatureUtterance`, the synthetic set's
    :class:`~edge_mmer.datasets.synthetic.Utterance`) extends it."""

    id: str
    session: str
    index: int
    speaker: str
    split: str
    label: str
    label_index: int

    # True: every frame at the analysis rate is searched for a face, then the crops are evenly
    # subsampled to face.frames_per_utterance (the runtime's rule); False: face_frames already is
    subsample_crops: ClassVar[bool] = False

    def speech_audio(self, audio: AudioConfig) -> np.ndarray:
        """The waveform the speech front end sees: float32 mono at ``audio.sample_rate``."""
        raise NotImplementedError

    def face_frames(self, face: FaceConfig) -> list[np.ndarray]:
        """The BGR frames the face front end searches for faces (see ``subsample_crops``)."""
        raise NotImplementedError


UtteranceLike = BaseUtterance
"""The older name of :class:`BaseUtterance`."""


def even_subsample(frames: Sequence[np.ndarray], n: int | None) -> list[np.ndarray]:
    """At most ``n`` frames, evenly spaced (first and last kept): the synthetic loader's frames and
    the front ends' crops."""
    items = list(frames)
    if n is not None and len(items) > n:
        idx = np.linspace(0, len(items) - 1, n).round().astype(int)
        items = [items[i] for i in idx]
    return items


@dataclass(frozen=True)
class MediaUtterance(BaseUtterance):
    """An utterance on disk: audio from ``audio_path`` (or the video's audio track when it is
    None), frames from ``video_path`` (None: audio only, the face channel is absent), optionally a
    time window ``[start_s, end_s)`` inside the files.

    ``score`` carries a continuous label where the dataset has one (CMU-MOSI sentiment in [-3, 3]).
    """

    video_path: Path | None
    audio_path: Path | None = None
    start_s: float | None = None
    end_s: float | None = None
    score: float | None = None
    text: str = ""

    subsample_crops: ClassVar[bool] = True  # the runtime's rule (see BaseUtterance)

    def sources(self) -> tuple[Path, ...]:
        """The files this utterance is decoded from (the feature cache hashes them)."""
        out = [p for p in (self.audio_path, self.video_path) if p is not None]
        return tuple(dict.fromkeys(out))

    def _window(self, max_s: float | None) -> tuple[float | None, float | None]:
        start, end = self.start_s, self.end_s
        if max_s is not None:
            cap = (start or 0.0) + max_s
            end = cap if end is None else min(end, cap)
        return start, end

    def speech_audio(self, audio: AudioConfig) -> np.ndarray:
        """Mono float32 at the front end's rate, from the window's start, at most
        ``audio.max_utterance_s`` long (the runtime's segmenter never emits longer utterances)."""
        path = self.audio_path or self.video_path
        if path is None:
            raise DatasetError(f"utterance {self.id!r}: no audio or video file")
        start, end = self._window(audio.max_utterance_s)
        return decode_audio(path, audio.sample_rate, start, end)

    def face_frames(self, face: FaceConfig, max_s: float | None = None) -> list[np.ndarray]:
        """Frames sampled at ``face.analysis_fps`` on the runtime's slot grid (``floor(t * fps)``),
        all of them: the front end detects a face in each and subsamples the crops (empty when there
        is no video)."""
        if self.video_path is None:
            return []

        start, end = self._window(max_s)
        return decode_frames(self.video_path, face.analysis_fps, start, end)

    def load_audio(self) -> np.ndarray:
        """16 kHz mono float32 of the whole window (no length cap)."""
        path = self.audio_path or self.video_path
        if path is None:
            raise DatasetError(f"utterance {self.id!r}: no audio or video file")
        return decode_audio(path, SAMPLE_RATE, self.start_s, self.end_s)

    def load_frames(self, max_frames: int | None = None) -> list[np.ndarray]:
        """Every frame of the window (evenly subsampled to ``max_frames``)."""
        if self.video_path is None:
            return []

        return even_subsample(decode_frames(self.video_path, None, self.start_s, self.end_s), max_frames)


@dataclass(frozen=True)
class FeatureUtterance(BaseUtterance):
    """An utterance given as precomputed, time-pooled features (no media): ``speech`` (D_s,) and
    ``face`` (D_f,) or None when the modality is absent."""

    speech: np.ndarray
    face: np.ndarray | None
    score: float | None = None
    text: str = ""

    def speech_audio(self, audio: AudioConfig) -> np.ndarray:
        raise DatasetError(f"utterance {self.id!r} carries precomputed features, not audio")

    def face_frames(self, face: FaceConfig) -> list[np.ndarray]:
        raise DatasetError(f"utterance {self.id!r} carries precomputed features, not video")


@dataclass
class DefectSummary:
    """Known defects, counted: ``skipped`` items were left out, ``handled`` ones were repaired or
    are informational (e.g. a one-digit hour that was parsed). A few example ids per reason."""

    skipped: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    handled: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def skip(self, reason: str, item: str) -> None:
        self.skipped[reason] += 1
        self._example(reason, item)

    def handle(self, reason: str, item: str) -> None:
        self.handled[reason] += 1
        self._example(reason, item)

    def _example(self, reason: str, item: str) -> None:
        ex = self.examples[reason]
        if len(ex) < MAX_EXAMPLES:
            ex.append(item)

    def merge(self, other: DefectSummary) -> None:
        for k, v in other.skipped.items():
            self.skipped[k] += v
        for k, v in other.handled.items():
            self.handled[k] += v
        for k, ex in other.examples.items():
            for item in ex:
                self._example(k, item)

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "skipped": dict(sorted(self.skipped.items())),
            "handled": dict(sorted(self.handled.items())),
            "examples": {k: list(v) for k, v in sorted(self.examples.items())},
        }

    def format(self) -> str:
        if not self.skipped and not self.handled:
            return "no defects found"
        parts = [f"skipped {k} {v}" for k, v in sorted(self.skipped.items())]
        parts += [f"handled {k} {v}" for k, v in sorted(self.handled.items())]
        return ", ".join(parts)


@dataclass
class LoadedDataset:
    """A dataset of any kind, loaded (metadata; media decodes lazily)."""

    kind: str
    spec: str
    root: Path
    labels: tuple[str, ...]
    all_utterances: tuple[Any, ...]
    summary: DefectSummary = field(default_factory=DefectSummary)
    task: str = "emotion"
    features_only: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    max_clip_s: float | None = None  # media longer than this is skipped as 'overlong_clip'

    def utterances(self, split: str | None = None) -> list[Any]:
        if split is None:
            return list(self.all_utterances)
        check_split(split)
        return [u for u in self.all_utterances if u.split == split]

    def sessions(self, split: str | None = None) -> list[list[Any]]:
        """Sessions (utterances ordered by ``index``), in order of first appearance."""
        groups: dict[str, list[Any]] = defaultdict(list)
        for u in self.utterances(split):
            groups[u.session].append(u)
        return [sorted(g, key=lambda u: u.index) for g in groups.values()]

    def counts(self) -> dict[str, dict[str, int]]:
        """Per split: utterances per label."""
        out: dict[str, dict[str, int]] = {}
        for split in SPLITS:
            c = dict.fromkeys(self.labels, 0)
            for u in self.utterances(split):
                c[u.label] += 1
            out[split] = c
        return out

    def describe(self) -> dict[str, Any]:
        """JSON facts for the bundle's provenance and the reports."""
        return {
            "kind": self.kind,
            "spec": self.spec,
            "path": str(self.root),
            "task": self.task,
            "labels": list(self.labels),
            "features_only": self.features_only,
            "max_clip_s": self.max_clip_s,
            "utterances": {s: len(self.utterances(s)) for s in SPLITS},
            "sessions": {s: len(self.sessions(s)) for s in SPLITS},
            "class_counts": self.counts(),
            "defects": self.summary.to_dict(),
            **({"info": self.info} if self.info else {}),
        }

    def __len__(self) -> int:
        return len(self.all_utterances)


def stable_seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def stable_shuffle(items: Sequence[Any], key: str) -> list[Any]:
    """A permutation of ``items`` that depends only on ``key`` (same on every machine and run)."""
    order = np.random.default_rng(stable_seed(key)).permutation(len(items))
    return [items[i] for i in order]


def split_counts(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """(train, val, test) group counts for ``n`` groups split by the fractions: with three or more
    groups each split gets at least one (rounded to the nearest, ties to even); two groups are one
    train and one test; one group is train. The synthetic generator's speaker split is this rule at
    0.2 / 0.2 (:func:`edge_mmer.synth.dataset.default_split`)."""
    if n <= 0:
        return (0, 0, 0)
    n_test = max(1, round(n * test_fraction)) if n >= 3 else (1 if n == 2 else 0)
    n_val = max(1, round(n * val_fraction)) if n >= 3 else 0
    n_train = max(1, n - n_test - n_val)
    n_val = min(n_val, n - n_train)
    return (n_train, n_val, n - n_train - n_val)


def assign_splits(groups: Iterable[str], val_fraction: float, test_fraction: float,
                  order: str = "sorted") -> dict[str, str]:
    """Group (speaker, session) -> split, group-independent, :func:`split_counts` groups each.
    ``order='sorted'``: the last groups in natural sort order are test, the ones before them
    validation (RAVDESS actors 20-24 test); ``order='hash'``: groups ordered by a hash of their name
    first (CSV manifests)."""
    names = sorted(set(groups), key=_natural_key)
    if order == "hash":
        names = sorted(names, key=lambda g: hashlib.sha256(g.encode("utf-8")).hexdigest())
    n_train, n_val, _ = split_counts(len(names), val_fraction, test_fraction)
    out: dict[str, str] = {}
    for i, name in enumerate(names):
        out[name] = "train" if i < n_train else "val" if i < n_train + n_val else "test"
    return out


def _natural_key(text: str) -> tuple[Any, ...]:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text))


def chunk_sessions(utterances: Sequence[Any], key: str, length: int) -> list[list[Any]]:
    """One speaker's utterances shuffled (seeded by ``key``) and cut into sessions of ``length``.

    Acted datasets have no conversation: their file order groups clips by emotion, which a context
    LSTM would learn as a shortcut. A seeded shuffle keeps what a session really offers the runtime
    (the same speaker, utterance after utterance) without the label order."""
    shuffled = stable_shuffle(list(utterances), key)
    return [shuffled[i : i + length] for i in range(0, len(shuffled), max(1, length))]


#: The first line of a git-LFS pointer file (what a clone without ``git lfs`` or a GitHub zip holds
#: instead of the media: CREMA-D's repository stores every wav and flv in LFS).
LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"


def is_lfs_pointer(path: Path) -> bool:
    """Whether ``path`` is a git-LFS pointer stub (~130 bytes of text) instead of the media itself."""
    try:
        if path.stat().st_size > 1024:
            return False
        with open(path, "rb") as f:
            return f.read(len(LFS_POINTER)) == LFS_POINTER
    except OSError:
        return False
