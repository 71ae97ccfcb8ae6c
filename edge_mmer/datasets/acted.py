"""What the acted datasets (RAVDESS, CREMA-D) share once their files are found: actors split into
train / validation / test (:func:`~edge_mmer.datasets.base.assign_splits`), each actor's clips cut
into seeded sessions (:func:`~edge_mmer.datasets.base.chunk_sessions`), one
:class:`~edge_mmer.datasets.base.MediaUtterance` per clip. The loaders only parse file names.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_mmer.datasets.base import DefectSummary, LoadedDataset, MediaUtterance, assign_splits, chunk_sessions

log = logging.getLogger(__name__)

__all__ = ["Clip", "build_acted_dataset"]


@dataclass(frozen=True, order=True)
class Clip:
    """One acted clip: its id (the file stem), label, and files (``audio_path`` None: the video's track;
    ``video_path`` None: audio only). Sorted by id, then the files, as the loaders list them."""

    stem: str
    label: str
    audio_path: Path | None
    video_path: Path | None


def build_acted_dataset(kind: str, root: Path, spec: str, labels: tuple[str, ...], clips: Mapping[str, Sequence[Clip]],
                        *, val_fraction: float, test_fraction: float, session_length: int, summary: DefectSummary,
                        info: Mapping[str, Any] | None = None, roster: Sequence[str] = ()) -> LoadedDataset:
    """``clips`` per actor -> the dataset: actors split by the fractions, each actor's clips (by
    :class:`Clip` order) shuffled with the key ``KIND:ACTOR`` and cut into sessions
    ``ACTOR/sNN`` of ``session_length``. ``info`` lands between the actors and the session length
    in ``LoadedDataset.info``. ``roster``: the corpus's full list of actors; the fractions then split
    the roster, so that an actor's split depends on its number only, not on which actors a selection
    or a partial copy holds (actors outside the roster are split among themselves)."""
    extra = [a for a in clips if a not in set(roster)]
    split_of = {**assign_splits(roster, val_fraction, test_fraction), **assign_splits(extra, val_fraction,
                                                                                        test_fraction)}
    splits = {a: split_of[a] for a in clips}
    utts: list[MediaUtterance] = []
    for actor in sorted(clips):
        for si, session in enumerate(chunk_sessions(sorted(clips[actor]), f"{kind}:{actor}", session_length)):
            for ui, clip in enumerate(session):
                utts.append(MediaUtterance(
                    id=clip.stem, session=f"{actor}/s{si:02d}", index=ui, speaker=actor, split=splits[actor],
                    label=clip.label, label_index=labels.index(clip.label), video_path=clip.video_path,
                    audio_path=clip.audio_path))
    return LoadedDataset(kind=kind, spec=spec, root=root, labels=labels, all_utterances=tuple(utts), summary=summary,
                         task="emotion",
                         info={"split_by": "actor", "actors": {s: sorted(a for a, sp in splits.items() if sp == s)
                                                               for s in ("train", "val", "test")},
                               **(info or {}), "session_length": session_length})
