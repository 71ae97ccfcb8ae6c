"""Runtime settings: every section declared once, loadable from TOML, overridable from the command line.

Each TOML section is one frozen dataclass here, and the component it configures takes that class
directly: ``[run]`` :class:`RunSettings` (the loop), ``[vad]`` :class:`VadSettings` (the segmenter),
``[faces]`` :class:`FaceSettings` (the face tracker), ``[decision]`` :class:`DecisionSettings`
(smoothing and the context reset), ``[watchdog]`` :class:`WatchdogSettings`, ``[queues]``
:class:`QueueSettings` and ``[mqtt]`` :class:`MqttOptions` (the MQTT sink). An option given on the
command line wins over the file. An unknown key or a value of the wrong type stops with an error
naming the key (``config key 'decision.alpha': ...``); each section's ``validate`` checks its ranges.

"Not given" means absent: an option whose default is the bundle's value is ``None`` until the
pipeline, the one place that knows the bundle, fills it in (:meth:`VadSettings.for_front_end`).

This module is a leaf: it imports no other runtime module, so reading a settings file never loads
the pipeline (or OpenCV, or ONNX Runtime).
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_mmer.config import AudioConfig
from edge_mmer.configlib import SETTING, check, check_finite, check_range, from_mapping, load_toml
from edge_mmer.errors import ConfigError
from edge_mmer.vocab import BACKENDS, PRECISIONS, SAMPLE_RATE

__all__ = [
    "EMIT_POLICIES",
    "DecisionSettings",
    "FaceSettings",
    "MqttOptions",
    "PipelineSettings",
    "QueueSettings",
    "RunSettings",
    "RuntimeSettings",
    "VadSettings",
    "WatchdogSettings",
    "load_settings",
    "repo_demo_dir",
    "settings_from_dict",
    "with_run_overrides",
]

EMIT_POLICIES = ("change", "every")
DEFAULT_MQTT_PREFIX = "edge-mmer"
DEFAULT_PASSWORD_ENV = "EDGE_MMER_MQTT_PASSWORD"
DEFAULT_DISCOVERY_PREFIX = "homeassistant"
DEFAULT_SPOOL_MAX_EVENTS = 100_000
DEFAULT_SPOOL_MAX_BYTES = 64 * 1024 * 1024
DEVICE_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""A device id: one MQTT topic level, a file name and a Home Assistant id at once, so a safe set only."""
MQTT_MAX_STRING_BYTES = 65535  # an MQTT UTF-8 string carries a 16-bit length
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NOT_A_SETTING = {SETTING: False}  # set by the program (from [run] or the command line), never by the file


def check_device_id_value(key: str, device_id: str) -> None:
    """The device id's safe character set (letters, digits, ``. _ -``; 1..64; not starting with a
    separator): no topic wildcard, no control character (a newline would forge log lines and makes
    brokers drop the CONNECT), no bytes that are not UTF-8, no two ids that sanitize alike."""
    check(DEVICE_ID_PATTERN.fullmatch(device_id) is not None, key,
          "1..64 of A-Z a-z 0-9 . _ - starting with a letter or digit (one topic level, a file name)",
          device_id[:100])  # repr'd by check(): a newline or a surrogate shows escaped


def check_mqtt_string(key: str, value: str | None, *, topic: bool = False) -> None:
    """An MQTT UTF-8 string: encodable, at most 65535 bytes, no control characters; a topic also
    without the wildcards ``+`` ``#``, not empty and not starting or ending with ``/``."""
    if value is None:
        return
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        size = -1
    check(0 <= size <= MQTT_MAX_STRING_BYTES, key, "valid UTF-8 of at most 65535 bytes",
          value[:80] + ("..." if len(value) > 80 else ""))
    check(not _CONTROL.search(value), key, "no control characters", value[:80])
    if topic:
        check(bool(value) and not any(c in value for c in "+#") and not value.startswith("/")
              and not value.endswith("/"), key, "a topic prefix without '+', '#' or a leading/trailing '/'", value)


