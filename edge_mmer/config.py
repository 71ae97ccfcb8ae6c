"""Model and training configuration: frozen dataclasses, validated, torch-free.

Two presets exist: ``demo`` (small enough to train on a laptop CPU in minutes, the committed demo
bundle) and ``paper`` (the paper's architecture: Inception-ResNet-v2 at 299x299, LSTM 256,
FC 300). A TOML file may override any field; an unknown key or a bad value raises
:class:`ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from edge_mmer.configlib import check, from_mapping, load_toml
from edge_mmer.errors import ConfigError as ConfigError  # re-exported: the settings' error
from edge_mmer.jsonvalues import thawed

LABELS: tuple[str, ...] = ("neutral", "happy", "angry", "sad", "fear", "disgust")


@dataclass(frozen=True)
class AudioConfig:
    """The speech front end: 16 kHz log-mel, exactly what the runtime computes."""

    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int = 400  # 25 ms
    hop_length: int = 160  # 10 ms
    n_mels: int = 40
    fmin: float = 20.0
    fmax: float = 8000.0
    log_floor: float = 1e-6
    min_utterance_s: float = 0.3
    max_utterance_s: float = 8.0

    def validate(self, prefix: str = "audio") -> None:
        check(self.sample_rate == 16000, f"{prefix}.sample_rate", "16000 (the VAD and encoders run at 16 kHz)",
              self.sample_rate)
        check(self.n_fft > 0 and self.n_fft & (self.n_fft - 1) == 0, f"{prefix}.n_fft", "a power of two", self.n_fft)
        check(0 < self.win_length <= self.n_fft, f"{prefix}.win_length", f"1..n_fft ({self.n_fft})", self.win_length)
        check(0 < self.hop_length <= self.win_length, f"{prefix}.hop_length", "1..win_length", self.hop_length)
        check(8 <= self.n_mels <= 256, f"{prefix}.n_mels", "8..256", self.n_mels)
        check(0 <= self.fmin < self.fmax <= self.sample_rate / 2, f"{prefix}.fmin/fmax",
              "0 <= fmin < fmax <= sample_rate/2", (self.fmin, self.fmax))
        check(self.log_floor > 0, f"{prefix}.log_floor", "> 0", self.log_floor)
        check(0 < self.min_utterance_s < self.max_utterance_s, f"{prefix}.min_utterance_s/max_utterance_s",
              "0 < min < max", (self.min_utterance_s, self.max_utterance_s))


@dataclass(frozen=True)
class FaceConfig:
    """The face front end: detector crop, resize, normalise."""

    detector: str = "haar"
    crop_size: int = 96
    margin: float = 0.15
    grayscale: bool = False
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    analysis_fps: float = 5.0
    frames_per_utterance: int = 8

    def validate(self, prefix: str = "face") -> None:
        check(self.detector in ("haar", "yunet"), f"{prefix}.detector", "'haar' or 'yunet'", self.detector)
        check(75 <= self.crop_size <= 512, f"{prefix}.crop_size", "75..512 (Inception-ResNet-v2 needs >= 75 px)",
              self.crop_size)
        check(0 <= self.margin <= 1, f"{prefix}.margin", "0..1", self.margin)
        check(len(self.mean) == 3 and len(self.std) == 3, f"{prefix}.mean/std", "three values each",
              (self.mean, self.std))
        check(all(s > 0 for s in self.std), f"{prefix}.std", "positive values", self.std)
        check(0 < self.analysis_fps <= 60, f"{prefix}.analysis_fps", "0 < fps <= 60", self.analysis_fps)
        check(1 <= self.frames_per_utterance <= 64, f"{prefix}.frames_per_utterance", "1..64",
              self.frames_per_utterance)


@dataclass(frozen=True)
class SpeechEncoderConfig:
    """CNN-LSTM speech encoder: 2 conv layers (filters x kernel), max-pool, LSTM, dense head."""

    conv_channels: int = 32
    kernel_size: int = 3
    pool: int = 2
    lstm_hidden: int = 256
    dropout: float = 0.2

    def validate(self, prefix: str = "speech_encoder") -> None:
        check(self.conv_channels > 0, f"{prefix}.conv_channels", "> 0", self.conv_channels)
        check(self.kernel_size in (3, 5, 7), f"{prefix}.kernel_size", "3, 5 or 7", self.kernel_size)
        check(self.pool >= 1, f"{prefix}.pool", ">= 1", self.pool)
        check(self.lstm_hidden > 0, f"{prefix}.lstm_hidden", "> 0", self.lstm_hidden)
        check(0 <= self.dropout < 1, f"{prefix}.dropout", "0 <= p < 1", self.dropout)


@dataclass(frozen=True)
class FaceEncoderConfig:
    """Inception-ResNet-v2. ``width`` scales every channel count (1.0 = the paper / timm network);
    ``repeats`` is the number of Inception-ResNet A, B and C blocks (timm: 10, 20, 9 + the final block)."""

    width: float = 1.0
    repeats: tuple[int, int, int] = (10, 20, 9)
    embedding_dim: int = 256
    dropout: float = 0.2

    def validate(self, prefix: str = "face_encoder") -> None:
        check(0 < self.width <= 1.0, f"{prefix}.width", "0 < width <= 1", self.width)
        check(len(self.repeats) == 3 and all(r >= 0 for r in self.repeats), f"{prefix}.repeats",
              "three non-negative counts", self.repeats)
        check(self.embedding_dim > 0, f"{prefix}.embedding_dim", "> 0", self.embedding_dim)
        check(0 <= self.dropout < 1, f"{prefix}.dropout", "0 <= p < 1", self.dropout)


@dataclass(frozen=True)
class ContextConfig:
    """Per-modality unidirectional context LSTM over a session's utterances."""

    hidden: int = 128
    dropout: float = 0.2
    reset_gap_s: float = 30.0

    def validate(self, prefix: str = "context") -> None:
        check(self.hidden > 0, f"{prefix}.hidden", "> 0", self.hidden)
        check(0 <= self.dropout < 1, f"{prefix}.dropout", "0 <= p < 1", self.dropout)
        check(self.reset_gap_s > 0, f"{prefix}.reset_gap_s", "> 0", self.reset_gap_s)


