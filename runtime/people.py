"""Whose face a decision uses, and what the event says about the people in view.

For an utterance the speaker is chosen by audio-visual synchrony among the tracks seen during it
(:func:`~edge_mmer.runtime.speaker.choose_speaker`), and the face channel uses that track's crops. A
face-only decision (silence) has no voice to follow: it takes the largest face. The event's
``speaker`` names the chosen track (id, box, speaking score, how it was chosen) and, when
``[faces] people`` is on, ``people`` gives the face result of every other person in view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_mmer.config import FaceConfig
from edge_mmer.decision import DecisionHead
from edge_mmer.networks import Networks, Stage, decide, face_only_channels
from edge_mmer.runtime.events import channel_result
from edge_mmer.runtime.faces import FaceTracker
from edge_mmer.runtime.settings import FaceSettings
from edge_mmer.runtime.speaker import SpeakerChoice, choose_speaker


@dataclass(frozen=True)
class FaceWindow:
    """The face side of one decision: the crops for the face channel and whose they are."""

    crops: list[np.ndarray]
    speaker: SpeakerChoice | None
    others: dict[int, list[np.ndarray]]  # the other people's crops (only when asked for)


def face_window(faces: FaceTracker, fs: FaceSettings, start: float, end: float,
                samples: np.ndarray | None) -> FaceWindow:
    """The crops of ``[start, end]``: the speaker's for an utterance (``samples``), the largest face's else."""
    with faces.lock:  # a short read beside the face worker's writes
        return _face_window(faces, fs, start, end, samples)


def _face_window(faces: FaceTracker, fs: FaceSettings, start: float, end: float,
                 samples: np.ndarray | None) -> FaceWindow:
    seen = faces.people_between(start, end)
    choice: SpeakerChoice | None
    if samples is None:
        choice = None
        if seen:
            tid = max(seen, key=lambda k: (seen[k].area, -k))
            choice = SpeakerChoice(tid, seen[tid], None, "largest")
    else:
        choice = choose_speaker(seen, faces.motion, samples, start, end, fs.speaker_min_score, fs.speaker_margin)
    if choice is None or len(seen) <= 1:
        crops = faces.crops_between(start, end)  # one face (or none): the largest face's crops, as trained
    else:
        crops = faces.crops_between(start, end, track=choice.track_id)
    others: dict[int, list[np.ndarray]] = {}
    if fs.people and choice is not None:
        for tid in sorted(seen):
            if tid != choice.track_id:
                mine = faces.crops_between(start, end, track=tid)
                if len(mine) >= fs.min_face_frames:
                    others[tid] = mine
    return FaceWindow(crops, choice, others)


def box_list(box: Any) -> list[int]:
    return [int(box.x), int(box.y), int(box.w), int(box.h)]


def speaker_dict(choice: SpeakerChoice | None) -> dict[str, Any] | None:
    """The event's ``speaker`` object."""
    if choice is None:
        return None
    return {"track_id": choice.track_id, "box": box_list(choice.box), "speaking_score": choice.score,
            "attribution": choice.method}


def people_results(window: FaceWindow, faces: FaceTracker, start: float, end: float, networks: Networks,
                   head: DecisionHead, face_cfg: FaceConfig, labels: tuple[str, ...],
                   stage: Stage) -> list[dict[str, Any]] | None:
    """The event's ``people``: each other person's face result over the window (the face context is
    read, not advanced), or None when not asked for."""
    if not window.others:
        return None
    with faces.lock:
        seen = faces.people_between(start, end)
    out = []
    for tid, crops in window.others.items():
        probs = decide(head, face_only_channels(networks, head, face_cfg, crops, stage), stage).channels["face"]
        out.append({"track_id": tid, "box": box_list(seen[tid]),
                    "face": None if probs is None else channel_result(labels, probs).to_dict()})
    return out