def repo_demo_dir() -> Path:
    """Where the committed demo bundle and clip live (``demo/`` of the source checkout)."""
    env = os.environ.get("EDGE_MMER_DEMO_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / "demo"


@dataclass(frozen=True)
class RunSettings:
    """``[run]``: what runs on what, and where the events go."""

    bundle: str | None = None  # None: the committed demo bundle
    # index, video file, rtsp:// URL, GStreamer pipeline, "none"; None: the demo clip (demo bundle)
    camera: str | None = None
    mic: str | None = None  # "default", index, name substring, a .wav, "none"; None: the video file's own audio track
    backend: str = "auto"  # auto | onnxruntime | tensorrt
    precision: str = "fp32"  # fp32 | fp16 | int8
    sink: str = "stdout"  # stdout | jsonl:PATH | mqtt://HOST:PORT/PREFIX | mqtts://...
    device_id: str | None = None  # None: this machine's host name
    realtime: bool = False  # pace file sources to real time (live devices always are)
    threads: int = 0  # ONNX Runtime intra-op threads (0 = one per core)
    stats_interval_s: float = 60.0  # publish per-stage statistics this often (0 = never)

    def validate(self, prefix: str = "run") -> None:
        check(self.backend in BACKENDS, f"{prefix}.backend", f"one of {list(BACKENDS)}", self.backend)
        check(self.precision in PRECISIONS, f"{prefix}.precision", f"one of {list(PRECISIONS)}", self.precision)
        check_range(self.threads, f"{prefix}.threads", 1, 256, zero_ok=True)
        check_range(self.stats_interval_s, f"{prefix}.stats_interval_s", 0.1, 86400, zero_ok=True, unit="s")
        if self.device_id:
            check_device_id_value(f"{prefix}.device_id", self.device_id)


@dataclass(frozen=True)
class VadSettings:
    """``[vad]``: the speech segmenter (:mod:`edge_mmer.runtime.vad` says what each rule does)."""

    aggressiveness: int = 2  # webrtcvad mode 0 (least) .. 3 (most aggressive filtering of non-speech)
    frame_ms: int = 20  # 10, 20 or 30 (what webrtcvad accepts)
    start_window: int = 10  # frames looked at to decide a start
    start_frames: int = 6  # voiced frames among them that start an utterance
    hangover_ms: int = 300  # unvoiced time that ends an utterance
    pre_roll_ms: int = 200  # audio kept before the start decision
    min_utterance_s: float | None = None  # None: the bundle's audio.min_utterance_s
    max_utterance_s: float | None = None  # None: the bundle's audio.max_utterance_s

    def validate(self, prefix: str = "vad") -> None:
        check(self.aggressiveness in (0, 1, 2, 3), f"{prefix}.aggressiveness", "0, 1, 2 or 3", self.aggressiveness)
        check(self.frame_ms in (10, 20, 30), f"{prefix}.frame_ms", "10, 20 or 30", self.frame_ms)
        check(1 <= self.start_frames <= self.start_window <= 100, f"{prefix}.start_frames/start_window",
              "1 <= start_frames <= start_window <= 100", (self.start_frames, self.start_window))
        check(0 <= self.hangover_ms <= 5000, f"{prefix}.hangover_ms", "0..5000", self.hangover_ms)
        check(0 <= self.pre_roll_ms <= 2000, f"{prefix}.pre_roll_ms", "0..2000", self.pre_roll_ms)
        lo, hi = self.min_utterance_s, self.max_utterance_s
        if lo is not None and hi is not None:
            check(0 < lo < hi, f"{prefix}.min_utterance_s/max_utterance_s", "0 < min < max", (lo, hi))
        else:  # the pair is checked again once the bundle has filled in the other one
            for key, value in (("min_utterance_s", lo), ("max_utterance_s", hi)):
                check(value is None or value > 0, f"{prefix}.{key}", "> 0", value)

    def for_front_end(self, audio: AudioConfig) -> VadSettings:
        """These settings with the length limits not given taken from ``audio`` (a bundle's front end)."""
        return dataclasses.replace(
            self,
            min_utterance_s=audio.min_utterance_s if self.min_utterance_s is None else self.min_utterance_s,
            max_utterance_s=audio.max_utterance_s if self.max_utterance_s is None else self.max_utterance_s)

    @property
    def frame_samples(self) -> int:
        return SAMPLE_RATE * self.frame_ms // 1000

    @property
    def trigger_delay_s(self) -> float:
        """The longest time between an utterance's (pre-rolled) start and the moment it is detected."""
        return (self.pre_roll_ms + self.start_window * self.frame_ms) / 1000.0


@dataclass(frozen=True)
class FaceSettings:
    """``[faces]``: the face tracker and the face-only decisions."""

    analysis_fps: float | None = None  # frames analysed per second; None: the bundle's face.analysis_fps
    yunet_model: Path | None = None  # a YuNet .onnx to use instead of the Haar cascade
    face_only_interval_s: float = 5.0  # face-only decisions during silence (0 = off)
    min_face_frames: int = 2  # crops needed for a face-only decision
    video_wait_s: float = 0.5  # how long an utterance waits for late camera frames
    detect_max_side: int = 640  # full-frame detection runs on a copy downscaled to this longer side
    min_face_px: int = 80  # the smallest face (height in camera pixels) a full detection looks for
    redetect_interval_s: float = 2.0  # full detection once per interval of the stream clock; tracks between
    track_max_age_s: float = 2.5  # a track lives this long without a detection
    max_faces: int = 8  # faces followed per frame (the largest)
    speaker_min_score: float = 0.2  # audio-visual synchrony needed to pick a speaker; else the largest face
    speaker_margin: float = 0.05  # ... and its lead over the runner-up
    people: bool = False  # events also carry the face result of every other person in view
    worker: bool = True  # face analysis in its own thread (lossless for files, drop-oldest for live sources)

    def validate(self, prefix: str = "faces") -> None:
        fps = self.analysis_fps
        check(fps is None or 0 < fps <= 60, f"{prefix}.analysis_fps", "0 < fps <= 60", fps)
        check_range(self.min_face_frames, f"{prefix}.min_face_frames", 1, 1000)
        check_range(self.face_only_interval_s, f"{prefix}.face_only_interval_s", 0.2, 3600, zero_ok=True, unit="s")
        check_range(self.video_wait_s, f"{prefix}.video_wait_s", 0, 10, unit="s")
        check_range(self.redetect_interval_s, f"{prefix}.redetect_interval_s", 0, 60, unit="s")
        check_range(self.detect_max_side, f"{prefix}.detect_max_side", 80, 4096)
        check_range(self.min_face_px, f"{prefix}.min_face_px", 24, 2048)
        check_range(self.track_max_age_s, f"{prefix}.track_max_age_s", 0.05, 60, unit="s")
        check_range(self.max_faces, f"{prefix}.max_faces", 1, 64)
        check_range(self.speaker_min_score, f"{prefix}.speaker_min_score", -1, 1)
        check_range(self.speaker_margin, f"{prefix}.speaker_margin", 0, 2)


@dataclass(frozen=True)
class DecisionSettings:
    """``[decision]``: which decisions become events (:mod:`edge_mmer.runtime.smoothing`), and when the
    conversation's context starts over."""

    alpha: float = 0.8  # weight of the newest decision (1 = no smoothing)
    hysteresis: float = 0.05  # lead a new label needs over the announced one
    emit: str = "change"  # "change" or "every"
    interval_s: float = 15.0  # re-announce the current state this often (0 = never)
    context_reset_gap_s: float | None = None  # None: the bundle's context.reset_gap_s

    def validate(self, prefix: str = "decision") -> None:
        check(0 < self.alpha <= 1, f"{prefix}.alpha", "0 < alpha <= 1", self.alpha)
        check(0 <= self.hysteresis < 1, f"{prefix}.hysteresis", "0 <= h < 1", self.hysteresis)
        check(self.emit in EMIT_POLICIES, f"{prefix}.emit", f"one of {list(EMIT_POLICIES)}", self.emit)
        check_range(self.interval_s, f"{prefix}.interval_s", 0.1, 86400, zero_ok=True, unit="s")
        gap = self.context_reset_gap_s
        check(gap is None or 0 < gap <= 86400, f"{prefix}.context_reset_gap_s", "0 < gap <= 86400 s", gap)


@dataclass(frozen=True)
class WatchdogSettings:
    """``[watchdog]``: restarts of a failed or silent live source."""

    stale_timeout_s: float = 5.0  # a live source silent this long is restarted
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0

    def validate(self, prefix: str = "watchdog") -> None:
        if self.stale_timeout_s <= 0 or not 0 < self.backoff_initial_s <= self.backoff_max_s:
            raise ConfigError(f"config key '{prefix}': expected stale_timeout_s > 0 and "
                              f"0 < backoff_initial_s <= backoff_max_s, got {self}")
        check_range(self.stale_timeout_s, f"{prefix}.stale_timeout_s", 0.5, 3600, unit="s")
        check_range(self.backoff_initial_s, f"{prefix}.backoff_initial_s", 0.01, 600, unit="s")
        check_range(self.backoff_max_s, f"{prefix}.backoff_max_s", 0.01, 3600, unit="s")


@dataclass(frozen=True)
class QueueSettings:
    """``[queues]``: the bounded capture queues (a full one drops its oldest chunk)."""

    audio: int = 500  # chunks (20 ms each: 10 s)
    video: int = 30  # frames

    def validate(self, prefix: str = "queues") -> None:
        if self.audio < 1 or self.video < 1:
            raise ConfigError(f"config key '{prefix}': sizes must be >= 1, got {self}")
        check_range(self.audio, f"{prefix}.audio", 1, 100_000)
        check_range(self.video, f"{prefix}.video", 1, 10_000)


@dataclass(frozen=True)
class MqttOptions:
    """``[mqtt]``, and everything else the MQTT sink needs (:mod:`edge_mmer.runtime.sinks.mqtt`).

    No password field: ``password_file`` or the environment variable ``password_env``. The broker
    URL and the device id come from ``[run]`` (``sink``, ``device_id``) and the reconnect and
    in-flight limits from the program; a settings file cannot set them.
    """

    username: str | None = None
    password_file: Path | None = None
    password_env: str = DEFAULT_PASSWORD_ENV
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    qos: int = 1
    keepalive: int = 30
    spool_path: Path | None = None  # None: $XDG_STATE_HOME/edge-mmer/spool-<device>.sqlite
    spool_max_events: int = DEFAULT_SPOOL_MAX_EVENTS
    spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES
    ha_discovery: bool = False
    ha_prefix: str = DEFAULT_DISCOVERY_PREFIX
    client_id: str | None = None  # None: edge-mmer-<device id>
    close_timeout_s: float = 5.0  # how long a stop waits for the broker to acknowledge the spool
    device_id: str = field(default="", metadata=_NOT_A_SETTING)
    url: str = field(default=f"mqtt://localhost:1883/{DEFAULT_MQTT_PREFIX}", metadata=_NOT_A_SETTING)
    reconnect_min_s: float = field(default=1.0, metadata=_NOT_A_SETTING)
    reconnect_max_s: float = field(default=30.0, metadata=_NOT_A_SETTING)
    inflight: int = field(default=32, metadata=_NOT_A_SETTING)  # events handed to paho and not yet acknowledged

    def validate(self, prefix: str = "mqtt") -> None:
        check(self.qos in (0, 1, 2), f"{prefix}.qos", "0, 1 or 2", self.qos)
        check(5 <= self.keepalive <= 65535, f"{prefix}.keepalive", "5..65535 s (MQTT's 16-bit field)", self.keepalive)
        check_range(self.spool_max_events, f"{prefix}.spool_max_events", 1, 100_000_000)
        check_range(self.spool_max_bytes, f"{prefix}.spool_max_bytes", 1, 1 << 40, unit="bytes")
        check_range(self.close_timeout_s, f"{prefix}.close_timeout_s", 0, 600, unit="s")
        check_mqtt_string(f"{prefix}.username", self.username)
        check_mqtt_string(f"{prefix}.client_id", self.client_id)
        check(self.client_id is None or bool(self.client_id), f"{prefix}.client_id", "a non-empty id", self.client_id)
        check_mqtt_string(f"{prefix}.ha_prefix", self.ha_prefix, topic=True)
        check(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", self.password_env) is not None,
              f"{prefix}.password_env", "an environment variable name", self.password_env)
        if self.device_id:
            check_device_id_value(f"{prefix}.device_id", self.device_id)
        check(self.key_file is None or self.cert_file is not None, f"{prefix}.key_file",
              "cert_file as well (a client key needs its certificate)", str(self.key_file))
        check_range(self.inflight, f"{prefix}.inflight", 1, 65535)
        check(0 < self.reconnect_min_s <= self.reconnect_max_s <= 3600, f"{prefix}.reconnect_min_s/reconnect_max_s",
              "0 < min <= max <= 3600 s", (self.reconnect_min_s, self.reconnect_max_s))


@dataclass(frozen=True)
class PipelineSettings:
    """The three sections the pipeline reads (``[vad]``, ``[faces]``, ``[decision]``), together."""

    vad: VadSettings = field(default_factory=VadSettings)
    faces: FaceSettings = field(default_factory=FaceSettings)
    decision: DecisionSettings = field(default_factory=DecisionSettings)


@dataclass(frozen=True)
class RuntimeSettings:
    """Every section of ``edge-mmer run``'s settings file."""

    run: RunSettings = field(default_factory=RunSettings)
    vad: VadSettings = field(default_factory=VadSettings)
    faces: FaceSettings = field(default_factory=FaceSettings)
    decision: DecisionSettings = field(default_factory=DecisionSettings)
    watchdog: WatchdogSettings = field(default_factory=WatchdogSettings)
    queues: QueueSettings = field(default_factory=QueueSettings)
    mqtt: MqttOptions = field(default_factory=MqttOptions)

    def validate(self) -> RuntimeSettings:
        check_finite(self)  # TOML allows nan / inf, which every range check would let through
        self.run.validate()
        self.vad.validate()
        self.decision.validate()
        self.faces.validate()
        self.queues.validate()
        self.watchdog.validate()
        self.mqtt.validate()
        return self

    @property
    def pipeline(self) -> PipelineSettings:
        return PipelineSettings(vad=self.vad, faces=self.faces, decision=self.decision)

    @property
    def device_id(self) -> str:
        return self.run.device_id or socket.gethostname() or "edge-mmer"


# the section names these classes had before each section was declared once
RunOptions = RunSettings
WatchdogOptions = WatchdogSettings
QueueOptions = QueueSettings


def settings_from_dict(data: dict[str, Any], source: str = "config") -> RuntimeSettings:
    """Settings from a parsed TOML document; errors start with ``source`` (the file)."""
    try:
        return from_mapping(RuntimeSettings, data).validate()
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def load_settings(path: str | os.PathLike[str] | None) -> RuntimeSettings:
    """Defaults, or the TOML file at ``path`` on top of them."""
    if path is None:
        return RuntimeSettings().validate()
    p = Path(path)
    return settings_from_dict(load_toml(p, f"--config {p}: no such TOML file"), str(p))


def with_run_overrides(settings: RuntimeSettings, **overrides: Any) -> RuntimeSettings:
    """Command-line values (those not None) replace the file's ``[run]`` values."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if not given:
        return settings
    known = {f.name for f in dataclasses.fields(RunSettings)}
    unknown = set(given) - known
    if unknown:
        raise ConfigError(f"unknown run option(s) {sorted(unknown)}")
    return dataclasses.replace(settings, run=dataclasses.replace(settings.run, **given)).validate()
