"""Emotional speech synthesis from the ``espeak-ng`` binary.

Each speaker is an espeak-ng voice + variant (``en+m3``, ``en-us+f2`` ...) with
a base pitch and speaking rate.  Each emotion class changes the prosody
(pitch, pitch range, rate, loudness) and applies class-specific signal
processing (soft clipping and high-frequency emphasis for ``angry``, tremolo and
breathiness for ``fear``, a darker low-passed voice for ``sad`` ...), with random
per-utterance variation.  ``disgust`` is deliberately close to ``neutral`` so
that the voice alone confuses the two.

Audio is returned as 16 kHz mono ``float32`` in ``[-1, 1]``.
"""

from __future__ import annotations

import logging
import math
import shutil
import struct
import subprocess
from dataclasses import dataclass
from xml.sax.saxutils import escape

import numpy as np
from scipy import signal

from edge_mmer.config import LABELS
from edge_mmer.errors import EspeakError, EspeakNotFoundError

logger = logging.getLogger(__name__)

__all__ = [
    "ESPEAK_RATE",
    "SENTENCES",
    "STYLES",
    "EspeakError",
    "EspeakNotFoundError",
    "ProsodyParams",
    "ProsodyStyle",
    "SpeakerVoice",
    "SpeechSample",
    "colored_noise",
    "espeak_path",
    "espeak_synthesize",
    "frame_envelope",
    "make_voices",
    "sample_prosody",
    "synthesize_utterance",
]

#: espeak-ng's native output rate.
ESPEAK_RATE = 22050

#: Emotionally neutral sentences (the words carry no emotion; only prosody does).
SENTENCES: tuple[str, ...] = (
    "The meeting is scheduled for Thursday afternoon.",
    "Please put the blue folder on the second shelf.",
    "The train to the city leaves every twenty minutes.",
    "I have to check the numbers in the report again.",
    "The window in the kitchen faces the garden.",
    "We will talk about it when you come back tomorrow.",
    "The package arrived at the office this morning.",
    "She moved the chairs into the other room.",
    "There is a small table next to the door.",
    "The store closes at eight on weekdays.",
    "He wrote the address on a piece of paper.",
    "The lamp needs a new bulb.",
    "They painted the fence last summer.",
    "My phone is on the desk by the printer.",
    "It takes about ten minutes to walk there.",
    "The robot will bring the cup to the table.",
    "Turn left at the corner and then go straight.",
    "The book is about the history of the bridge.",
    "We need two more boxes for the cables.",
    "The bus stops in front of the library.",
    "I saw the new schedule on the board.",
    "The water in the kettle is ready.",
)

_SSML_RANGE_MIN = 10.0
_SSML_RANGE_MAX = 300.0


def espeak_path() -> str:
    """Return the path of the ``espeak-ng`` binary or raise :class:`EspeakNotFoundError`."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise EspeakNotFoundError(
            "the 'espeak-ng' program was not found on PATH; the synthetic dataset needs it: "
            "install it with 'sudo apt-get install espeak-ng' (Debian/Ubuntu) or 'brew install espeak-ng' (macOS)"
        )
    return path


def _parse_wav_stream(data: bytes) -> tuple[np.ndarray, int]:
    """Parse a RIFF/WAVE byte string (as written by ``espeak-ng --stdout``)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise EspeakError(f"espeak-ng did not produce WAV data ({len(data)} bytes)")
    pos = 12
    rate = ESPEAK_RATE
    channels = 1
    width = 2
    while pos + 8 <= len(data):
        cid = data[pos : pos + 4]
        size = struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = pos + 8
        if cid == b"fmt ":
            _fmt, channels, rate, _br, _ba, bits = struct.unpack("<HHIIHH", data[body : body + 16])
            width = bits // 8
        elif cid == b"data":
            # streaming output may carry a bogus size: read to the end
            end = min(len(data), body + size) if 0 < size < 0x7FFF0000 else len(data)
            raw = data[body:end]
            if width != 2:
                raise EspeakError(f"espeak-ng produced {8 * width}-bit audio; expected 16-bit")
            raw = raw[: len(raw) - (len(raw) % (2 * channels))]
            pcm = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
            if channels > 1:
                pcm = pcm.reshape(-1, channels).mean(axis=1)
            return pcm, int(rate)
        pos = body + size + (size & 1)
    raise EspeakError("espeak-ng WAV output has no data chunk")


