"""The pipeline: the one place where chunks become decisions and events.

Per utterance (from the VAD): log-mel -> speech encoder -> speech context step; the face crops seen
during the utterance -> face encoder (mean over frames) -> face context step; chi-square masks;
fusion step on the concatenated masked features; the three LIBSVMs; the fuzzy integral over the
channels present; smoothing. A missing modality is a normal case: no face in view -> the speech
channel alone (the face context and the fusion do not step, as in training); a face in view during
a long silence -> a face-only decision every ``face_only_interval_s`` (it reads the face context
without advancing it).

Everything is driven by the stream clock, never by the wall clock, and work is released in the
order it was triggered, so feeding a clip chunk by chunk gives exactly the events of feeding all
its frames and then all its audio at once (:func:`run_offline`; a test proves it on the demo clip).
An utterance waits (at most ``video_wait_s`` of audio) until the camera has delivered the frames
up to its end, so late frames are not missed.
"""

from __future__ import annotations

import collections
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_mmer.bundle import Bundle
from edge_mmer.decision import DecisionHead
from edge_mmer.features.audio import log_mel, pcm16_to_float
from edge_mmer.networks import Networks, decide, face_only_channels, has_channel, utterance_channels
from edge_mmer.runtime.chunks import AudioChunk, Chunk, VideoFrame
from edge_mmer.runtime.events import EmotionEvent, channel_result, scores_by_label, utc_now_iso
from edge_mmer.runtime.face_tracks import FaceTracks
from edge_mmer.runtime.face_worker import FaceWorker
from edge_mmer.runtime.faces import FaceDetector, FaceTracker, make_detector
from edge_mmer.runtime.people import face_window, people_results, speaker_dict
from edge_mmer.runtime.runners.fallback import skip_failed_decision
from edge_mmer.runtime.settings import PipelineSettings
from edge_mmer.runtime.smoothing import Smoother
from edge_mmer.runtime.stats import RuntimeStats
from edge_mmer.runtime.vad import Utterance, VadSegmenter
from edge_mmer.vocab import CHANNELS, SAMPLE_RATE

__all__ = ["Pipeline", "PipelineSettings", "run_offline"]

log = logging.getLogger(__name__)


@dataclass
class _Work:
    kind: str  # "utterance" | "face_only" | "interval"
    t: float  # stream clock when triggered
    start: float
    end: float
    video_until: float
    detected: float  # perf_counter when triggered
    utterance: Utterance | None = None


