"""Shapes fitted to what a plan was built for (D1, D7), on real ONNX Runtime sessions.

A DLA face-encoder plan has a static batch; here the demo's face encoder is rewritten to a static
batch of ``frames_per_utterance`` and run through ONNX Runtime, which refuses any other batch just
as TensorRT's ``set_input_shape`` does. The speech encoder's time axis is clamped to a recorded
profile's maximum (799 frames against 798).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pytest
from support.paths import DEMO_BUNDLE

from edge_mmer.bundle import Bundle, read_bundle
from edge_mmer.runtime.runners.base import Runner, RunnerError
from edge_mmer.runtime.runners.fit import ShapeFit, fit_runner
from edge_mmer.runtime.runners.onnxruntime_runner import OnnxRuntimeRunner

pytest.importorskip("onnxruntime", reason="the fit tests use real ONNX Runtime sessions")


@pytest.fixture(scope="module")
def demo() -> Bundle:
    return read_bundle(DEMO_BUNDLE)


def _runner(bundle: Bundle, name: str, model: bytes | None = None) -> OnnxRuntimeRunner:
    net = bundle.network(name)
    art = bundle.artifact(name, "onnx-fp32")
    assert art is not None
    return OnnxRuntimeRunner(name, model or bundle.read_bytes(art.file), net.inputs, net.outputs)


def _static_batch(bundle: Bundle, batch: int) -> bytes:
    """The demo face encoder with its batch axis fixed, as a DLA plan has it."""
    onnx = pytest.importorskip("onnx", reason="rewriting the face encoder's batch axis needs onnx")
    art = bundle.artifact("face_encoder", "onnx-fp32")
    assert art is not None
    model = onnx.load_from_string(bundle.read_bytes(art.file))
    for vi in [*model.graph.input, *model.graph.output]:
        dim = vi.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_param")
        dim.dim_value = batch
    return bytes(model.SerializeToString())


def _crops(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, size, size)).astype(np.float32)


@pytest.mark.needs_convert  # onnx rewrites the batch axis
@pytest.mark.parametrize("n", [1, 2, 6, 8, 13])
def test_static_batch_face_encoder_pads_and_splits(demo: Bundle, n: int) -> None:
    """D1: 1..N crops through a batch-6 encoder equal the dynamic encoder's rows, and so its mean."""
    batch = demo.config.face.frames_per_utterance
    size = demo.config.face.crop_size
    crops = _crops(n, size, seed=n)
    out_name = demo.network("face_encoder").outputs[0].name
    in_name = demo.network("face_encoder").inputs[0].name
    with _runner(demo, "face_encoder") as dynamic, _runner(demo, "face_encoder", _static_batch(demo, batch)) as static:
        want = dynamic.infer({in_name: crops})[out_name]
        if n != batch:  # what the live loop met: the plan refuses any other batch
            with pytest.raises(RunnerError, match="face_encoder"):
                static.infer({in_name: crops})
        fitted = fit_runner(static)
        assert isinstance(fitted, ShapeFit) and fitted.shape_bounds() is not None
        got = fitted.infer({in_name: crops})[out_name]
    assert got.shape == want.shape == (n, want.shape[1])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got.mean(axis=0), want.mean(axis=0), rtol=1e-5, atol=1e-5)


@pytest.mark.needs_convert
def test_networks_face_embedding_with_a_static_plan(demo: Bundle) -> None:
    """The decision path's face embedding, through LoadedRunners.networks(), with 2 crops on a batch-6 model."""
    from edge_mmer.runtime.runners.load import LoadedRunners, load_runners

    loaded = load_runners(demo, backend="onnxruntime", activate=False)
    batch = demo.config.face.frames_per_utterance
    dynamic = loaded.runners["face_encoder"]
    runners = dict(loaded.runners)
    runners["face_encoder"] = _runner(demo, "face_encoder", _static_batch(demo, batch))
    static = LoadedRunners(runners)
    crops = _crops(2, demo.config.face.crop_size, seed=7)
    with static:
        got = static.networks().face_embedding(crops)
    with dynamic:
        out = dynamic.infer({dynamic.inputs[0].name: crops})
    np.testing.assert_allclose(got, out[dynamic.outputs[0].name].mean(axis=0), rtol=1e-5, atol=1e-5)