@dataclass(frozen=True)
class FusionConfig:
    """Concatenated masked features -> LSTM -> FC (paper: 300)."""

    hidden: int = 128
    fc: int = 300
    dropout: float = 0.2

    def validate(self, prefix: str = "fusion") -> None:
        check(self.hidden > 0, f"{prefix}.hidden", "> 0", self.hidden)
        check(self.fc > 0, f"{prefix}.fc", "> 0", self.fc)
        check(0 <= self.dropout < 1, f"{prefix}.dropout", "0 <= p < 1", self.dropout)


@dataclass(frozen=True)
class SelectionConfig:
    """Chi-square feature selection (paper eq. 1): keep the top ``keep_fraction`` by Chi_max."""

    keep_fraction: float = 0.5

    def validate(self, prefix: str = "selection") -> None:
        check(0 < self.keep_fraction <= 1, f"{prefix}.keep_fraction", "0 < k <= 1", self.keep_fraction)


@dataclass(frozen=True)
class SVMConfig:
    """LIBSVM C-SVC with an RBF kernel; C and gamma picked by k-fold cross-validation."""

    c_grid: tuple[float, ...] = (0.5, 2.0, 8.0, 32.0)
    gamma_grid: tuple[float, ...] = (0.002, 0.008, 0.03, 0.125)
    folds: int = 3

    def validate(self, prefix: str = "svm") -> None:
        check(len(self.c_grid) > 0 and all(c > 0 for c in self.c_grid), f"{prefix}.c_grid", "positive values",
              self.c_grid)
        check(len(self.gamma_grid) > 0 and all(g > 0 for g in self.gamma_grid), f"{prefix}.gamma_grid",
              "positive values", self.gamma_grid)
        check(2 <= self.folds <= 10, f"{prefix}.folds", "2..10", self.folds)


