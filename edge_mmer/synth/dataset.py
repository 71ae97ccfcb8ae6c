"""Generate the deterministic synthetic audio-visual emotion dataset.

Layout of ``out_dir``::

    dataset.json        format version, generator, seed, config, labels, speakers (+ split)
    utterances.jsonl    one JSON object per utterance (see :func:`generate_dataset`)
    audio/<id>.wav      16 kHz mono 16-bit PCM
    video/<id>.mp4      talking face, MPEG-4 Part 2 ('mp4v') at ``cfg.fps``

A *session* is one speaker saying a sequence of utterances whose emotions follow
a sticky Markov chain (stay with probability ``cfg.stay_prob``, otherwise jump to
another label uniformly), so context across utterances carries information.
Speakers are split speaker-independently into train / val / test.

Everything derives from ``cfg.seed``: every utterance has its own random
stream, so the result does not depend on the number of worker processes.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import multiprocessing
import os
import wave
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from edge_mmer.config import LABELS
from edge_mmer.datasets.base import split_counts
from edge_mmer.synth.face import (
    Blinker,
    FaceIdentity,
    FacePose,
    random_identity,
    render_face,
    sample_expression,
    sample_pose,
    smooth_pose,
)
from edge_mmer.synth.speech import (
    SENTENCES,
    SpeakerVoice,
    espeak_path,
    frame_envelope,
    make_voices,
    synthesize_utterance,
)
from edge_mmer.vocab import SPLITS

logger = logging.getLogger(__name__)

__all__ = [
    "FORMAT_VERSION",
    "GENERATOR",
    "SPLITS",
    "SpeakerProfile",
    "SynthConfig",
    "UtteranceJob",
    "default_split",
    "generate_dataset",
    "make_speakers",
    "plan_utterances",
    "render_video_frames",
    "write_wav",
]

FORMAT_VERSION = 1
GENERATOR = "edge-mmer synthetic"

# independent random streams derived from the seed
_STREAM_SPEAKERS = 1
_STREAM_PLAN = 2
_STREAM_UTTERANCE = 3


def default_split(n_speakers: int) -> tuple[int, int, int]:
    """About 60 / 20 / 20 % train / val / test speakers, at least one val and test speaker when n >= 3:
    the real datasets' group split rule (:func:`edge_mmer.datasets.base.split_counts`) at 0.2 / 0.2."""
    return split_counts(n_speakers, 0.2, 0.2)


@dataclass(frozen=True)
class SynthConfig:
    """Configuration of the synthetic dataset (stored in ``dataset.json``)."""

    seed: int = 0
    # 16 speakers (10 / 3 / 3): fewer training voices and faces do not generalise to new speakers
    n_speakers: int = 16
    sessions_per_speaker: int = 5
    utterances_per_session: int = 8
    fps: int = 15
    frame_size: tuple[int, int] = (320, 240)  # (width, height)
    sample_rate: int = 16000
    # train / val / test speaker counts; None = about 60 / 20 / 20 % (10 / 3 / 3 for 16 speakers)
    split_speakers: tuple[int, int, int] | None = None
    stay_prob: float = 0.5
    labels: tuple[str, ...] = LABELS

    def __post_init__(self) -> None:
        def bad(key: str, expected: str, value: object) -> ValueError:
            return ValueError(f"SynthConfig.{key}: expected {expected}, got {value!r}")

        if self.n_speakers < 1:
            raise bad("n_speakers", ">= 1", self.n_speakers)
        if self.sessions_per_speaker < 1:
            raise bad("sessions_per_speaker", ">= 1", self.sessions_per_speaker)
        if self.utterances_per_session < 1:
            raise bad("utterances_per_session", ">= 1", self.utterances_per_session)
        if not 1 <= self.fps <= 60:
            raise bad("fps", "1..60", self.fps)
        if len(self.frame_size) != 2 or min(self.frame_size) < 64 or any(v % 2 for v in self.frame_size):
            raise bad("frame_size", "(width, height), both even and >= 64", self.frame_size)
        if self.sample_rate != 16000:
            raise bad("sample_rate", "16000", self.sample_rate)
        split = default_split(self.n_speakers) if self.split_speakers is None else tuple(self.split_speakers)
        if len(split) != 3 or min(split) < 0 or sum(split) != self.n_speakers:
            raise bad(
                "split_speakers", f"three counts (train, val, test) summing to n_speakers={self.n_speakers}", split
            )
        # normalise (e.g. lists read from JSON) so the config stays hashable and comparable
        object.__setattr__(self, "split_speakers", (int(split[0]), int(split[1]), int(split[2])))
        object.__setattr__(self, "frame_size", (int(self.frame_size[0]), int(self.frame_size[1])))
        object.__setattr__(self, "labels", tuple(self.labels))
        if not 0.0 <= self.stay_prob <= 1.0:
            raise bad("stay_prob", "0..1", self.stay_prob)
        if len(self.labels) < 2 or len(set(self.labels)) != len(self.labels) or not set(self.labels) <= set(LABELS):
            raise bad("labels", f"two or more distinct labels from {LABELS}", self.labels)

    @property
    def split_counts(self) -> tuple[int, int, int]:
        """(train, val, test) speaker counts."""
        split = self.split_speakers
        return split if split is not None else default_split(self.n_speakers)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


