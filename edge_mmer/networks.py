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

A single-modality bundle (trained with ``--modalities speech`` or ``face``) has only that modality's
encoder and context network, no fusion, and only that channel's LIBSVM: :class:`Networks` holds the
networks a bundle has (:func:`bundle_modalities` says which), and the decision path computes the
channels present. A face-only bundle has no utterance to step its face context on when there is no
microphone, so its face-only decisions advance the face context (a speech + face bundle only reads it).
The runtime's pipeline, INT8 drift (ONNX Runtime runners) and ``edge-mmer evaluate`` (torch runners)
all call it, so what is measured is what the device runs. It lives here, below the runtime, because
evaluation (which sits below the runtime) calls it too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np

from edge_mmer.config import FaceConfig
from edge_mmer.decision import Decision, DecisionHead
from edge_mmer.errors import RunnerError
from edge_mmer.features.face import preprocess_faces
from edge_mmer.runner import Runner, RunnerSet
from edge_mmer.vocab import MODALITIES, NETWORKS

__all__ = ["Networks", "StepLSTM", "bundle_modalities", "decide", "decide_utterance", "face_only_channels",
           "has_channel", "utterance_channels"]


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


def bundle_modalities(networks: Iterable[str]) -> tuple[str, ...]:
    """The modalities a set of network names serves, in :data:`~edge_mmer.vocab.MODALITIES` order: a
    modality is present when its context network is (a feature bundle has contexts but no encoders)."""
    names = set(networks)
    return tuple(m for m in MODALITIES if f"{m}_context" in names)


@dataclass
class Networks(RunnerSet):
    """Encoders and stateful sequence models of one bundle on one backend, with the step graphs'
    states: the five networks of a speech + face bundle, or the encoder and context network of a
    single-modality one (no fusion)."""

    def __post_init__(self) -> None:
        unknown = [n for n in self.runners if n not in NETWORKS]
        if unknown:
            raise RunnerError(f"unknown network(s) {unknown} (known: {', '.join(NETWORKS)})")
        self.modalities = bundle_modalities(self.runners)
        if not self.modalities:
            raise RunnerError(f"no runner for network(s) {list(NETWORKS)}: a bundle needs a speech or a face "
                              f"encoder and its context network (got {sorted(self.runners)})")
        want = [f"{m}_{kind}" for m in self.modalities for kind in ("encoder", "context")]
        if len(self.modalities) == len(MODALITIES):
            want.append("fusion")
        missing = [n for n in want if n not in self.runners]
        if missing:
            raise RunnerError(f"no runner for network(s) {missing}")
        if "fusion" in self.runners and len(self.modalities) < len(MODALITIES):
            raise RunnerError(f"a fusion network needs both modalities; the runners serve only {list(self.modalities)}")
        self.speech_context = StepLSTM(self.runners["speech_context"]) if self.has_speech else None
        self.face_context = StepLSTM(self.runners["face_context"]) if self.has_face else None
        self.fusion = StepLSTM(self.runners["fusion"]) if "fusion" in self.runners else None
        self._io = {enc: (self.runners[enc].inputs[0].name, self.runners[enc].outputs[0].name)
                    for enc in ("speech_encoder", "face_encoder") if enc in self.runners}

    @property
    def has_speech(self) -> bool:
        return "speech" in self.modalities

    @property
    def has_face(self) -> bool:
        return "face" in self.modalities

    def reset_states(self) -> None:
        for m in (self.speech_context, self.face_context, self.fusion):
            if m is not None:
                m.reset_states()

    def speech_features(self, mel: np.ndarray) -> np.ndarray:
        """(T, n_mels) log-mel -> (D,) utterance features."""
        name_in, name_out = self._io["speech_encoder"]
        out = self.runners["speech_encoder"].infer({name_in: np.ascontiguousarray(mel[None], dtype=np.float32)})
        return np.asarray(out[name_out][0], dtype=np.float32)

    def face_embedding(self, faces: np.ndarray) -> np.ndarray:
        """(N, 3, S, S) normalised crops -> (D,): the mean of the per-frame embeddings (as in training)."""
        name_in, name_out = self._io["face_encoder"]
        out = self.runners["face_encoder"].infer({name_in: np.ascontiguousarray(faces, dtype=np.float32)})
        mean: np.ndarray = np.asarray(out[name_out], dtype=np.float32).mean(axis=0)
        return mean


Stage = Callable[[str], AbstractContextManager[object]]
"""Times one named step (``RuntimeStats.stage``); the default times nothing."""


def _no_stage(_name: str) -> AbstractContextManager[object]:
    return contextlib.nullcontext()


Channels = dict[str, "np.ndarray | None"]


def has_channel(channels: Channels) -> bool:
    """Whether any channel is present (a face-only bundle has none on an utterance without a face)."""
    return any(v is not None for v in channels.values())


def _face_context(networks: Networks, face: FaceConfig, crops: Sequence[np.ndarray], stage: Stage, *,
                  advance: bool) -> np.ndarray:
    """The face context features of ``crops``: the face encoder's mean embedding through the face
    context step graph, its state stepped (``advance``) or only read."""
    context = networks.face_context
    assert context is not None  # the callers check has_face
    with stage("face_encoder"):
        emb = networks.face_embedding(preprocess_faces(list(crops), face))
    with stage("face_context"):
        return context.step(emb) if advance else context.peek(emb)


def utterance_channels(networks: Networks, head: DecisionHead, face: FaceConfig, mel: np.ndarray | None,
                       crops: Sequence[np.ndarray] | None, stage: Stage = _no_stage) -> Channels:
    """One utterance's channel inputs: masked speech and face context features and the fusion's
    features (``None`` where absent). Steps the context and fusion states. ``mel`` is the (T, n_mels)
    log-mel (unused by a face-only bundle); ``crops`` the face crops seen during the utterance (BGR
    uint8), empty or None without a face."""
    speech_m = face_m = fused = None
    if networks.speech_context is not None and mel is not None:
        with stage("speech_encoder"):
            speech = networks.speech_features(mel)
        with stage("speech_context"):
            speech_ctx = networks.speech_context.step(speech)
        with stage("mask"):
            speech_m = head.mask("speech", speech_ctx)
    if networks.has_face and crops is not None and len(crops):
        face_ctx = _face_context(networks, face, crops, stage, advance=True)
        with stage("mask"):
            face_m = head.mask("face", face_ctx)
    if networks.fusion is not None and speech_m is not None and face_m is not None:
        with stage("fusion"):
            fused = networks.fusion.step(np.concatenate([speech_m, face_m]).astype(np.float32))
    return {"speech": speech_m, "face": face_m, "fused": fused}


def face_only_channels(networks: Networks, head: DecisionHead, face: FaceConfig, crops: Sequence[np.ndarray],
                       stage: Stage = _no_stage) -> Channels:
    """A face-only decision's channel inputs (a face in view during silence, or no microphone). A
    speech + face bundle reads its face context without advancing it (:meth:`StepLSTM.peek`); a
    face-only bundle advances it (the face windows are its only steps). A speech-only bundle has no
    face channel: every channel is None."""
    if not networks.has_face:
        return {"speech": None, "face": None, "fused": None}
    face_ctx = _face_context(networks, face, crops, stage, advance=not networks.has_speech)
    with stage("mask"):
        face_m = head.mask("face", face_ctx)
    return {"speech": None, "face": face_m, "fused": None}


def decide(head: DecisionHead, channels: Channels, stage: Stage = _no_stage) -> Decision:
    """The LIBSVMs of the channels present, then the fuzzy integral (at least one channel must be
    present: :func:`has_channel`)."""
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
