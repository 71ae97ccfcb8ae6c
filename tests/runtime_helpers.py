"""Shared helpers for the runtime tests: the demo clip decoded once, networks on ONNX Runtime."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from edge_mmer.bundle import Bundle, read_bundle
from edge_mmer.runtime.chunks import VideoFrame
from edge_mmer.runtime.networks import Networks
from edge_mmer.runtime.pipeline import Pipeline, PipelineSettings
from edge_mmer.runtime.runners.select import load_runners

ROOT = Path(__file__).resolve().parents[1]
DEMO_BUNDLE = ROOT / "demo" / "bundle"
DEMO_CLIP = ROOT / "demo" / "demo_clip.mp4"


@functools.lru_cache(maxsize=1)
def demo_bundle() -> Bundle:
    return read_bundle(DEMO_BUNDLE)


@functools.lru_cache(maxsize=1)
def demo_timeline() -> list[dict]:
    return json.loads((ROOT / "demo" / "demo_clip.labels.json").read_text())["timeline"]


@functools.lru_cache(maxsize=1)
def demo_av() -> tuple[np.ndarray, tuple[VideoFrame, ...]]:
    """The demo clip decoded whole with PyAV: 16 kHz mono int16 audio and BGR frames."""
    import av

    with av.open(str(DEMO_CLIP)) as c:
        res = av.AudioResampler(format="s16", layout="mono", rate=16000)
        pcm = [g.to_ndarray().reshape(-1) for f in c.decode(audio=0) for g in res.resample(f)]
        pcm += [g.to_ndarray().reshape(-1) for g in res.resample(None)]
    with av.open(str(DEMO_CLIP)) as c:
        frames = tuple(VideoFrame(float(f.time), f.to_ndarray(format="bgr24"), i)
                       for i, f in enumerate(c.decode(video=0)))
    return np.concatenate(pcm).astype(np.int16), frames


def demo_networks(precision: str = "fp32") -> Networks:
    runners, _ = load_runners(demo_bundle(), backend="onnxruntime", precision=precision, threads=2)
    nets = Networks(runners)
    nets.activate()
    return nets


def demo_pipeline(settings: PipelineSettings | None = None, **kw: object) -> Pipeline:
    return Pipeline(demo_bundle(), demo_networks(), settings, session_id="test",
                    wall_clock=lambda: "2026-01-01T00:00:00.000Z",
                    **kw)  # type: ignore[arg-type]


def comparable(event_dicts: list[dict]) -> list[dict]:
    """Event dicts without what legitimately differs between runs (wall time, measured latency)."""
    return [{k: v for k, v in d.items() if k not in ("wall_time", "decision_latency_ms")} for d in event_dicts]