@dataclass(frozen=True)
class SpeakerProfile:
    """One synthetic speaker: a voice and a face."""

    id: str
    split: str
    voice: SpeakerVoice
    face: FaceIdentity

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "split": self.split,
            "gender": self.voice.gender,
            "voice": dataclasses.asdict(self.voice),
            "face": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self.face).items()},
        }


@dataclass(frozen=True)
class UtteranceJob:
    """Everything needed to synthesise one utterance (picklable)."""

    id: str
    session: str
    index: int
    speaker: SpeakerProfile
    label: str
    text: str
    seed: tuple[int, ...]
    fps: int
    frame_size: tuple[int, int]
    sample_rate: int


def make_speakers(cfg: SynthConfig) -> list[SpeakerProfile]:
    """The dataset's speakers (voices, faces and splits), deterministic from ``cfg.seed``."""
    rng = np.random.default_rng([cfg.seed, _STREAM_SPEAKERS])
    voices = make_voices(cfg.n_speakers, rng)
    faces = [random_identity(rng) for _ in range(cfg.n_speakers)]
    order = rng.permutation(cfg.n_speakers)
    splits = [""] * cfg.n_speakers
    n_train, n_val, _n_test = cfg.split_counts
    for rank, idx in enumerate(order):
        splits[int(idx)] = "train" if rank < n_train else ("val" if rank < n_train + n_val else "test")
    return [
        SpeakerProfile(id=f"spk{i:02d}", split=splits[i], voice=voices[i], face=faces[i]) for i in range(cfg.n_speakers)
    ]


def _markov_chain(n: int, labels: tuple[str, ...], stay: float, rng: np.random.Generator, first: int) -> list[int]:
    seq = [first]
    k = len(labels)
    for _ in range(n - 1):
        if rng.random() < stay:
            seq.append(seq[-1])
        else:
            other = int(rng.integers(k - 1))
            seq.append(other if other < seq[-1] else other + 1)
    return seq


