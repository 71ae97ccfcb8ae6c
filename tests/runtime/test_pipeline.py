"""The pipeline on the demo clip: right emotions, streaming == offline, missing modalities, resets."""

from __future__ import annotations

import dataclasses
from typing import Any

import jsonschema
import numpy as np
import pytest
from support.demo import DEMO_BUNDLE, DEMO_CLIP, PipelineFactory, comparable, demo_av, demo_timeline

from edge_mmer.networks import StepLSTM
from edge_mmer.runtime.chunks import AudioChunk, VideoFrame
from edge_mmer.runtime.events import load_schema
from edge_mmer.runtime.pipeline import PipelineSettings, run_offline
from edge_mmer.runtime.settings import DecisionSettings, FaceSettings
from edge_mmer.runtime.smoothing import Smoother, SmoothingSettings
from edge_mmer.runtime.sources.files import MediaFileSource

EVERY = PipelineSettings(decision=DecisionSettings(emit="every"))


def _steps(step: StepLSTM | None) -> int:
    """Steps of a step graph the bundle has (a speech + face bundle has all three)."""
    assert step is not None
    return step.steps


def collapse(labels: list[str]) -> list[str]:
    return [x for i, x in enumerate(labels) if i == 0 or labels[i - 1] != x]


def stream_demo_clip(demo_pipeline: PipelineFactory, settings: PipelineSettings | None) -> list[dict[str, Any]]:
    pipe = demo_pipeline(settings)
    src = MediaFileSource(DEMO_CLIP)
    src.open()
    try:
        events = pipe.feed_all(src.chunks()) + pipe.flush()
    finally:
        src.close()
    return [e.to_dict() for e in events]


def offline_demo_clip(demo_pipeline: PipelineFactory, settings: PipelineSettings | None) -> list[dict[str, Any]]:
    audio, frames = demo_av()
    return [e.to_dict() for e in run_offline(demo_pipeline(settings), audio, frames)]


@pytest.mark.parametrize("settings", [EVERY, None], ids=["emit-every", "defaults"])
def test_streaming_equals_offline_on_the_demo_clip(demo_pipeline: PipelineFactory,
                                                   settings: PipelineSettings | None) -> None:
    streamed = stream_demo_clip(demo_pipeline, settings)
    offline = offline_demo_clip(demo_pipeline, settings)
    assert len(streamed) >= 1
    assert comparable(streamed) == comparable(offline)


def test_demo_clip_gives_the_expected_emotions_and_valid_events(demo_pipeline: PipelineFactory) -> None:
    events = offline_demo_clip(demo_pipeline, EVERY)
    truth = [x["label"] for x in demo_timeline()]
    assert [e["label"] for e in events] == truth
    schema = load_schema()
    for i, e in enumerate(events, start=1):
        jsonschema.validate(e, schema)
        assert e["seq"] == i and e["trigger"] == "utterance" and e["synthetic_model"] is True
        assert all(e["channels"][c] is not None for c in ("speech", "face", "fused"))
    # default policy (emit on change): the timeline with repeats collapsed
    assert [e["label"] for e in offline_demo_clip(demo_pipeline, None)] == collapse(truth)


def test_no_camera_gives_speech_only_decisions(demo_pipeline: PipelineFactory) -> None:
    audio, _ = demo_av()
    pipe = demo_pipeline(dataclasses.replace(EVERY, decision=DecisionSettings(alpha=1.0, emit="every")),
                         expect_video=False)
    events = [e.to_dict() for e in run_offline(pipe, audio, [])]
    assert len(events) == len(demo_timeline())
    for e in events:
        assert e["channels"]["face"] is None and e["channels"]["fused"] is None
        assert e["channels"]["speech"] is not None
        assert e["scores"] == pytest.approx(e["channels"]["speech"]["scores"], abs=1e-5)  # one channel: its support
    assert _steps(pipe.networks.face_context) == 0 and _steps(pipe.networks.fusion) == 0


