"""The committed demo bundle and clip, loaded once per process: the clip decoded with PyAV, the
bundle's networks on ONNX Runtime, a pipeline over them (the ``demo_pipeline`` fixture closes the
ones a test makes)."""

from __future__ import annotations

import functools
import json
from typing import Any, Protocol

import numpy as np

from edge_mmer.bundle import Bundle, read_bundle
from edge_mmer.networks import Networks
from edge_mmer.runtime.chunks import VideoFrame
from edge_mmer.runtime.pipeline import Pipeline, PipelineSettings
from edge_mmer.runtime.runners.select import load_runners

from .paths import DEMO_BUNDLE, DEMO_CLIP, DEMO_LABELS

__all__ = ["DEMO_BUNDLE", "DEMO_CLIP", "PipelineFactory", "build_pipeline", "comparable", "demo_av", "demo_bundle",
           "demo_networks", "demo_timeline"]


@functools.lru_cache(maxsize=1)
def demo_bundle() -> Bundle:
    return read_bundle(DEMO_BUNDLE)


@functools.lru_cache(maxsize=1)
def demo_timeline() -> list[dict[str, Any]]:
    """The clip's ground truth: one ``{"label", "start_s", "end_s", ...}`` per sentence."""
    timeline: list[dict[str, Any]] = json.loads(DEMO_LABELS.read_text())["timeline"]
    return timeline


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
    """The demo bundle's five networks on ONNX Runtime (CPU, 2 threads), loaded and active."""
    return load_runners(demo_bundle(), backend="onnxruntime", precision=precision, threads=2).networks()


def build_pipeline(settings: PipelineSettings | None = None, *, expect_audio: bool = True,
                   expect_video: bool = True) -> Pipeline:
    """A pipeline on the demo bundle with a fixed session id and wall clock (events compare across runs)."""
    return Pipeline(demo_bundle(), demo_networks(), settings, session_id="test",
                    wall_clock=lambda: "2026-01-01T00:00:00.000Z", expect_audio=expect_audio,
                    expect_video=expect_video)


class PipelineFactory(Protocol):
    """What the ``demo_pipeline`` fixture gives: :func:`build_pipeline`, closed after the test."""

    def __call__(self, settings: PipelineSettings | None = None, *, expect_audio: bool = True,
                 expect_video: bool = True) -> Pipeline: ...


def comparable(event_dicts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Event dicts without what legitimately differs between runs (wall time, measured latency)."""
    return [{k: v for k, v in d.items() if k not in ("wall_time", "decision_latency_ms")} for d in event_dicts]
