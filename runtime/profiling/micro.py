"""Micro mode: each network alone, warm-up then many timed inferences, to compare with ``trtexec``.

Inputs are what the pipeline feeds, shaped from the manifest and the bundle's front ends: the speech
encoder gets the log-mel of 3 s of audio (the real front end on seeded noise), the face encoder
``frames_per_utterance`` normalised crops, the context / fusion step graphs one step ``(x, h, c)``.

Each timed run is ``runner.infer(feeds)`` between two ``time.perf_counter_ns`` reads. Every runner's
``infer`` returns host arrays, so on a GPU the timer is stream-synchronised: the TensorRT runner
copies inputs in, runs ``execute_async_v3`` and copies outputs back on its stream and synchronises
before returning; ONNX Runtime's CUDA / TensorRT providers do the same inside ``run``. That is
trtexec's *Latency* (H2D + compute + D2H), not its *GPU Compute Time*. It also includes what the
Python runner does around the GPU: the feed checks, the copy into page-locked staging memory and the
output ``.copy()``; for the small LSTM step graphs that overhead (tens of microseconds) can be most of
the figure, so expect the micro time above trtexec's Latency by about that much. The printed
``trtexec`` line builds or loads the same thing: ``--noTF32`` for fp32 ONNX (the fp32 plans clear
TF32), ``--useDLACore=N`` for a DLA plan.

With several variants (``--compare``) the runs are interleaved: blocks of ``block`` runs per variant,
round-robin, the first variant rotating each round, so a change in machine load or clocks hits every
variant alike.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge_mmer.bundle import Bundle
from edge_mmer.features.audio import log_mel, pcm16_to_float
from edge_mmer.runtime.runners.base import Runner
from edge_mmer.runtime.stats import summarise_ms
from edge_mmer.vocab import ArtifactKind

log = logging.getLogger(__name__)

SPEECH_SECONDS = 3.0


def _dims(shape: Sequence[int | str], fill: Mapping[str, int]) -> tuple[int, ...]:
    out = []
    for d in shape:
        if isinstance(d, int):
            out.append(d)
        elif d in fill:
            out.append(fill[d])
        else:
            raise ValueError(f"no value for the dynamic axis {d!r} of shape {list(shape)}")
    return tuple(out)


def network_inputs(bundle: Bundle, network: str, seed: int = 0) -> dict[str, np.ndarray]:
    """Realistic inputs for one network of ``bundle`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    inputs = bundle.network(network).inputs
    cfg = bundle.config
    feeds: dict[str, np.ndarray] = {}
    if network == "speech_encoder":
        pcm = (rng.standard_normal(int(SPEECH_SECONDS * cfg.audio.sample_rate)) * 3000).clip(-32768, 32767)
        mel = log_mel(pcm16_to_float(pcm.astype(np.int16)), cfg.audio).astype(np.float32)
        spec = inputs[0]
        feeds[spec.name] = np.ascontiguousarray(mel[None])
        _dims(spec.shape, {"time": mel.shape[0]})  # checks the manifest agrees on the other axes
        return feeds
    if network == "face_encoder":
        spec = inputs[0]
        n = int(cfg.face.frames_per_utterance)
        shape = _dims(spec.shape, {"batch": n})
        feeds[spec.name] = rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)
        return feeds
    for spec in inputs:  # step graphs: x, h, c at batch 1
        shape = _dims(spec.shape, {"batch": 1})
        scale = 1.0 if spec.name == "x" else 0.5
        feeds[spec.name] = (rng.standard_normal(shape) * scale).astype(np.float32)
    return feeds


def shape_text(feeds: Mapping[str, np.ndarray]) -> str:
    return ", ".join(f"{k} {'x'.join(str(d) for d in v.shape)}" for k, v in feeds.items())


def trtexec_command(bundle: Bundle, network: str, artifact: str, feeds: Mapping[str, np.ndarray],
                    warmup_ms: int = 500, iterations: int = 1000) -> str | None:
    """The ``trtexec`` line that times the same network at the same shapes (None: no such artifact file)."""
    art = bundle.artifact(network, artifact)
    if art is None or art.kind is ArtifactKind.INT8_CPU:  # ONNX Runtime's CPU form, not a TensorRT input
        return None
    path = bundle.path / art.file
    shapes = ",".join(f"{k}:{'x'.join(str(d) for d in v.shape)}" for k, v in feeds.items())
    src = f"--loadEngine={path}" if art.kind.is_plan else f"--onnx={path}"
    extra = _TRTEXEC_PRECISION.get(art.kind, "")
    dla = art.get("dla")
    if art.kind.is_plan and isinstance(dla, Mapping) and dla.get("core") is not None:
        extra += f" --useDLACore={int(dla['core'])}"  # a DLA plan loads only on its DLA core
    return (f"/usr/src/tensorrt/bin/trtexec {src} --shapes={shapes} --warmUp={warmup_ms} "
            f"--iterations={iterations} --useSpinWait{extra}")


_TRTEXEC_PRECISION = {
    ArtifactKind.ONNX_FP32: " --noTF32",  # as the fp32 plans are built: TF32 off
    ArtifactKind.ONNX_FP16: " --fp16",
    ArtifactKind.INT8_TRT: " --int8 --fp16",
}
"""trtexec's precision flags for an ONNX artifact, matching how :mod:`edge_mmer.convert.tensorrt_build`
builds the plan of that precision (a plan already carries its own)."""


def time_calls(fn: Callable[[], Any], runs: int) -> list[float]:
    """``runs`` timed calls of ``fn`` (seconds each, ``perf_counter_ns``)."""
    out = []
    clock = time.perf_counter_ns
    for _ in range(runs):
        t0 = clock()
        fn()
        out.append((clock() - t0) * 1e-9)
    return out


def bind(runner: Runner, feeds: Mapping[str, np.ndarray]) -> Callable[[], Any]:
    """``runner.infer(feeds)`` as a no-argument call."""

    def call() -> Any:
        return runner.infer(feeds)

    return call


@dataclass
class MicroResult:
    network: str
    inputs: str
    artifact: str
    runner: str
    warmup: int
    times_s: list[float] = field(default_factory=list)
    trtexec: str | None = None

    def to_record(self) -> dict[str, Any]:
        s = summarise_ms(self.times_s)
        s.update(min=float(np.min(self.times_s)) * 1000.0 if self.times_s else 0.0,
                 std=float(np.std(self.times_s)) * 1000.0 if self.times_s else 0.0,
                 total_ms=float(np.sum(self.times_s)) * 1000.0)
        return {"network": self.network, "inputs": self.inputs, "artifact": self.artifact, "runner": self.runner,
                "warmup": self.warmup, "runs": len(self.times_s), "latency_ms": s, "trtexec": self.trtexec}


@dataclass(frozen=True)
class MicroTarget:
    """One network of one variant: its runner and what it is fed."""

    label: str
    runner: Runner
    artifact: str


def run_micro(bundle: Bundle, targets: Mapping[str, Mapping[str, MicroTarget]], networks: Sequence[str],
              warmup: int = 50, runs: int = 1000, duration_s: float | None = None, seed: int = 0,
              progress: Callable[[str], None] | None = None) -> dict[str, dict[str, MicroResult]]:
    """Time ``networks`` for every variant of ``targets`` (label -> network -> target), interleaved.

    ``duration_s`` (per network and variant) replaces ``runs`` when given (at least 10 runs each).
    Returns label -> network -> :class:`MicroResult`.
    """
    labels = list(targets)
    results: dict[str, dict[str, MicroResult]] = {label: {} for label in labels}
    for net in networks:
        feeds = network_inputs(bundle, net, seed)
        calls: dict[str, Callable[[], Any]] = {}
        for label in labels:
            t = targets[label][net]
            results[label][net] = MicroResult(net, shape_text(feeds), t.artifact, t.runner.description, warmup,
                                              trtexec=trtexec_command(bundle, net, t.artifact, feeds))
            calls[label] = bind(t.runner, feeds)
        for label in labels:  # warm-up: first inferences, lazy allocations, TensorRT EP engine builds
            time_calls(calls[label], warmup)
        if progress:
            amount = f"{duration_s:.1f} s" if duration_s else f"{runs} runs"
            progress(f"micro: {net} ({shape_text(feeds)}), {amount} per variant")
        block = max(1, min(50, runs // 50)) if duration_s is None else 10
        rnd = 0
        deadline = time.perf_counter() + duration_s * len(labels) if duration_s else None
        while True:
            order = labels[rnd % len(labels):] + labels[:rnd % len(labels)]
            for label in order:
                res = results[label][net]
                n = block if deadline else min(block, runs - len(res.times_s))
                if n > 0:
                    res.times_s.extend(time_calls(calls[label], n))
            rnd += 1
            done = [len(results[label][net].times_s) for label in labels]
            if deadline is not None:
                if time.perf_counter() >= deadline and min(done) >= 10:
                    break
            elif min(done) >= runs:
                break
    return results