class Pipeline:
    """Feed chunks, get :class:`EmotionEvent` s. ``flush()`` at the end of a stream."""

    def __init__(self, bundle: Bundle, networks: Networks, settings: PipelineSettings | None = None, *,
                 device_id: str = "edge-mmer", session_id: str | None = None, expect_video: bool = True,
                 expect_audio: bool = True, stats: RuntimeStats | None = None,
                 detector: FaceDetector | None = None, head: DecisionHead | None = None,
                 wall_clock: Callable[[], str] = utc_now_iso) -> None:
        self.settings = settings or PipelineSettings()
        self.bundle = bundle
        self.cfg = bundle.config
        self.labels = tuple(bundle.labels)
        self.networks = networks
        self.head = head or DecisionHead.from_bundle(bundle)
        self.stats = stats or RuntimeStats()
        # the bundle's values for what the settings leave out: here, the one place that knows the bundle
        s = self.settings
        faces, decision = s.faces, s.decision
        faces.validate()
        self.vad = VadSegmenter(s.vad.for_front_end(self.cfg.audio))
        analysis_fps = self.cfg.face.analysis_fps if faces.analysis_fps is None else faces.analysis_fps
        keep = (self.vad.max_utterance_s + max(faces.face_only_interval_s, 0) + self.vad.settings.trigger_delay_s
                + faces.video_wait_s + 5.0)
        det = detector or make_detector(self.cfg.face, faces.yunet_model)
        tracks = FaceTracks(det, faces.detect_max_side, faces.redetect_interval_s, faces.track_max_age_s,
                            max_faces=faces.max_faces, min_face_px=faces.min_face_px)
        self.faces = FaceTracker(self.cfg.face, det, analysis_fps, keep_s=keep, tracks=tracks)
        self.face_worker = FaceWorker(self.faces, self.stats, threaded=faces.worker)
        self.smoother = Smoother(decision)
        self.reset_gap = (self.cfg.context.reset_gap_s if decision.context_reset_gap_s is None
                          else decision.context_reset_gap_s)
        self.device_id = device_id
        self.session_id = session_id or uuid.uuid4().hex
        self.expect_video = expect_video
        self._expect_audio = expect_audio
        self.wall_clock = wall_clock
        self.seq = 0
        self._queue: collections.deque[_Work] = collections.deque()
        self._silence_since: float | None = None
        self._face_k = 0
        self._last_activity: float | None = None
        self._heartbeat_queued = False
        self.decisions = 0

    @property
    def expect_audio(self) -> bool:
        """Whether audio is coming: if not, the video clock drives the face-only decisions."""
        return self._expect_audio

    def set_expect_audio(self, expected: bool) -> None:
        """Say whether audio is coming now (a live microphone in an outage is not)."""
        self._expect_audio = expected

    @property
    def stream_clock(self) -> float | None:
        """How far the stream has got: the audio clock, else the latest video frame's time (None before any)."""
        clock = self.vad.clock
        return clock if clock is not None else self.face_worker.clock

    def set_live(self, live: bool) -> None:
        """A live camera: face analysis drops its oldest frame rather than stall the loop (files are lossless)."""
        self.face_worker.lossless = not live

    # ------------------------------------------------------------------------------------- feeding

    def feed(self, chunk: Chunk) -> list[EmotionEvent]:
        if isinstance(chunk, AudioChunk):
            return self._feed_audio(chunk)
        if isinstance(chunk, VideoFrame):
            return self._feed_video(chunk)
        raise TypeError(f"pipeline: expected an AudioChunk or a VideoFrame, got {type(chunk).__name__}")

    def feed_all(self, chunks: Iterable[Chunk]) -> list[EmotionEvent]:
        out: list[EmotionEvent] = []
        for c in chunks:
            out.extend(self.feed(c))
        return out

    def _feed_audio(self, chunk: AudioChunk) -> list[EmotionEvent]:
        out: list[EmotionEvent] = []
        vad_s = 0.0
        it = self.vad.iter_frames(chunk)
        while True:
            ts = time.perf_counter()
            step = next(it, None)
            vad_s += time.perf_counter() - ts
            if step is None:
                break
            clock, utt = step
            if self._silence_since is None:
                self._silence_since = clock
            if utt is not None:
                self._queue.append(_Work("utterance", clock, utt.start, utt.end, utt.end, time.perf_counter(), utt))
                self._silence_since, self._face_k = utt.end, 0
            self._advance(clock)
            out.extend(self._release(clock))
        self.stats.record("vad", vad_s)
        self.stats.count("audio_chunks")
        return out

    def _feed_video(self, frame: VideoFrame) -> list[EmotionEvent]:
        self.face_worker.submit(frame)  # analysed beside the decision path (face_worker.py)
        self.stats.count("frames")
        if self._expect_audio:
            clock = self.vad.clock
            return self._release(clock) if clock is not None else []
        # no microphone: the video clock drives face-only decisions
        if self._silence_since is None:
            self._silence_since = frame.t
        self._advance(frame.t)
        return self._release(frame.t)

    def flush(self) -> list[EmotionEvent]:
        """End of stream: close an utterance in progress and release everything waiting."""
        clock = self.vad.clock
        self.face_worker.sync()
        for utt in self.vad.flush():
            self._queue.append(_Work("utterance", utt.end, utt.start, utt.end, utt.end, time.perf_counter(), utt))
        return self._release(clock if clock is not None else 0.0, force=True)

    def reset_states(self) -> None:
        """Start a new conversation: recurrent states, smoothing and pending work are cleared."""
        self.networks.reset_states()
        self.smoother.reset()
        self._queue.clear()
        self._heartbeat_queued = False
        self._last_activity = None

    def close(self) -> None:
        """Stop the face worker and release the networks (their runners are deactivated)."""
        self.face_worker.close()
        self.networks.deactivate()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------ scheduling

    def _advance(self, clock: float) -> None:
        """Clock-driven work: face-only windows during silence, heartbeats."""
        iv = self.settings.faces.face_only_interval_s
        if iv > 0 and self._silence_since is not None:
            delay = self.vad.settings.trigger_delay_s if self._expect_audio else 0.0
            while True:
                w_end = self._silence_since + (self._face_k + 1) * iv
                if clock < w_end + delay:
                    break
                start = self.vad.active_start
                if start is not None and start < w_end:
                    break  # speech overlaps this window: wait for the utterance to end
                self._queue.append(_Work("face_only", clock, w_end - iv, w_end, w_end, time.perf_counter()))
                self._face_k += 1
        if not self._heartbeat_queued and self.smoother.heartbeat_due(clock):
            self._queue.append(_Work("interval", clock, clock, clock, clock, time.perf_counter()))
            self._heartbeat_queued = True
        self.faces.prune(clock - self.faces.keep_s)

    def _ready(self, work: _Work, clock: float) -> bool:
        if not self.expect_video or work.kind == "interval":
            return True
        last = self.face_worker.clock
        return ((last is not None and last >= work.video_until)
                or clock >= work.video_until + self.settings.faces.video_wait_s)

    def _release(self, clock: float, force: bool = False) -> list[EmotionEvent]:
        out: list[EmotionEvent] = []
        while self._queue and (force or self._ready(self._queue[0], clock)):
            work = self._queue.popleft()
            ev = self._process(work)
            if ev is not None:
                out.append(ev)
        return out

    # ------------------------------------------------------------------------------- decisions

    def _expire(self, now: float) -> None:
        if self._last_activity is not None and now - self._last_activity > self.reset_gap:
            log.debug("no activity for %.1f s: context and smoothing reset", now - self._last_activity)
            self.networks.reset_states()
            self.smoother.reset()
            self._last_activity = None
            self.stats.count("context_resets")

    def _process(self, work: _Work) -> EmotionEvent | None:
        if work.kind == "interval":
            self._heartbeat_queued = False
            self._expire(work.t)
            if not self.smoother.heartbeat_due(work.t):
                return None
            return self._event(work, None, {c: None for c in CHANNELS})
        self._expire(work.start)
        with self.stats.stage("face_wait"):
            self.face_worker.sync(work.video_until)  # its frames analysed: the same crops as inline analysis
        with self.stats.stage("speaker"):
            win = face_window(self.faces, self.settings.faces, work.start, work.end,
                              None if work.utterance is None else work.utterance.samples)
        crops = win.crops
        stage = self.stats.stage
        if work.kind == "utterance":
            assert work.utterance is not None
            mel = None
            if self.networks.has_speech:
                with stage("log_mel"):
                    mel = log_mel(pcm16_to_float(work.utterance.samples), self.cfg.audio)
            compute = lambda: utterance_channels(self.networks, self.head, self.cfg.face, mel, crops, stage)  # noqa: E731
        else:
            if len(crops) < self.settings.faces.min_face_frames:
                return None
            compute = lambda: face_only_channels(self.networks, self.head, self.cfg.face, crops, stage)  # noqa: E731
        channels = skip_failed_decision(self.stats, compute)  # a runner failure skips this decision only
        if channels is None or not has_channel(channels):  # failed, or a single-modality bundle without its modality
            return None
        with stage("decision"):
            decision = decide(self.head, channels, stage)
        self._last_activity = work.end
        self.decisions += 1
        if not self.smoother.update(decision.scores):
            return None
        people = people_results(win, self.faces, work.start, work.end, self.networks, self.head, self.cfg.face,
                                self.labels, stage)
        who = speaker_dict(win.speaker) if crops else None
        return self._event(work, decision.scores, decision.channels, who, people)

    def _event(self, work: _Work, scores: np.ndarray | None, probs: dict[str, np.ndarray | None],
               speaker: dict[str, Any] | None = None, people: list[dict[str, Any]] | None = None) -> EmotionEvent:
        sm = self.smoother
        assert sm.scores is not None and sm.label is not None
        self.seq += 1
        sm.mark_emitted(work.t)
        state = scores_by_label(self.labels, sm.scores)
        label = self.labels[sm.label]
        latency = (time.perf_counter() - work.detected) * 1000.0 if work.kind != "interval" else None
        if latency is not None:
            self.stats.record("decision_latency", latency / 1000.0)
        ev = EmotionEvent(
            device_id=self.device_id, session_id=self.session_id, seq=self.seq, wall_time=self.wall_clock(),
            monotonic_s=work.t, trigger=work.kind,
            utterance=None if work.kind == "interval" else (work.start, work.end),
            label=label, confidence=state[label], scores=state,
            channels={c: (None if p is None else channel_result(self.labels, p)) for c, p in probs.items()},
            decision_latency_ms=latency, model_id=self.bundle.model_id, synthetic_model=self.bundle.synthetic,
            extra={"decision_scores": None if scores is None else scores.tolist()}, speaker=speaker, people=people,
        )
        self.stats.count("events")
        return ev


def run_offline(pipeline: Pipeline, audio: np.ndarray | None, frames: Iterable[VideoFrame],
                audio_start: float = 0.0) -> list[EmotionEvent]:
    """A whole clip at once: every frame, then all the audio in one chunk, then flush.

    The reference the streaming path is tested against (and what offline evaluation of a clip uses).
    """
    events: list[EmotionEvent] = []
    for frame in frames:
        events.extend(pipeline.feed(frame))
    if audio is not None and len(audio):
        events.extend(pipeline.feed(AudioChunk(audio_start, np.asarray(audio, dtype=np.int16), SAMPLE_RATE)))
    events.extend(pipeline.flush())
    return events
