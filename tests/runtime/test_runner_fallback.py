"""A runner failure during inference never kills the loop (the decision is skipped and counted), and
a TensorRT runner that keeps failing falls back to ONNX Runtime under ``auto`` or stops under
``tensorrt``. The failing runner is a stand-in at the Runner interface; the rest is the real demo
pipeline on real ONNX Runtime sessions."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pytest
from support.demo import demo_av, demo_bundle

from edge_mmer.errors import RunError
from edge_mmer.networks import Networks
from edge_mmer.runtime.pipeline import Pipeline, run_offline
from edge_mmer.runtime.runners.base import Runner, RunnerError
from edge_mmer.runtime.runners.fallback import FallbackRunner, skip_failed_decision
from edge_mmer.runtime.runners.load import load_runners
from edge_mmer.runtime.stats import RuntimeStats

pytest.importorskip("onnxruntime", reason="the fallback tests use real ONNX Runtime sessions")


class _Broken(Runner):
    """Fails like a plan whose profile refuses the shape (the RunnerError TensorRTRunner raises)."""

    backend = "tensorrt"

    def __init__(self, like: Runner, fail: bool = True, fail_first: int | None = None) -> None:
        super().__init__(like.network, like.inputs, like.outputs)
        self.like, self.fail, self.calls, self.released = like, fail, 0, 0
        self.fail_first = fail_first  # fail only the first N calls

    @property
    def description(self) -> str:
        return "tensorrt 10.3 (fp16, Orin)"

    def _activate(self) -> None:
        self.like.activate()

    def _deactivate(self) -> None:
        self.released += 1

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls += 1
        if self.fail and (self.fail_first is None or self.calls <= self.fail_first):
            shape = list(next(iter(feeds.values())).shape)
            raise RunnerError(f"{self.network}: input shape {shape} is outside the plan's optimization profile")
        return self.like.infer(feeds)


def _face_feed(runner: Runner, n: int = 3) -> dict[str, np.ndarray]:
    size = demo_bundle().config.face.crop_size
    return {runner.inputs[0].name: np.zeros((n, 3, size, size), np.float32)}


def test_auto_falls_back_to_onnxruntime_after_repeated_failures(caplog: pytest.LogCaptureFixture) -> None:
    loaded = load_runners(demo_bundle(), backend="onnxruntime", networks=["face_encoder"])
    ort = loaded.runners["face_encoder"]
    broken = _Broken(ort)
    runner = FallbackRunner(broken, lambda: ort, max_failures=3)
    runner.activate()
    feed = _face_feed(runner)
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            with pytest.raises(RunnerError, match="outside the plan's optimization profile"):
                runner.infer(feed)
        out = runner.infer(feed)  # the third failure switches, and the call is answered by ONNX Runtime
    assert out[runner.outputs[0].name].shape[0] == 3 and runner.fell_back and broken.released == 1
    assert runner.description.startswith("onnxruntime") and runner.failed_calls == 3
    said = [r.getMessage() for r in caplog.records]
    assert sum("failed on inputs face [3, 3, 96, 96]" in m for m in said) == 1  # logged once, with the shapes
    assert any("failed 3 times in a row" in m and "from now on" in m for m in said)
    runner.infer(feed)
    assert broken.calls == 3
    runner.deactivate()


def test_a_success_resets_the_count_and_tensorrt_stops_clearly() -> None:
    loaded = load_runners(demo_bundle(), backend="onnxruntime", networks=["face_encoder"])
    broken = _Broken(loaded.runners["face_encoder"])
    runner = FallbackRunner(broken, None, max_failures=2)
    runner.activate()
    feed = _face_feed(runner)
    with pytest.raises(RunnerError):
        runner.infer(feed)
    broken.fail = False
    runner.infer(feed)
    broken.fail = True
    with pytest.raises(RunnerError):
        runner.infer(feed)
    with pytest.raises(RunError, match=r"failed 2 times in a row.*--backend tensorrt never falls back"):
        runner.infer(feed)
    loaded.close()


def test_skip_failed_decision_counts_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    stats = RuntimeStats()

    def fail() -> int:
        raise RunnerError("face_encoder: input 'face' shape [2, 3, 96, 96] is outside the plan's profile")

    with caplog.at_level(logging.WARNING):
        assert skip_failed_decision(stats, fail) is None
        assert skip_failed_decision(stats, fail) is None
        assert skip_failed_decision(stats, lambda: 7) == 7
    assert stats.snapshot()["counters"]["decisions_skipped"] == 2
    assert sum("decision skipped" in r.getMessage() for r in caplog.records) == 1


def test_pipeline_survives_a_failing_face_encoder() -> None:
    """The face encoder fails its first two calls: those decisions are skipped and counted, the loop
    goes on and the later decisions make events (a RunnerError used to end the run)."""
    loaded = load_runners(demo_bundle(), backend="onnxruntime", threads=2)
    runners = dict(loaded.runners)
    runners["face_encoder"] = _Broken(runners["face_encoder"], fail_first=2)
    audio, frames = demo_av()
    seconds = 12.0  # the first utterances of the demo clip are enough
    audio, frames = audio[: int(seconds * 16000)], tuple(f for f in frames if f.t < seconds)
    with Pipeline(demo_bundle(), Networks(runners), session_id="test") as pipe:
        pipe.networks.activate()
        events = list(run_offline(pipe, audio, frames))
        counters = pipe.stats.snapshot()["counters"]
    assert counters["decisions_skipped"] == 2 and runners["face_encoder"].calls > 2  # type: ignore[attr-defined]
    assert events  # the decisions after the failures still make events
    loaded.close()
