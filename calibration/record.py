"""Calibration sets recorded on the device: ``edge-mmer calibrate record``.

The runtime loop runs as it would in service — the same sources (camera, microphone or files), the
same VAD and face tracker, the bundle's FP32 ONNX networks — with a tap on every runner
(:class:`~edge_mmer.calibration.tap.TapRunner`) that keeps a copy of each input it is fed.
Recording stops after N utterances (speech encoder runs) and M face windows (face encoder runs), or
when the source ends. Events are not emitted anywhere.

What is stored is what the networks see (log-mel matrices, normalised face crops, LSTM inputs) —
derived from the sensors, so it is written only because the user asked for this file. Torch-free.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from datetime import datetime, timezone

import numpy as np

from edge_mmer.errors import CalibrationError
from edge_mmer.runner import Runner
from edge_mmer.runtime.events import EmotionEvent
from edge_mmer.runtime.loop import RuntimeLoop, resolve_inputs
from edge_mmer.runtime.settings import RuntimeSettings
from edge_mmer.runtime.sinks.base import Sink

from .sets import CalibrationSet
from .tap import TapRunner

log = logging.getLogger(__name__)

__all__ = ["TapRunner", "record_calibration_set"]


class _NullSink(Sink):
    name = "none"

    def emit(self, event: EmotionEvent) -> None:
        del event

    def close(self) -> None:
        pass


def record_calibration_set(settings: RuntimeSettings, utterances: int = 200, faces: int = 200,
                           stop: threading.Event | None = None) -> CalibrationSet:
    """Run the loop over the configured sources and collect every network's inputs.

    Precision and backend are forced to FP32 ONNX Runtime: calibration ranges must come from the
    unquantised graph.
    """
    if utterances < 1 or faces < 0:
        raise CalibrationError(f"calibrate record: need utterances >= 1 and faces >= 0, got {utterances}, {faces}")
    settings = dataclasses.replace(settings, run=dataclasses.replace(settings.run, backend="onnxruntime",
                                                                      precision="fp32"))
    stop = stop or threading.Event()
    limits = {"speech_encoder": utterances, "speech_context": utterances, "face_encoder": faces,
              "face_context": faces, "fusion": min(utterances, faces) if faces else 0}
    taps: dict[str, TapRunner] = {}

    def check_done() -> None:
        if all(taps[n].recorded >= limits[n] for n in ("speech_encoder", "face_encoder") if n in taps):
            stop.set()

    def hook(runners: dict[str, Runner]) -> dict[str, Runner]:
        for name, runner in runners.items():
            taps[name] = TapRunner(runner, limits.get(name, utterances), check_done)
        return dict(taps)

    loop = RuntimeLoop(settings, sink=_NullSink(), runner_hook=hook)
    summary = loop.run(stop)
    inputs = resolve_inputs(settings)
    arrays: dict[str, dict[str, list[np.ndarray]]] = {name: tap.arrays() for name, tap in taps.items()}
    cs = CalibrationSet(arrays={k: v for k, v in arrays.items() if v}, provenance={
        "source": f"device:camera={inputs.camera or 'none'};mic={inputs.mic if inputs.mic is not None else 'none'}",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model_id": loop.model_id,
        "front_ends": "edge_mmer.runtime pipeline (WebRTC VAD + face tracker), FP32 ONNX Runtime",
        "utterances": taps["speech_encoder"].recorded if "speech_encoder" in taps else 0,
        "stopped_by": summary.stopped_by,
    })
    if "speech_encoder" not in cs.arrays:
        raise CalibrationError("calibrate record: no utterance was recorded (is the microphone delivering speech?)")
    log.info("recorded: %s", ", ".join(f"{n} {c}" for n, c in cs.counts().items()))
    return cs
