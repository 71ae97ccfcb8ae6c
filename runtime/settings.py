"""Runtime settings: one dataclass tree, loadable from TOML, overridable from the command line.

Every option of ``edge-mmer run`` lives here and can be written in the TOML file given with
``--config``; an option given on the command line wins over the file. An unknown key or a value of
the wrong type stops with an error naming the key (``config key 'decision.alpha': ...``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_mmer.configlib import from_mapping
from edge_mmer.errors import ConfigError
from edge_mmer.runtime.pipeline import PipelineSettings
from edge_mmer.runtime.smoothing import SmoothingSettings
from edge_mmer.runtime.vad import VadSettings
from edge_mmer.vocab import BACKENDS, PRECISIONS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (JetPack 6)
    import tomli as tomllib



def repo_demo_dir() -> Path:
    """Where the committed demo bundle and clip live (``demo/`` of the source checkout)."""
    env = os.environ.get("EDGE_MMER_DEMO_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / "demo"


@dataclass(frozen=True)
class RunOptions:
    bundle: str = ""  # "" = the committed demo bundle
    camera: str = ""  # index, video file, rtsp:// URL, GStreamer pipeline, "none"; "" = the demo clip (demo bundle)
    mic: str = ""  # "default", index, name substring, a .wav, "none"; "" = the video file's own audio track
    backend: str = "auto"  # auto | onnxruntime | tensorrt
    precision: str = "fp32"  # fp32 | fp16 | int8
    sink: str = "stdout"  # stdout | jsonl:PATH | mqtt://HOST:PORT/PREFIX | mqtts://...
    device_id: str = ""  # "" = this machine's host name
    realtime: bool = False  # pace file sources to real time (live devices always are)
    threads: int = 0  # ONNX Runtime intra-op threads (0 = one per core)
    stats_interval_s: float = 60.0  # publish per-stage statistics this often (0 = never)

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"config key 'run.backend': expected one of {list(BACKENDS)}, got {self.backend!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"config key 'run.precision': expected one of {list(PRECISIONS)}, got {self.precision!r}")
        if self.threads < 0:
            raise ConfigError(f"config key 'run.threads': expected >= 0, got {self.threads!r}")
        if self.stats_interval_s < 0:
            raise ConfigError(f"config key 'run.stats_interval_s': expected >= 0, got {self.stats_interval_s!r}")


@dataclass(frozen=True)
class FaceOptions:
    analysis_fps: float = 0.0  # frames analysed per second (0 = the bundle's face.analysis_fps)
    yunet_model: str = ""  # a YuNet .onnx to use instead of the Haar cascade
    face_only_interval_s: float = 5.0  # face-only decisions during silence (0 = off)
    min_face_frames: int = 2  # crops needed for a face-only decision
    video_wait_s: float = 0.5  # how long an utterance waits for late camera frames


@dataclass(frozen=True)
class DecisionOptions:
    alpha: float = 0.8
    hysteresis: float = 0.05
    emit: str = "change"  # change | every
    interval_s: float = 15.0
    context_reset_gap_s: float = 0.0  # 0 = the bundle's context.reset_gap_s


@dataclass(frozen=True)
class WatchdogOptions:
    stale_timeout_s: float = 5.0  # a live source silent this long is restarted
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0


@dataclass(frozen=True)
class QueueOptions:
    audio: int = 500  # chunks (20 ms each: 10 s)
    video: int = 30  # frames


@dataclass(frozen=True)
class MqttSection:
    username: str = ""
    password_file: str = ""
    password_env: str = "EDGE_MMER_MQTT_PASSWORD"
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    qos: int = 1
    keepalive: int = 30
    spool_path: str = ""  # "" = $XDG_STATE_HOME/edge-mmer/spool-<device>.sqlite
    spool_max_events: int = 100000
    spool_max_bytes: int = 64 * 1024 * 1024
    ha_discovery: bool = False
    ha_prefix: str = "homeassistant"
    client_id: str = ""  # "" = edge-mmer-<device id>
    close_timeout_s: float = 5.0  # how long a stop waits for the broker to acknowledge the spool


@dataclass(frozen=True)
class RuntimeSettings:
    run: RunOptions = field(default_factory=RunOptions)
    vad: VadSettings = field(default_factory=VadSettings)
    faces: FaceOptions = field(default_factory=FaceOptions)
    decision: DecisionOptions = field(default_factory=DecisionOptions)
    watchdog: WatchdogOptions = field(default_factory=WatchdogOptions)
    queues: QueueOptions = field(default_factory=QueueOptions)
    mqtt: MqttSection = field(default_factory=MqttSection)

    def validate(self) -> RuntimeSettings:
        _check_finite(self, "")  # TOML allows nan / inf, which every range check below would let through
        self.run.validate()
        self.vad.validate()
        self.smoothing.validate()
        if self.faces.analysis_fps < 0 or self.faces.analysis_fps > 60:
            raise ConfigError(f"config key 'faces.analysis_fps': expected 0..60, got {self.faces.analysis_fps!r}")
        if self.faces.min_face_frames < 1:
            raise ConfigError(f"config key 'faces.min_face_frames': expected >= 1, got {self.faces.min_face_frames!r}")
        for key in ("face_only_interval_s", "video_wait_s"):
            if getattr(self.faces, key) < 0:
                raise ConfigError(f"config key 'faces.{key}': expected >= 0, got {getattr(self.faces, key)!r}")
        if self.queues.audio < 1 or self.queues.video < 1:
            raise ConfigError(f"config key 'queues': sizes must be >= 1, got {self.queues}")
        if self.watchdog.stale_timeout_s <= 0 or not 0 < self.watchdog.backoff_initial_s <= self.watchdog.backoff_max_s:
            raise ConfigError("config key 'watchdog': expected stale_timeout_s > 0 and "
                              f"0 < backoff_initial_s <= backoff_max_s, got {self.watchdog}")
        if self.mqtt.qos not in (0, 1, 2):
            raise ConfigError(f"config key 'mqtt.qos': expected 0, 1 or 2, got {self.mqtt.qos!r}")
        return self

    @property
    def smoothing(self) -> SmoothingSettings:
        d = self.decision
        return SmoothingSettings(alpha=d.alpha, hysteresis=d.hysteresis, emit=d.emit, interval_s=d.interval_s)

    @property
    def device_id(self) -> str:
        return self.run.device_id or socket.gethostname() or "edge-mmer"

    def pipeline_settings(self, audio_min_s: float, audio_max_s: float) -> PipelineSettings:
        """The pipeline's settings; the VAD's length limits default to the bundle's audio front end."""
        vad = self.vad
        if (vad.min_utterance_s, vad.max_utterance_s) == (VadSettings.min_utterance_s, VadSettings.max_utterance_s):
            vad = dataclasses.replace(vad, min_utterance_s=audio_min_s, max_utterance_s=audio_max_s)
        f = self.faces
        return PipelineSettings(
            vad=vad, smoothing=self.smoothing, analysis_fps=f.analysis_fps or None,
            face_only_interval_s=f.face_only_interval_s, min_face_frames=f.min_face_frames,
            context_reset_gap_s=self.decision.context_reset_gap_s or None, video_wait_s=f.video_wait_s,
            yunet_model=f.yunet_model or None,
        )


def _check_finite(obj: Any, prefix: str) -> None:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            _check_finite(value, f"{prefix}{f.name}.")
        elif isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"config key '{prefix}{f.name}': expected a finite number, got {value!r}")


def settings_from_dict(data: dict[str, Any], source: str = "config") -> RuntimeSettings:
    try:
        return from_mapping(RuntimeSettings, data).validate()
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def load_settings(path: str | os.PathLike[str] | None) -> RuntimeSettings:
    """Defaults, or the TOML file at ``path`` on top of them."""
    if path is None:
        return RuntimeSettings().validate()
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--config {p}: no such TOML file")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from exc
    return settings_from_dict(data, str(p))


def with_run_overrides(settings: RuntimeSettings, **overrides: Any) -> RuntimeSettings:
    """Command-line values (those not None) replace the file's ``[run]`` values."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if not given:
        return settings
    known = {f.name for f in dataclasses.fields(RunOptions)}
    unknown = set(given) - known
    if unknown:
        raise ConfigError(f"unknown run option(s) {sorted(unknown)}")
    return dataclasses.replace(settings, run=dataclasses.replace(settings.run, **given)).validate()