class _Profiled(Runner):
    """A runner with a recorded TensorRT-style profile that refuses shapes outside it (as a plan does)."""

    backend = "fake"

    def __init__(self, inner: Runner, bounds: Mapping[str, tuple[Sequence[int], Sequence[int]]]) -> None:
        super().__init__(inner.network, inner.inputs, inner.outputs)
        self.inner, self.bounds, self.seen = inner, bounds, []  # type: ignore[var-annotated]

    def shape_bounds(self) -> Mapping[str, tuple[Sequence[int], Sequence[int]]]:
        return self.bounds

    def _activate(self) -> None:
        self.inner.activate()

    def _deactivate(self) -> None:
        self.inner.deactivate()

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        for name, arr in feeds.items():
            lo, hi = self.bounds[name]
            if not all(a <= d <= b for a, d, b in zip(lo, arr.shape, hi, strict=True)):
                raise RunnerError(f"{self.network}: input '{name}' shape {list(arr.shape)} is outside the profile")
        self.seen.append({k: v.shape for k, v in feeds.items()})
        return self.inner.infer(feeds)


def test_speech_time_axis_clamped_to_the_plan_profile(demo: Bundle, caplog: pytest.LogCaptureFixture) -> None:
    """D7: a VAD cut with frame_ms=30 gives 799 frames; a plan built to 798 gets the first 798, said once."""
    speech = _runner(demo, "speech_encoder")
    name = speech.inputs[0].name
    n_mels = demo.config.audio.n_mels
    profiled = _Profiled(speech, {name: ((1, 28, n_mels), (1, 798, n_mels))})
    mel = np.random.default_rng(3).standard_normal((1, 799, n_mels)).astype(np.float32)
    with profiled:
        with pytest.raises(RunnerError, match="outside the profile"):
            profiled.infer({name: mel})
        fitted = fit_runner(profiled)
        with caplog.at_level(logging.WARNING, logger="edge_mmer.runtime.runners.fit"):
            got = fitted.infer({name: mel})
            fitted.infer({name: mel})
        want = speech.infer({name: mel[:, :798]})
        short = fitted.infer({name: mel[:, :20]})  # under the minimum: the last frame repeated
    assert profiled.seen[0][name] == (1, 798, n_mels) and profiled.seen[-1][name] == (1, 28, n_mels)
    out = speech.outputs[0].name
    np.testing.assert_allclose(got[out], want[out], rtol=1e-6, atol=1e-6)
    assert short[out].shape == got[out].shape
    said = [r.getMessage() for r in caplog.records if "at most 798" in r.getMessage()]
    assert len(said) == 1 and "799" in said[0] and "the last 1 dropped" in said[0]


def test_unbounded_axes_are_passed_through(demo: Bundle) -> None:
    """A dynamic ONNX time axis has no bound: any length goes through unchanged."""
    speech = _runner(demo, "speech_encoder")
    name, out = speech.inputs[0].name, speech.outputs[0].name
    mel = np.random.default_rng(5).standard_normal((1, 1000, demo.config.audio.n_mels)).astype(np.float32)
    fitted = ShapeFit(speech)
    with fitted:
        bounds = fitted.shape_bounds()
        assert bounds is not None and bounds[name][1][1] is None and fitted.description.startswith("onnxruntime")
        np.testing.assert_array_equal(fitted.infer({name: mel})[out], speech.infer({name: mel})[out])


def test_wrappers_pass_other_attributes_through(demo: Bundle) -> None:
    from edge_mmer.runtime.runners.fallback import FallbackRunner

    speech = _runner(demo, "speech_encoder")
    with speech:
        assert ShapeFit(speech).providers_used == speech.providers_used == ["CPUExecutionProvider"]
        assert ShapeFit(FallbackRunner(speech, None)).providers_used == ["CPUExecutionProvider"]
