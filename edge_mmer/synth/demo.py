"""A short synthetic demo clip: talking face (H.264) + speech (AAC) in one MP4.

The clip strings together utterances of different emotions by one *test-split*
speaker of the synthetic dataset (same seed => same speaker as
:func:`edge_mmer.synth.generate_dataset`), separated by silences during which
the face stays visible with a near-neutral expression.  A sidecar
``<stem>.labels.json`` holds the ground-truth timeline.
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
import numpy as np

from edge_mmer.synth.dataset import GENERATOR, SynthConfig, make_speakers
from edge_mmer.synth.face import (
    Blinker,
    Expression,
    neutral_expression,
    render_face,
    sample_expression,
    sample_pose,
    smooth_pose,
)
from edge_mmer.synth.speech import SENTENCES, colored_noise, frame_envelope, synthesize_utterance

logger = logging.getLogger(__name__)

__all__ = ["DemoSegment", "blend_expressions", "labels_path_for", "make_demo_clip"]

_NOISE_FLOOR_DBFS = -52.0
_RAMP_S = 0.3  # expression onset / offset around each utterance
_STREAM_DEMO = 7


@dataclass(frozen=True)
class DemoSegment:
    """Ground truth of one utterance in the clip (speech-active interval)."""

    start_s: float
    end_s: float
    label: str
    text: str


def labels_path_for(clip: Path) -> Path:
    """The sidecar path ``<stem>.labels.json`` next to ``clip``."""
    return clip.with_name(clip.stem + ".labels.json")


def blend_expressions(a: Expression, b: Expression, w: float) -> Expression:
    """Linear interpolation ``(1-w)*a + w*b`` of every expression parameter."""
    w = float(np.clip(w, 0.0, 1.0))
    vals = {
        f.name: (1.0 - w) * float(getattr(a, f.name)) + w * float(getattr(b, f.name))
        for f in dataclasses.fields(Expression)
    }
    return Expression(**vals)


def _demo_labels(n: int, labels: tuple[str, ...], rng: np.random.Generator) -> list[str]:
    """``n`` labels covering every class once (when n >= len(labels)), no two consecutive equal."""
    out: list[str] = []
    while len(out) < n:
        block = [labels[int(i)] for i in rng.permutation(len(labels))]
        if out and block[0] == out[-1]:
            block.append(block.pop(0))
        out.extend(block)
    out = out[:n]
    return out


def make_demo_clip(
    out_path: str | os.PathLike[str],
    seed: int = 0,
    n_utterances: int = 8,
    cfg: SynthConfig | None = None,
    speaker: str | None = None,
    crf: int = 30,
    audio_bitrate: int = 32000,
) -> Path:
    """Write the demo MP4 (H.264 + AAC, 16 kHz mono) and its ``.labels.json``; return the clip path.

    ``cfg`` defaults to ``SynthConfig(seed=seed)``; the speaker is the first
    test-split speaker of that config (or ``speaker``, a speaker id).  About
    8-10 utterances make ~25 s; the file stays well under 2 MB.
    """
    cfg = cfg or SynthConfig(seed=seed)
    if n_utterances < 1:
        raise ValueError(f"n_utterances must be >= 1, got {n_utterances}")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    speakers = make_speakers(cfg)
    if speaker is None:
        cands = [s for s in speakers if s.split == "test"] or speakers
        spk = cands[0]
    else:
        by_id = {s.id: s for s in speakers}
        if speaker not in by_id:
            raise ValueError(f"unknown speaker {speaker!r}; known: {sorted(by_id)}")
        spk = by_id[speaker]
    sr = cfg.sample_rate
    fps = cfg.fps
    w, h = int(cfg.frame_size[0]), int(cfg.frame_size[1])
    rng = np.random.default_rng([cfg.seed, _STREAM_DEMO, speakers.index(spk)])

    # ---- audio timeline ----
    labels = _demo_labels(n_utterances, cfg.labels, rng)
    texts = [SENTENCES[int(i)] for i in rng.permutation(len(SENTENCES))]
    segments: list[DemoSegment] = []
    expressions: list[Expression] = []
    pos = round(0.8 * sr)
    placements: list[tuple[int, np.ndarray]] = []
    for i, lab in enumerate(labels):
        sample = synthesize_utterance(texts[i % len(texts)], lab, spk.voice, rng, sample_rate=sr)
        p = sample.prosody
        lead = round(p.lead_s * sr)
        trail = round(p.trail_s * sr)
        speech = sample.clean[lead : sample.clean.shape[0] - trail]
        placements.append((pos, speech))
        segments.append(
            DemoSegment(
                start_s=round(pos / sr, 3),
                end_s=round((pos + speech.shape[0]) / sr, 3),
                label=lab,
                text=texts[i % len(texts)],
            )
        )
        expressions.append(sample_expression(lab, rng))
        pos += speech.shape[0] + round(float(rng.uniform(0.6, 1.5)) * sr)
    total = pos - round(0.3 * sr)  # last gap shortened
    clean = np.zeros(total, dtype=np.float32)
    for start, speech in placements:
        clean[start : start + speech.shape[0]] += speech
    noise = colored_noise(total, float(rng.uniform(-1.5, -0.5)), rng) * 10.0 ** (_NOISE_FLOOR_DBFS / 20.0)
    track = clean + noise
    peak = float(np.max(np.abs(track)))
    if peak > 0.98:
        track *= 0.98 / peak

    # ---- video frames ----
    n_frames = math.ceil(total / sr * fps)
    env = frame_envelope(clean, sr, fps, n_frames)
    rest = blend_expressions(neutral_expression(), sample_expression("neutral", rng, jitter=0.5), 0.5)
    pose = sample_pose(rng)
    blinker = Blinker(rng, first_at=1.0)

    def expression_at(t: float) -> Expression:
        for seg, ex in zip(segments, expressions, strict=True):
            a, b = seg.start_s - _RAMP_S, seg.end_s + _RAMP_S
            if a <= t <= b:
                wgt = min(1.0, (t - a) / _RAMP_S, (b - t) / _RAMP_S)
                # quantise so the renderer's cache of static face layers is effective
                return blend_expressions(rest, ex, round(wgt * 6.0) / 6.0)
        return rest

    with av.open(str(out), mode="w", format="mp4") as container:
        vstream = container.add_stream("libx264", rate=fps, options={"crf": str(crf), "preset": "medium"})
        vstream.width = w
        vstream.height = h
        vstream.pix_fmt = "yuv420p"
        astream = container.add_stream("aac", rate=sr)
        astream.layout = "mono"
        astream.bit_rate = audio_bitrate
        chunk = 1024
        a_pos = 0
        for i in range(n_frames):
            t = i / fps
            blink = blinker.step(t)
            pose = smooth_pose(pose, rng)
            frame = render_face(
                spk.face, expression_at(t), talk=float(env[i]), pose=pose, rng=rng, size=(w, h), blink=blink
            )
            vf = av.VideoFrame.from_ndarray(frame, format="bgr24")
            vf.pts = i
            vf.time_base = Fraction(1, fps)
            container.mux(vstream.encode(vf))
            # interleave audio up to the end of this video frame
            a_until = min(total, round((i + 1) / fps * sr))
            while a_pos + chunk <= a_until or (i == n_frames - 1 and a_pos < total):
                seg = track[a_pos : a_pos + chunk]
                af = av.AudioFrame.from_ndarray(seg.reshape(1, -1).astype(np.float32), format="flt", layout="mono")
                af.sample_rate = sr
                af.pts = a_pos
                af.time_base = Fraction(1, sr)
                container.mux(astream.encode(af))
                a_pos += seg.shape[0]
        container.mux(vstream.encode(None))
        container.mux(astream.encode(None))

    duration = total / sr
    sidecar: dict[str, Any] = {
        "synthetic": True,
        "generator": GENERATOR,
        "seed": cfg.seed,
        "speaker": spk.id,
        "speaker_split": spk.split,
        "voice": spk.voice.voice,
        "labels": list(cfg.labels),
        "fps": fps,
        "frame_size": [w, h],
        "sample_rate": sr,
        "duration_s": round(duration, 3),
        "n_frames": n_frames,
        "timeline": [dataclasses.asdict(s) for s in segments],
    }
    labels_path_for(out).write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    logger.info(
        "wrote demo clip %s (%.1f s, %d utterances, %d bytes)", out, duration, len(segments), out.stat().st_size
    )
    return out