@dataclass(frozen=True)
class FuzzyConfig:
    """Decision fusion by a fuzzy integral with a lambda-fuzzy measure.

    ``auto`` lets training pick Sugeno or Choquet by validation accuracy (never the test split);
    the bundle records the choice.
    """

    integral: str = "auto"

    def validate(self, prefix: str = "fuzzy") -> None:
        check(self.integral in ("auto", "sugeno", "choquet"), f"{prefix}.integral", "'auto', 'sugeno' or 'choquet'",
              self.integral)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by every network."""

    seed: int = 0
    device: str = "auto"
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    speech_epochs: int = 25
    face_epochs: int = 12
    context_epochs: int = 60
    fusion_epochs: int = 60
    num_threads: int = 0

    def validate(self, prefix: str = "train") -> None:
        check(self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"), f"{prefix}.device",
              "'auto', 'cpu', 'cuda' or 'cuda:N'", self.device)
        check(self.batch_size > 0, f"{prefix}.batch_size", "> 0", self.batch_size)
        check(self.lr > 0, f"{prefix}.lr", "> 0", self.lr)
        check(self.weight_decay >= 0, f"{prefix}.weight_decay", ">= 0", self.weight_decay)
        for name in ("speech_epochs", "face_epochs", "context_epochs", "fusion_epochs"):
            value = getattr(self, name)
            check(isinstance(value, int) and value >= 1, f"{prefix}.{name}", "an integer >= 1", value)
        check(self.num_threads >= 0, f"{prefix}.num_threads", ">= 0 (0 = library default)", self.num_threads)


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines a model bundle's networks, front ends and training."""

    name: str = "demo"
    labels: tuple[str, ...] = LABELS
    audio: AudioConfig = field(default_factory=AudioConfig)
    face: FaceConfig = field(default_factory=FaceConfig)
    speech_encoder: SpeechEncoderConfig = field(default_factory=SpeechEncoderConfig)
    face_encoder: FaceEncoderConfig = field(default_factory=FaceEncoderConfig)
    context: ContextConfig = field(default_factory=ContextConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    svm: SVMConfig = field(default_factory=SVMConfig)
    fuzzy: FuzzyConfig = field(default_factory=FuzzyConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> ModelConfig:
        check(all(isinstance(label, str) and label for label in self.labels), "labels", "non-empty strings",
              self.labels)
        check(len(self.labels) >= 2 and len(set(self.labels)) == len(self.labels), "labels",
              "two or more distinct labels", self.labels)
        for f in fields(self):
            value = getattr(self, f.name)
            if is_dataclass(value):
                try:
                    value.validate(f.name)  # type: ignore[union-attr]
                except TypeError as exc:  # e.g. a string where a list of numbers belongs
                    raise ConfigError(f"config section '{f.name}': a value has the wrong type ({exc})") from exc
        return self

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = thawed(dataclasses.asdict(self))
        return out


def demo_config() -> ModelConfig:
    """The demo preset: a scaled-down Inception-ResNet-v2 at 96x96, small LSTMs; CPU-friendly."""
    return ModelConfig(
        name="demo",
        face=FaceConfig(crop_size=96, frames_per_utterance=6),
        speech_encoder=SpeechEncoderConfig(conv_channels=32, kernel_size=3, lstm_hidden=128),
        face_encoder=FaceEncoderConfig(width=0.125, repeats=(1, 1, 1), embedding_dim=128),
        context=ContextConfig(hidden=64),
        fusion=FusionConfig(hidden=64, fc=300),
    ).validate()


def paper_config() -> ModelConfig:
    """The paper's configuration: Inception-ResNet-v2 at 299x299 (timm-compatible), LSTM 256, FC 300."""
    return ModelConfig(
        name="paper",
        face=FaceConfig(crop_size=299, frames_per_utterance=8),
        speech_encoder=SpeechEncoderConfig(conv_channels=32, kernel_size=3, lstm_hidden=256),
        face_encoder=FaceEncoderConfig(width=1.0, repeats=(10, 20, 9), embedding_dim=256),
        context=ContextConfig(hidden=256),
        fusion=FusionConfig(hidden=256, fc=300),
    ).validate()


PRESETS = {"demo": demo_config, "paper": paper_config}

def merge(base: ModelConfig, overrides: dict[str, Any]) -> ModelConfig:
    """Apply a nested dict of overrides (as read from TOML) on top of ``base``; validates."""
    merged = _deep_update(base.to_dict(), overrides)
    return config_from_dict(merged)


def _deep_update(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_update(out[key], value)
        else:
            out[key] = value
    return out


def config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Build and validate a :class:`ModelConfig` from a nested dict (e.g. a manifest's ``config``)."""
    return from_mapping(ModelConfig, data).validate()


def load_config(spec: str) -> ModelConfig:
    """``demo``, ``paper`` or a path to a TOML file (which may set ``preset = "demo"`` as its base)."""
    if spec in PRESETS:
        return PRESETS[spec]()
    path = Path(spec)
    data = load_toml(path, f"config '{spec}': not a preset ({', '.join(PRESETS)}) and no such TOML file")
    preset = data.pop("preset", "demo")
    if preset not in PRESETS:
        raise ConfigError(f"{path}: config key 'preset': expected one of {', '.join(PRESETS)}, got {preset!r}")
    try:
        return merge(PRESETS[preset](), data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