def espeak_synthesize(
    text: str,
    voice: str = "en",
    pitch: int = 50,
    speed: int = 175,
    amplitude: int = 100,
    pitch_range: float = 100.0,
    word_gap: int = 0,
    timeout_s: float = 30.0,
) -> tuple[np.ndarray, int]:
    """Run espeak-ng and return ``(float32 mono audio, sample_rate)`` at its native rate.

    ``pitch`` is espeak's 0..99 pitch, ``speed`` words per minute, ``pitch_range``
    the SSML prosody range in percent (100 = the voice's default intonation).
    """
    exe = espeak_path()
    rng_pct = float(np.clip(pitch_range, _SSML_RANGE_MIN, _SSML_RANGE_MAX))
    ssml = f'<speak><prosody range="{rng_pct:.0f}%">{escape(text)}</prosody></speak>'
    cmd = [
        exe,
        "-m",
        "-v",
        voice,
        "-p",
        str(int(np.clip(pitch, 0, 99))),
        "-s",
        str(int(np.clip(speed, 80, 450))),
        "-a",
        str(int(np.clip(amplitude, 0, 200))),
        "-g",
        str(max(0, int(word_gap))),
        "--stdout",
        ssml,
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
    except FileNotFoundError as exc:  # pragma: no cover - raced with espeak_path()
        raise EspeakNotFoundError(str(exc)) from exc
    if proc.returncode != 0:
        raise EspeakError(
            f"espeak-ng failed (exit {proc.returncode}) for voice {voice!r}: "
            f"{proc.stderr.decode(errors='replace').strip()}"
        )
    audio, rate = _parse_wav_stream(proc.stdout)
    if audio.size == 0:
        raise EspeakError(f"espeak-ng produced no audio for voice {voice!r} and text {text!r}")
    return audio, rate


# --------------------------------------------------------------------------
# speakers and prosody
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeakerVoice:
    """An espeak-ng voice with a speaker-specific base pitch, rate and loudness."""

    voice: str  # e.g. "en+m3"
    gender: str  # "m" or "f"
    pitch: int  # espeak pitch 0..99
    rate: int  # words per minute
    level_db: float  # speaker loudness offset (dB)


# language / accent + variant pool (no mbrola voices)
_LANGS = ("en", "en-us", "en-gb-x-rp", "en-029", "en-gb-scotland")
_MALE = ("m1", "m2", "m3", "m4", "m5", "m6", "m7")
_FEMALE = ("f1", "f2", "f3", "f4", "f5")


def make_voices(n: int, rng: np.random.Generator) -> list[SpeakerVoice]:
    """Create ``n`` distinct speaker voices, alternating male and female."""
    males = list(rng.permutation(len(_MALE)))
    females = list(rng.permutation(len(_FEMALE)))
    voices: list[SpeakerVoice] = []
    used: set[str] = set()
    for i in range(n):
        gender = "m" if i % 2 == 0 else "f"
        pool = _MALE if gender == "m" else _FEMALE
        order = males if gender == "m" else females
        variant = pool[int(order[(i // 2) % len(order)])]
        lang = _LANGS[int(rng.integers(len(_LANGS)))]
        name = f"{lang}+{variant}"
        k = 0
        while name in used and k < 20:
            lang = _LANGS[int(rng.integers(len(_LANGS)))]
            name = f"{lang}+{variant}"
            k += 1
        used.add(name)
        base_pitch = int(rng.integers(35, 56)) if gender == "m" else int(rng.integers(42, 62))
        voices.append(
            SpeakerVoice(
                voice=name,
                gender=gender,
                pitch=base_pitch,
                rate=int(rng.integers(150, 186)),
                level_db=float(rng.uniform(-2.0, 2.0)),
            )
        )
    return voices


@dataclass(frozen=True)
class ProsodyStyle:
    """Class-level prosody and voice-quality prototype."""

    pitch_delta: float  # espeak pitch units relative to the speaker
    rate_mult: float
    range_pct: float  # SSML pitch range (intonation width)
    gain_db: float  # loudness relative to neutral
    drive: float  # soft-clipping drive (0 = none)
    hf_emphasis: float  # 0..1 high-frequency emphasis
    tremolo_depth: float  # 0..1 amplitude modulation depth at ~6-8 Hz
    breath: float  # breath-noise level relative to the speech RMS
    lowpass_hz: float  # 0 = no low-pass


#: Per-class prosody prototypes.  ``disgust`` is deliberately close to ``neutral``.
STYLES: dict[str, ProsodyStyle] = {
    "neutral": ProsodyStyle(0.0, 1.00, 100.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    "happy": ProsodyStyle(16.0, 1.12, 170.0, 3.5, 0.0, 0.2, 0.0, 0.0, 0.0),
    "angry": ProsodyStyle(7.0, 1.15, 135.0, 6.0, 3.5, 0.7, 0.0, 0.0, 0.0),
    "sad": ProsodyStyle(-15.0, 0.76, 40.0, -6.0, 0.0, 0.0, 0.0, 0.0, 2500.0),
    "fear": ProsodyStyle(22.0, 1.25, 140.0, -1.0, 0.0, 0.1, 0.45, 0.12, 0.0),
    "disgust": ProsodyStyle(-3.0, 0.95, 85.0, -0.5, 0.0, 0.0, 0.0, 0.0, 0.0),
}


@dataclass(frozen=True)
class ProsodyParams:
    """Concrete per-utterance prosody (what was actually synthesised)."""

    label: str
    pitch: int
    speed: int
    pitch_range: float
    level_db: float  # target RMS level in dBFS of the clean speech
    drive: float
    hf_emphasis: float
    tremolo_depth: float
    tremolo_hz: float
    breath: float
    lowpass_hz: float
    snr_db: float
    noise_slope: float  # spectral slope of background noise (0 white, -1 pink, -2 brown)
    lead_s: float
    trail_s: float


_NEUTRAL_LEVEL_DBFS = -24.0


def sample_prosody(label: str, voice: SpeakerVoice, rng: np.random.Generator) -> ProsodyParams:
    """Draw per-utterance prosody for ``label`` around ``voice``'s defaults."""
    if label not in STYLES:
        raise ValueError(f"unknown emotion label {label!r}; expected one of {LABELS}")
    st = STYLES[label]
    return ProsodyParams(
        label=label,
        pitch=int(np.clip(round(voice.pitch + st.pitch_delta + rng.normal(0.0, 4.0)), 0, 99)),
        speed=int(np.clip(round(voice.rate * st.rate_mult * math.exp(rng.normal(0.0, 0.06))), 80, 400)),
        pitch_range=float(np.clip(st.range_pct * math.exp(rng.normal(0.0, 0.15)), _SSML_RANGE_MIN, _SSML_RANGE_MAX)),
        level_db=float(_NEUTRAL_LEVEL_DBFS + voice.level_db + st.gain_db + rng.normal(0.0, 1.5)),
        drive=float(max(0.0, st.drive * math.exp(rng.normal(0.0, 0.2)))),
        hf_emphasis=float(np.clip(st.hf_emphasis + rng.normal(0.0, 0.05), 0.0, 1.0)),
        tremolo_depth=float(np.clip(st.tremolo_depth + rng.normal(0.0, 0.05), 0.0, 0.8)) if st.tremolo_depth else 0.0,
        tremolo_hz=float(rng.uniform(6.0, 8.0)),
        breath=float(max(0.0, st.breath * math.exp(rng.normal(0.0, 0.25)))),
        lowpass_hz=float(st.lowpass_hz * math.exp(rng.normal(0.0, 0.08))) if st.lowpass_hz else 0.0,
        snr_db=float(rng.uniform(12.0, 30.0)),
        noise_slope=float(rng.uniform(-2.0, 0.0)),
        lead_s=float(rng.uniform(0.12, 0.3)),
        trail_s=float(rng.uniform(0.12, 0.3)),
    )


@dataclass(frozen=True)
class SpeechSample:
    """A synthesised utterance."""

    audio: np.ndarray  # float32 mono, noisy, in [-1, 1]
    clean: np.ndarray  # float32 mono speech before background noise
    sample_rate: int
    prosody: ProsodyParams

    @property
    def duration_s(self) -> float:
        return float(self.audio.shape[0] / self.sample_rate)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-12))


def _trim(x: np.ndarray, rate: int, thresh_db: float = -45.0) -> np.ndarray:
    if x.size == 0:
        return x
    win = max(1, rate // 100)
    n = x.size // win
    if n == 0:
        return x
    frames = x[: n * win].reshape(n, win)
    e = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    ref = float(e.max())
    active = np.flatnonzero(20.0 * np.log10(e / ref + 1e-12) > thresh_db)
    if active.size == 0:
        return x
    return x[active[0] * win : min(x.size, (active[-1] + 1) * win)]


def colored_noise(n: int, slope: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with power spectrum ~ f**slope (0 white, -1 pink, -2 brown)."""
    white = rng.standard_normal(n)
    spec = np.fft.rfft(white)
    f = np.fft.rfftfreq(n)
    f[0] = f[1] if n > 1 else 1.0
    spec *= f ** (slope / 2.0)
    out = np.fft.irfft(spec, n)
    out /= np.std(out) + 1e-12
    return out.astype(np.float32)


def _apply_style(x: np.ndarray, rate: int, p: ProsodyParams, rng: np.random.Generator) -> np.ndarray:
    y = x.astype(np.float64)
    if p.lowpass_hz > 0.0 and p.lowpass_hz < rate / 2 - 100:
        sos = signal.butter(4, p.lowpass_hz, btype="low", fs=rate, output="sos")
        y = signal.sosfilt(sos, y)
    if p.hf_emphasis > 0.0:
        sos = signal.butter(2, 1500.0, btype="high", fs=rate, output="sos")
        y = y + 1.5 * p.hf_emphasis * signal.sosfilt(sos, y)
    if p.drive > 0.0:
        # harsh voice: soft clipping at a fixed drive relative to the RMS
        y = y / (_rms(y) * 4.0)
        y = np.tanh(p.drive * y) / math.tanh(p.drive)
    if p.tremolo_depth > 0.0:
        t = np.arange(y.size) / rate
        phase = rng.uniform(0.0, 2.0 * math.pi)
        y = y * (1.0 - p.tremolo_depth * 0.5 * (1.0 + np.sin(2.0 * math.pi * p.tremolo_hz * t + phase)))
    if p.breath > 0.0:
        # breathiness: high-passed noise following the speech envelope
        env_sos = signal.butter(2, 20.0, btype="low", fs=rate, output="sos")
        env = np.sqrt(np.maximum(signal.sosfiltfilt(env_sos, y * y), 0.0))
        hp = signal.butter(2, 2000.0, btype="high", fs=rate, output="sos")
        noise = signal.sosfilt(hp, rng.standard_normal(y.size))
        noise /= _rms(noise)
        y = y + p.breath * 4.0 * env * noise
    return y.astype(np.float32)


def synthesize_utterance(
    text: str,
    label: str,
    voice: SpeakerVoice,
    rng: np.random.Generator,
    sample_rate: int = 16000,
    prosody: ProsodyParams | None = None,
) -> SpeechSample:
    """Synthesise ``text`` with ``label``'s prosody for ``voice``; deterministic given ``rng``."""
    p = prosody if prosody is not None else sample_prosody(label, voice, rng)
    raw, rate = espeak_synthesize(text, voice.voice, pitch=p.pitch, speed=p.speed, pitch_range=p.pitch_range)
    raw = _trim(raw, rate)
    if rate != sample_rate:
        g = math.gcd(int(rate), int(sample_rate))
        raw = signal.resample_poly(raw.astype(np.float64), sample_rate // g, rate // g).astype(np.float32)
    styled = _apply_style(raw, sample_rate, p, rng)
    # loudness: RMS of the active speech to the target level
    styled *= 10.0 ** (p.level_db / 20.0) / _rms(_trim(styled, sample_rate))
    lead = np.zeros(round(p.lead_s * sample_rate), dtype=np.float32)
    trail = np.zeros(round(p.trail_s * sample_rate), dtype=np.float32)
    clean = np.concatenate([lead, styled, trail])
    noise = colored_noise(clean.size, p.noise_slope, rng)
    noise *= _rms(styled) * 10.0 ** (-p.snr_db / 20.0)
    audio = clean + noise
    peak = float(np.max(np.abs(audio)))
    if peak > 0.98:
        gain = 0.98 / peak
        audio *= gain
        clean = clean * gain
    return SpeechSample(
        audio=audio.astype(np.float32), clean=clean.astype(np.float32), sample_rate=sample_rate, prosody=p
    )


def frame_envelope(audio: np.ndarray, sample_rate: int, fps: float, n_frames: int | None = None) -> np.ndarray:
    """Per-video-frame loudness in ``[0, 1]`` (drives the talking mouth).

    Frame ``i`` covers ``[i/fps, (i+1)/fps)``; the value is the frame's RMS in dB
    mapped from ``[peak-35 dB, peak]`` to ``[0, 1]``.
    """
    if n_frames is None:
        n_frames = max(1, math.ceil(audio.shape[0] * fps / sample_rate))
    out = np.zeros(n_frames, dtype=np.float32)
    if audio.size == 0:
        return out
    db = np.full(n_frames, -120.0)
    for i in range(n_frames):
        a = round(i * sample_rate / fps)
        b = round((i + 1) * sample_rate / fps)
        seg = audio[a:b]
        if seg.size:
            db[i] = 20.0 * math.log10(_rms(seg))
    top = float(db.max())
    out[:] = np.clip((db - (top - 35.0)) / 35.0, 0.0, 1.0)
    return out
