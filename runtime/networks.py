"""The five networks behind their runners, with the recurrent state held explicitly.

The context and fusion LSTMs are step graphs ``(x, h, c) -> (y, h_out, c_out)``: :class:`StepLSTM`
owns ``h`` and ``c`` the way silero-vad's wrapper does (``reset_states``), so the runtime decides
when a conversation's context starts over.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from edge_mmer.runtime.runners.base import Runner, RunnerError

NETWORKS = ("speech_encoder", "face_encoder", "speech_context", "face_context", "fusion")


class StepLSTM:
    """A step graph and its state. ``step`` advances the state; ``peek`` does not."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        names = [s.name for s in runner.inputs]
        if sorted(names) != ["c", "h", "x"]:
            raise RunnerError(f"{runner.network}: a step graph needs inputs x, h, c; the manifest has {names}")
        spec = {s.name: s for s in runner.inputs}
        self.hidden = int(spec["h"].shape[-1])
        self.in_dim = int(spec["x"].shape[-1])
        outs = [s.name for s in runner.outputs]
        if "h_out" not in outs or "c_out" not in outs:
            raise RunnerError(f"{runner.network}: a step graph needs outputs h_out, c_out; the manifest has {outs}")
        self.y_name = next(n for n in outs if n not in ("h_out", "c_out"))
        self.reset_states()

    def reset_states(self) -> None:
        self.h = np.zeros((1, self.hidden), dtype=np.float32)
        self.c = np.zeros((1, self.hidden), dtype=np.float32)
        self.steps = 0

    def _run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        feed = {"x": np.ascontiguousarray(x, dtype=np.float32).reshape(1, self.in_dim), "h": self.h, "c": self.c}
        out = self.runner.infer(feed)
        return out[self.y_name][0], out["h_out"], out["c_out"]

    def step(self, x: np.ndarray) -> np.ndarray:
        y, self.h, self.c = self._run(x)
        self.steps += 1
        return y

    def peek(self, x: np.ndarray) -> np.ndarray:
        """The output for ``x`` from the current state, leaving the state as it was."""
        return self._run(x)[0]


@dataclass
class Networks:
    """Encoders and stateful sequence models of one bundle on one backend."""

    runners: dict[str, Runner]

    def __post_init__(self) -> None:
        missing = [n for n in NETWORKS if n not in self.runners]
        if missing:
            raise RunnerError(f"no runner for network(s) {missing}")
        self.speech_context = StepLSTM(self.runners["speech_context"])
        self.face_context = StepLSTM(self.runners["face_context"])
        self.fusion = StepLSTM(self.runners["fusion"])
        self._speech_in = self.runners["speech_encoder"].inputs[0].name
        self._speech_out = self.runners["speech_encoder"].outputs[0].name
        self._face_in = self.runners["face_encoder"].inputs[0].name
        self._face_out = self.runners["face_encoder"].outputs[0].name

    def activate(self) -> None:
        for r in self.runners.values():
            r.activate()

    def deactivate(self) -> None:
        for r in self.runners.values():
            r.deactivate()

    def reset_states(self) -> None:
        for m in (self.speech_context, self.face_context, self.fusion):
            m.reset_states()

    def speech_features(self, mel: np.ndarray) -> np.ndarray:
        """(T, n_mels) log-mel -> (D,) utterance features."""
        out = self.runners["speech_encoder"].infer({self._speech_in: np.ascontiguousarray(mel[None], dtype=np.float32)})
        return np.asarray(out[self._speech_out][0], dtype=np.float32)

    def face_embedding(self, faces: np.ndarray) -> np.ndarray:
        """(N, 3, S, S) normalised crops -> (D,): the mean of the per-frame embeddings (as in training)."""
        out = self.runners["face_encoder"].infer({self._face_in: np.ascontiguousarray(faces, dtype=np.float32)})
        return np.asarray(out[self._face_out], dtype=np.float32).mean(axis=0)

    def descriptions(self) -> Mapping[str, str]:
        return {n: r.description for n, r in self.runners.items()}
