"""The five networks behind their runners, with the recurrent state held explicitly, and the one
decision path over them.

The context and fusion LSTMs are step graphs ``(x, h, c) -> (y, h_out, c_out)``: :class:`StepLSTM`
owns ``h`` and ``c`` the way silero-vad's wrapper does (``reset_states``), so the caller decides
when a conversation's context starts over.

:func:`decide_utterance` is the decision of one utterance: log-mel -> speech encoder -> speech
context step; the face crops -> face encoder (mean over the crops) -> face context step; the
chi-square masks; the fusion step on the concatenated masked features; the three LIBSVMs; the fuzzy
integral over the channels present. An utterance without a face has no face channel: the face
context and the fusion do not step (their state carries over) and the speech channel decides alone.
The runtime's pipeline, INT8 drift (ONNX Runtime runners) and ``edge-mmer evaluate`` (torch runners)
all call it, so what is measured is what the device runs. It lives here, below the runtime, because
evaluation (which sits below the runtime) calls it too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np

from edge_mmer.config import FaceConfig
from edge_mmer.decision import Decision, DecisionHead
from edge_mmer.errors import RunnerError
from edge_mmer.features.face import preprocess_faces
from edge_mmer.runner import Runner, RunnerSet
from edge_mmer.vocab import NETWORKS


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
class Networks(RunnerSet):
    """Encoders and stateful sequence models of one bundle on one backend: the five networks'
    runners, with the step graphs' states."""

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
        mean: np.ndarray = np.asarray(out[self._face_out], dtype=np.float32).mean(axis=0)
        return mean


Stage = Callable[[str], AbstractContextManager[object]]
"""Times one named step (``RuntimeStats.stage``); the default times nothing."""


def _no_stage(_name: str) -> AbstractContextManager[object]:
    return contextlib.nullcontext()


Channels = dict[str, "np.ndarray | None"]


def _face_context(networks: Networks, face: FaceConfig, crops: Sequence[np.ndarray], stage: Stage, *,
                  advance: bool) -> np.ndarray:
    """The face context features of ``crops``: the face encoder's mean embedding through the face
    context step graph, its state stepped (``advance``) or only read."""
    with stage("face_encoder"):
        emb = networks.face_embedding(preprocess_faces(list(crops), face))
    with stage("face_context"):
        return networks.face_context.step(emb) if advance else networks.face_context.peek(emb)


def utterance_channels(networks: Networks, head: DecisionHead, face: FaceConfig, mel: np.ndarray,
                       crops: Sequence[np.ndarray] | None, stage: Stage = _no_stage) -> Channels:
    """One utterance's channel inputs: masked speech and face context features and the fusion's
    features (``None`` where absent). Steps the context and fusion states. ``mel`` is the (T, n_mels)
    log-mel; ``crops`` the face crops seen during the utterance (BGR uint8), empty or None without a face."""
    with stage("speech_encoder"):
        speech = networks.speech_features(mel)
    with stage("speech_context"):
        speech_ctx = networks.speech_context.step(speech)
    face_ctx = None
    if crops is not None and len(crops):
        face_ctx = _face_context(networks, face, crops, stage, advance=True)
    with stage("mask"):
        speech_m = head.mask("speech", speech_ctx)
        face_m = None if face_ctx is None else head.mask("face", face_ctx)
    fused = None
    if face_m is not None:
        with stage("fusion"):
            fused = networks.fusion.step(np.concatenate([speech_m, face_m]).astype(np.float32))
    return {"speech": speech_m, "face": face_m, "fused": fused}


def face_only_channels(networks: Networks, head: DecisionHead, face: FaceConfig, crops: Sequence[np.ndarray],
                       stage: Stage = _no_stage) -> Channels:
    """A face-only decision's channel inputs (a face in view during silence): the face context is
    read, not advanced (:meth:`StepLSTM.peek`)."""
    face_ctx = _face_context(networks, face, crops, stage, advance=False)
    with stage("mask"):
        face_m = head.mask("face", face_ctx)
    return {"speech": None, "face": face_m, "fused": None}


def decide(head: DecisionHead, channels: Channels, stage: Stage = _no_stage) -> Decision:
    """The three LIBSVMs on the channels present, then the fuzzy integral."""
    with stage("svm"):
        probs = head.channel_probabilities(channels)
    single = {k: (None if v is None else v[0]) for k, v in probs.items()}
    with stage("fuzzy"):
        scores = head.fuse(single)
    return Decision(label_index=int(np.argmax(scores)), scores=scores, channels=single)


def decide_utterance(networks: Networks, head: DecisionHead, face: FaceConfig, mel: np.ndarray,
                     crops: Sequence[np.ndarray] | None, stage: Stage = _no_stage) -> Decision:
    """The decision of one utterance (see the module docstring); steps the recurrent states."""
    return decide(head, utterance_channels(networks, head, face, mel, crops, stage), stage)
