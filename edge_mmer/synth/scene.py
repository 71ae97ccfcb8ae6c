"""Camera-sized synthetic scenes: 1-3 talking people on a room background, one speaking at a time.

The demo clip is one face filling a 320x240 frame; a robot's camera sees 1280x720 or 1920x1080 with
faces 80-400 px tall, several people, and light that changes. A scene places each person (a held-out
speaker of the synthetic dataset, rendered by :func:`~edge_mmer.synth.face.render_face` in a tile
sized so that the face is ``face_px`` tall) on a textured background, drifts the global lighting
slowly, and lets one person speak at a time: only the speaker's mouth follows the speech envelope
(espeak-ng at the voice's own rate), the others keep still mouths but blink and move their heads.
The sidecar ``<stem>.labels.json`` says who speaks when and where each face is, so a benchmark can
score speaker attribution against the renderer's truth.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from edge_mmer.synth.dataset import GENERATOR, SynthConfig, make_speakers
from edge_mmer.synth.demo import labels_path_for
from edge_mmer.synth.face import Blinker, neutral_expression, render_face, sample_expression, sample_pose, smooth_pose
from edge_mmer.synth.speech import SENTENCES, colored_noise, frame_envelope, synthesize_utterance

log = logging.getLogger(__name__)

__all__ = ["SceneSpec", "SceneTurn", "make_scene_clip"]

_STREAM_SCENE = 11
_NOISE_FLOOR_DBFS = -52.0


@dataclass(frozen=True)
class SceneSpec:
    """What to render: frame size, fps, people (their face heights in px), turns, seed."""

    size: tuple[int, int] = (1280, 720)
    fps: int = 30
    face_px: tuple[int, ...] = (200,)
    n_turns: int = 6
    seed: int = 0
    crf: int = 28

    def __post_init__(self) -> None:
        w, h = self.size
        if w % 2 or h % 2 or min(w, h) < 64:
            raise ValueError(f"scene size must be even and >= 64 px, got {self.size}")
        if not 1 <= len(self.face_px) <= 4:
            raise ValueError(f"a scene has 1-4 people, got {len(self.face_px)}")
        if any(not 40 <= p <= h * 0.6 for p in self.face_px):
            raise ValueError(f"face heights must be 40 px .. 60 % of the frame height, got {self.face_px}")
        if self.n_turns < 1:
            raise ValueError(f"n_turns must be >= 1, got {self.n_turns}")


@dataclass(frozen=True)
class SceneTurn:
    """One utterance of the scene: who speaks (index into ``people``), when, with which emotion."""

    start_s: float
    end_s: float
    speaker: int
    label: str
    text: str


def _background(w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """A room: a vertical gradient wall, a few pieces of furniture-like rectangles, a floor."""
    top, bottom = rng.uniform(90, 200, 3), rng.uniform(40, 140, 3)
    ramp = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    img = (top[None, None, :] * (1 - ramp) + bottom[None, None, :] * ramp) * np.ones((1, w, 1), np.float32)
    for _ in range(6):
        x0, y0 = int(rng.uniform(0, w * 0.9)), int(rng.uniform(0, h * 0.8))
        x1, y1 = x0 + int(rng.uniform(w * 0.05, w * 0.25)), y0 + int(rng.uniform(h * 0.05, h * 0.3))
        cv2.rectangle(img, (x0, y0), (x1, y1), tuple(float(c) for c in rng.uniform(30, 220, 3)), -1)
    img[int(h * 0.85):] *= 0.7
    return cv2.GaussianBlur(img, (0, 0), 2.0)


def _layout(spec: SceneSpec, face_h: list[float], rng: np.random.Generator) -> list[tuple[int, int, int, int]]:
    """(x, y, tile_w, tile_h) per person: side by side, the tile sized so the face is ``face_px`` tall."""
    w, h = spec.size
    n = len(spec.face_px)
    out = []
    for i, px in enumerate(spec.face_px):
        th = min(h, int(px / (2 * face_h[i]))) // 2 * 2
        tw = min(w // n, int(th * 0.9)) // 2 * 2
        cx = int((i + 0.5) * w / n + rng.uniform(-0.05, 0.05) * w / n)
        x = int(np.clip(cx - tw // 2, 0, w - tw))
        y = int(np.clip(h * 0.55 - th / 2 + rng.uniform(-0.05, 0.05) * h, 0, h - th))
        out.append((x, y, tw, th))
    return out


def _turns(spec: SceneSpec, n_people: int, labels: tuple[str, ...], voices: list[Any], sr: int,
           rng: np.random.Generator) -> tuple[list[SceneTurn], list[tuple[int, np.ndarray]], int]:
    texts = [SENTENCES[int(i)] for i in rng.permutation(len(SENTENCES))]
    turns, placed = [], []
    pos = round(0.8 * sr)
    speaker = int(rng.integers(n_people))
    for k in range(spec.n_turns):
        if k and n_people > 1:  # never the same speaker twice in a row
            speaker = (speaker + 1 + int(rng.integers(n_people - 1))) % n_people
        label = labels[int(rng.integers(len(labels)))]
        sample = synthesize_utterance(texts[k % len(texts)], label, voices[speaker], rng, sample_rate=sr)
        p = sample.prosody
        speech = sample.clean[round(p.lead_s * sr): sample.clean.shape[0] - round(p.trail_s * sr)]
        placed.append((pos, speech))
        turns.append(SceneTurn(round(pos / sr, 3), round((pos + speech.shape[0]) / sr, 3), speaker, label,
                               texts[k % len(texts)]))
        pos += speech.shape[0] + round(float(rng.uniform(0.7, 1.4)) * sr)
    return turns, placed, pos


def make_scene_clip(out_path: str | os.PathLike[str], spec: SceneSpec, cfg: SynthConfig | None = None) -> Path:
    """Write the scene MP4 (H.264 + AAC 16 kHz mono) and its ``.labels.json``; return the clip path."""
    cfg = cfg or SynthConfig(seed=0)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([cfg.seed, _STREAM_SCENE, spec.seed])
    held_out = [s for s in make_speakers(cfg) if s.split == "test"] or make_speakers(cfg)
    people = [held_out[(spec.seed + i) % len(held_out)] for i in range(len(spec.face_px))]
    sr, fps, (w, h) = cfg.sample_rate, spec.fps, spec.size
    turns, placed, total = _turns(spec, len(people), cfg.labels, [p.voice for p in people], sr, rng)
    clean = np.zeros(total, dtype=np.float32)
    for start, speech in placed:
        clean[start: start + speech.shape[0]] += speech
    track = clean + colored_noise(total, -1.0, rng) * 10.0 ** (_NOISE_FLOOR_DBFS / 20.0)
    track *= min(1.0, 0.98 / max(1e-9, float(np.max(np.abs(track)))))
    n_frames = math.ceil(total / sr * fps)
    envs = []
    for i in range(len(people)):  # each person's mouth follows only their own speech
        mine = np.zeros(total, dtype=np.float32)
        for (start, speech), turn in zip(placed, turns, strict=True):
            if turn.speaker == i:
                mine[start: start + speech.shape[0]] = speech
        envs.append(frame_envelope(mine, sr, fps, n_frames) if mine.any() else np.zeros(n_frames, np.float32))
    tiles = _layout(spec, [p.face.face_h for p in people], rng)
    bg = _background(w, h, rng)
    rest = neutral_expression()
    exprs = [sample_expression(t.label, rng) for t in turns]
    poses = [sample_pose(rng, 0.5) for _ in people]
    blinkers = [Blinker(rng) for _ in people]
    light_phase = float(rng.uniform(0, 2 * math.pi))
    with av.open(str(out), mode="w", format="mp4") as container:
        vs = container.add_stream("libx264", rate=fps, options={"crf": str(spec.crf), "preset": "veryfast"})
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        aus = container.add_stream("aac", rate=sr)
        aus.layout, aus.bit_rate = "mono", 32000
        a_pos, chunk = 0, 1024
        for i in range(n_frames):
            t = i / fps
            frame = bg.copy()
            for k, (person, (x, y, tw, th)) in enumerate(zip(people, tiles, strict=True)):
                ex = next((e for turn, e in zip(turns, exprs, strict=True)
                           if turn.speaker == k and turn.start_s - 0.3 <= t <= turn.end_s + 0.3), rest)
                poses[k] = smooth_pose(poses[k], rng, 0.05)
                pose = dataclasses.replace(poses[k], noise_std=0.0, brightness=1.0)
                frame[y: y + th, x: x + tw] = render_face(person.face, ex, talk=float(envs[k][i]), pose=pose,
                                                          size=(tw, th), blink=blinkers[k].step(t))
            gain = 1.0 + 0.25 * math.sin(2 * math.pi * t / 7.0 + light_phase)  # the light changes slowly
            img = np.clip(frame * gain + rng.normal(0, 2.0, (1, 1, 3)), 0, 255).astype(np.uint8)
            vf = av.VideoFrame.from_ndarray(img, format="bgr24")
            vf.pts, vf.time_base = i, Fraction(1, fps)
            container.mux(vs.encode(vf))
            a_until = min(total, round((i + 1) / fps * sr))
            while a_pos + chunk <= a_until or (i == n_frames - 1 and a_pos < total):
                seg = track[a_pos: a_pos + chunk]
                af = av.AudioFrame.from_ndarray(seg.reshape(1, -1).astype(np.float32), format="flt", layout="mono")
                af.sample_rate, af.pts, af.time_base = sr, a_pos, Fraction(1, sr)
                container.mux(aus.encode(af))
                a_pos += seg.shape[0]
        container.mux(vs.encode(None))
        container.mux(aus.encode(None))
    sidecar: dict[str, Any] = {
        "synthetic": True, "generator": GENERATOR, "seed": cfg.seed, "scene": dataclasses.asdict(spec),
        "people": [{"speaker": p.id, "split": p.split, "tile": list(tile)} for p, tile in zip(people, tiles,
                                                                                             strict=True)],
        "fps": fps, "frame_size": [w, h], "sample_rate": sr, "duration_s": round(total / sr, 3),
        "n_frames": n_frames, "timeline": [dataclasses.asdict(t) for t in turns],
    }
    labels_path_for(out).write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    log.info("wrote scene clip %s (%dx%d, %d people, %.1f s)", out, w, h, len(people), total / sr)
    return out