def plan_utterances(cfg: SynthConfig, speakers: list[SpeakerProfile] | None = None) -> list[UtteranceJob]:
    """All utterance jobs in dataset order (speaker, session, index).

    Label sequences follow a sticky Markov chain; among a few candidate draws the
    most class-balanced one is kept (deterministically), so classes are roughly
    balanced without breaking the chain's statistics within a session.
    """
    speakers = speakers if speakers is not None else make_speakers(cfg)
    rng = np.random.default_rng([cfg.seed, _STREAM_PLAN])
    labels = cfg.labels
    k = len(labels)
    n_sessions = cfg.n_speakers * cfg.sessions_per_speaker
    best: list[list[int]] = []
    best_score = math.inf
    for _ in range(32):
        firsts = np.concatenate([rng.permutation(k) for _ in range(n_sessions // k + 1)])[:n_sessions]
        chains = [
            _markov_chain(cfg.utterances_per_session, labels, cfg.stay_prob, rng, int(firsts[s]))
            for s in range(n_sessions)
        ]
        counts = np.bincount(np.concatenate(chains), minlength=k)
        score = float(counts.max() - counts.min())
        if score < best_score:
            best, best_score = chains, score
    jobs: list[UtteranceJob] = []
    for si, spk in enumerate(speakers):
        for sess in range(cfg.sessions_per_speaker):
            chain = best[si * cfg.sessions_per_speaker + sess]
            texts = rng.permutation(len(SENTENCES))
            session_id = f"{spk.id}_s{sess:02d}"
            for idx, lab in enumerate(chain):
                jobs.append(
                    UtteranceJob(
                        id=f"{session_id}_u{idx:02d}",
                        session=session_id,
                        index=idx,
                        speaker=spk,
                        label=labels[lab],
                        text=SENTENCES[int(texts[idx % len(texts)])],
                        seed=(cfg.seed, _STREAM_UTTERANCE, si, sess, idx),
                        fps=cfg.fps,
                        frame_size=(int(cfg.frame_size[0]), int(cfg.frame_size[1])),
                        sample_rate=cfg.sample_rate,
                    )
                )
    return jobs


def write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write mono float audio in [-1, 1] as 16-bit PCM with the stdlib ``wave`` module."""
    pcm = np.clip(np.round(np.asarray(audio, dtype=np.float64) * 32767.0), -32768, 32767).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(int(sample_rate))
        wf.writeframes(pcm.tobytes())


def render_video_frames(
    face: FaceIdentity,
    label: str,
    envelope: np.ndarray,
    rng: np.random.Generator,
    size: tuple[int, int],
    fps: float,
) -> Iterator[np.ndarray]:
    """Yield BGR frames of a talking face: one per envelope value (mouth follows the envelope)."""
    expr = sample_expression(label, rng)
    pose: FacePose = sample_pose(rng)
    blinker = Blinker(rng)
    for i, talk in enumerate(envelope):
        blink = blinker.step(i / fps)
        pose = smooth_pose(pose, rng)
        yield render_face(face, expr, talk=float(talk), pose=pose, rng=rng, size=size, blink=blink)


def _synth_one(job: UtteranceJob, out_dir: str) -> dict[str, Any]:
    rng = np.random.default_rng(list(job.seed))
    root = Path(out_dir)
    spk = job.speaker
    sample = synthesize_utterance(job.text, job.label, spk.voice, rng, sample_rate=job.sample_rate)
    audio_rel = f"audio/{job.id}.wav"
    video_rel = f"video/{job.id}.mp4"
    write_wav(root / audio_rel, sample.audio, job.sample_rate)
    n_samples = int(sample.audio.shape[0])
    duration = n_samples / job.sample_rate
    n_frames = max(1, round(duration * job.fps))
    env = frame_envelope(sample.clean, job.sample_rate, job.fps, n_frames)
    vpath = root / video_rel
    vpath.parent.mkdir(parents=True, exist_ok=True)
    tmp = vpath.with_name(vpath.stem + ".part.mp4")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"mp4v"), float(job.fps), job.frame_size)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV could not open a 'mp4v' VideoWriter for {vpath}")
    try:
        for frame in render_video_frames(spk.face, job.label, env, rng, job.frame_size, job.fps):
            writer.write(frame)
    finally:
        writer.release()
    tmp.replace(vpath)
    p = sample.prosody
    return {
        "id": job.id,
        "session": job.session,
        "index": job.index,
        "speaker": spk.id,
        "split": spk.split,
        "label": job.label,
        "text": job.text,
        "audio": audio_rel,
        "video": video_rel,
        "duration_s": round(duration, 6),
        "n_samples": n_samples,
        "n_frames": n_frames,
        "fps": job.fps,
        "meta": {
            "voice": spk.voice.voice,
            "pitch": p.pitch,
            "speed": p.speed,
            "pitch_range": round(p.pitch_range, 2),
            "level_db": round(p.level_db, 2),
            "snr_db": round(p.snr_db, 2),
        },
    }


def _worker_init() -> None:
    cv2.setNumThreads(1)


def _default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def generate_dataset(
    out_dir: str | os.PathLike[str],
    cfg: SynthConfig | None = None,
    progress: bool = True,
    workers: int | None = None,
) -> Path:
    """Generate the synthetic dataset into ``out_dir`` and return its path.

    ``workers`` processes synthesise utterances in parallel (default: up to 4,
    bounded by the CPU count; 1 = in-process).  The output is identical for any
    number of workers.  Each row of ``utterances.jsonl`` holds ``id, session,
    index, speaker, split, label, text, audio, video, duration_s, n_samples,
    n_frames, fps`` and a ``meta`` dict with the synthesis parameters.
    """
    cfg = cfg or SynthConfig()
    espeak_path()  # fail early with an install hint
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    speakers = make_speakers(cfg)
    jobs = plan_utterances(cfg, speakers)
    n_workers = _default_workers() if workers is None else max(1, int(workers))
    n_workers = min(n_workers, len(jobs))
    logger.info(
        "generating %d utterances (%d speakers) into %s with %d worker(s)", len(jobs), len(speakers), root, n_workers
    )
    rows: list[dict[str, Any]] = []
    bar = tqdm(total=len(jobs), desc="synth", unit="utt", disable=not progress)
    try:
        if n_workers == 1:
            for job in jobs:
                rows.append(_synth_one(job, str(root)))
                bar.update(1)
        else:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx, initializer=_worker_init) as pool:
                for row in pool.map(_synth_one, jobs, [str(root)] * len(jobs), chunksize=4):
                    rows.append(row)
                    bar.update(1)
    finally:
        bar.close()

    counts = {lab: sum(r["label"] == lab for r in rows) for lab in cfg.labels}
    meta = {
        "format_version": FORMAT_VERSION,
        "generator": GENERATOR,
        "synthetic": True,
        "seed": cfg.seed,
        "config": cfg.to_dict(),
        "labels": list(cfg.labels),
        "speakers": [s.to_dict() for s in speakers],
        "splits": {sp: [s.id for s in speakers if s.split == sp] for sp in SPLITS},
        "n_utterances": len(rows),
        "class_counts": counts,
        "total_duration_s": round(sum(r["duration_s"] for r in rows), 3),
    }
    with open(root / "utterances.jsonl", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, sort_keys=False) + "\n")
    (root / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote %d utterances (%.1f s of audio), class counts %s", len(rows), meta["total_duration_s"], counts)
    return root