def test_face_in_view_during_silence_gives_face_only_decisions(demo_pipeline: PipelineFactory) -> None:
    audio, frames = demo_av()
    silent = np.zeros_like(audio)
    settings = dataclasses.replace(EVERY, faces=FaceSettings(face_only_interval_s=4.0))
    pipe = demo_pipeline(settings)
    events = [e.to_dict() for e in run_offline(pipe, silent, frames)]
    duration = len(audio) / 16000
    assert len(events) == int((duration - pipe.vad.settings.trigger_delay_s) // 4.0)
    for e in events:
        assert e["trigger"] == "face_only"
        assert e["channels"]["speech"] is None and e["channels"]["fused"] is None and e["channels"]["face"] is not None
        assert e["utterance"]["end_s"] - e["utterance"]["start_s"] == pytest.approx(4.0)
    assert _steps(pipe.networks.face_context) == 0  # face-only decisions read the context, never advance it


def test_camera_only_runs_on_the_video_clock(demo_pipeline: PipelineFactory) -> None:
    _, frames = demo_av()
    pipe = demo_pipeline(dataclasses.replace(EVERY, faces=FaceSettings(face_only_interval_s=5.0)), expect_audio=False)
    events = pipe.feed_all(frames) + pipe.flush()
    assert len(events) == int(frames[-1].t // 5.0)
    assert all(e.trigger == "face_only" for e in events)


def test_context_resets_after_a_long_gap(demo_pipeline: PipelineFactory) -> None:
    audio, frames = demo_av()
    pipe = demo_pipeline(dataclasses.replace(EVERY, faces=FaceSettings(face_only_interval_s=0.0),
                                             decision=DecisionSettings(emit="every", context_reset_gap_s=10.0)))
    first = run_offline(pipe, audio, frames)
    assert _steps(pipe.networks.speech_context) == len(first)
    # 12 s of silence, then one sentence again: the context starts over
    later = len(audio) / 16000 + 12.0
    seg = audio[int(0.5 * 16000) : int(3.4 * 16000)]
    pipe.feed(AudioChunk(later, np.concatenate([seg, np.zeros(8000, np.int16)]), 16000))
    pipe.flush()
    assert pipe.stats.snapshot()["counters"].get("context_resets") == 1
    assert _steps(pipe.networks.speech_context) == 1


def test_late_frames_are_waited_for(demo_pipeline: PipelineFactory) -> None:
    """Audio first, frames later (a slow camera): the decision still sees the utterance's faces."""
    audio, frames = demo_av()
    tl = demo_timeline()[0]
    end = int((tl["end_s"] + 0.5) * 16000)  # the VAD closes the utterance ~0.3 s after the sentence
    pipe = demo_pipeline(EVERY)
    early = pipe.feed(AudioChunk(0.0, audio[:end], 16000))
    assert early == []  # waiting for video
    events = pipe.feed_all(f for f in frames if f.t <= tl["end_s"] + 0.5)
    assert len(events) == 1 and events[0].channels["face"] is not None


def test_malformed_frames_are_skipped(demo_pipeline: PipelineFactory) -> None:
    pipe = demo_pipeline(EVERY)
    malformed: list[np.ndarray] = [np.zeros((0, 0, 3), np.uint8), np.zeros((4, 4, 3), np.uint8),
                                   np.zeros((240, 320), np.float32)]
    for i, img in enumerate(malformed):
        assert pipe.feed(VideoFrame(i * 0.3, img, i)) == []
    pipe.face_worker.sync()  # face analysis runs in its own thread: wait for it before reading the tracker
    assert pipe.faces.bad_frames == 3


def test_smoother_hysteresis_and_heartbeat() -> None:
    sm = Smoother(SmoothingSettings(alpha=1.0, hysteresis=0.2, emit="change", interval_s=10.0))
    assert sm.update(np.array([0.6, 0.4]))  # first decision: emitted
    assert not sm.update(np.array([0.45, 0.55]))  # a lead of 0.1 < 0.2: no flip
    assert sm.label == 0
    assert sm.update(np.array([0.3, 0.7]))  # a lead of 0.4: flip, emitted
    sm.mark_emitted(0.0)
    assert not sm.heartbeat_due(9.9) and sm.heartbeat_due(10.0)
    smooth = Smoother(SmoothingSettings(alpha=0.5, hysteresis=0.0))
    smooth.update(np.array([1.0, 0.0]))
    smooth.update(np.array([0.0, 1.0]))
    assert smooth.scores is not None and smooth.scores.tolist() == [0.5, 0.5]


def test_open_pipeline_is_the_pipeline_in_one_call() -> None:
    """The public API: a bundle directory to a ready pipeline; the same events as the hand-built one."""
    from edge_mmer.runtime import open_pipeline

    audio, frames = demo_av()
    with open_pipeline(DEMO_BUNDLE, backend="onnxruntime", settings=EVERY) as pipe:
        events = [e.to_dict() for e in run_offline(pipe, audio, frames)]
        assert all(r.active for r in pipe.networks.runners.values())
    assert not any(r.active for r in pipe.networks.runners.values()), "closed: the networks are released"
    assert [e["label"] for e in events] == [x["label"] for x in demo_timeline()]
    assert pipe.stream_clock is not None and pipe.stream_clock >= frames[-1].t


def test_the_bundle_fills_in_only_what_the_settings_leave_out(demo_pipeline: PipelineFactory) -> None:
    from edge_mmer.runtime.settings import VadSettings

    pipe = demo_pipeline(PipelineSettings(vad=VadSettings(max_utterance_s=6.0), faces=FaceSettings(analysis_fps=2.0),
                                          decision=DecisionSettings(context_reset_gap_s=12.0)))
    cfg = pipe.cfg
    assert pipe.vad.min_utterance_s == cfg.audio.min_utterance_s and pipe.vad.max_utterance_s == 6.0
    assert pipe.faces.analysis_fps == 2.0 and pipe.reset_gap == 12.0
    pipe = demo_pipeline(None)
    assert (pipe.vad.max_utterance_s, pipe.faces.analysis_fps, pipe.reset_gap) == (
        cfg.audio.max_utterance_s, cfg.face.analysis_fps, cfg.context.reset_gap_s)
    pipe.set_expect_audio(False)
    assert pipe.expect_audio is False
