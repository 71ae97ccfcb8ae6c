"""Speech front end: log-mel features, exactly what the runtime computes per utterance.

Pure numpy (no torch, no librosa): the same code runs at training time and on the device.

Framing convention (no centring, no padding): frame ``i`` covers samples
``[i * hop_length, i * hop_length + win_length)``. Each frame is multiplied by a periodic Hann
window of ``win_length`` samples and zero-padded to ``n_fft``. The padding only changes the
phase of the spectrum, so the power spectrum ``|rfft|^2`` is the same whether the window is
placed centred in the ``n_fft`` buffer (librosa's ``pad_center``) or at its start (what
``numpy.fft.rfft(..., n=n_fft)`` does). The result equals librosa's
``melspectrogram(center=False, ...)`` applied to the wave padded with ``(n_fft - win_length) // 2``
zeros on the left (and the rest of ``n_fft - win_length`` on the right).

Number of frames for ``L >= 1`` samples: ``1 + max(0, L - win_length) // hop_length`` (a wave shorter
than one window is zero-padded to one window; trailing samples that do not fill a whole frame
are dropped).
"""

from __future__ import annotations

import functools
import logging

import numpy as np

from edge_mmer.config import AudioConfig

logger = logging.getLogger(__name__)

__all__ = [
    "hann_window",
    "hz_to_mel",
    "log_mel",
    "mel_filterbank",
    "mel_to_hz",
    "n_frames",
    "pcm16_to_float",
]

# Slaney's auditory-toolbox mel scale (librosa's default, htk=False): linear below 1 kHz,
# logarithmic above.
_F_SP = 200.0 / 3.0
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(freq: np.ndarray | float) -> np.ndarray:
    """Slaney mel scale (librosa ``hz_to_mel(htk=False)``)."""
    f = np.asarray(freq, dtype=np.float64)
    linear = f / _F_SP
    logpart = _MIN_LOG_MEL + np.log(np.maximum(f, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(f >= _MIN_LOG_HZ, logpart, linear)


def mel_to_hz(mels: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    m = np.asarray(mels, dtype=np.float64)
    linear = _F_SP * m
    logpart = _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - _MIN_LOG_MEL))
    return np.where(m >= _MIN_LOG_MEL, logpart, linear)


@functools.lru_cache(maxsize=16)
def mel_filterbank(cfg: AudioConfig) -> np.ndarray:
    """Triangular mel filterbank, shape ``(n_mels, n_fft // 2 + 1)``, ``float32``, read-only.

    Slaney mel scale and Slaney area normalisation (each triangle scaled by
    ``2 / (f_upper - f_lower)``): the defaults of ``librosa.filters.mel`` (which also returns
    ``float32``). Computed in float64 then rounded once to float32. Cached per (frozen) config;
    the returned array is shared, hence read-only.
    """
    n_bins = cfg.n_fft // 2 + 1
    fft_freqs = np.linspace(0.0, cfg.sample_rate / 2.0, n_bins)
    mel_pts = np.linspace(hz_to_mel(cfg.fmin), hz_to_mel(cfg.fmax), cfg.n_mels + 2)
    hz_pts = mel_to_hz(mel_pts)
    fdiff = np.diff(hz_pts)
    ramps = hz_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    enorm = 2.0 / (hz_pts[2:] - hz_pts[:-2])
    weights *= enorm[:, None]
    empty = np.flatnonzero(weights.max(axis=1) == 0)
    if empty.size:
        logger.warning("mel filterbank: %d empty filter(s) (n_mels=%d too high for n_fft=%d)",
                       empty.size, cfg.n_mels, cfg.n_fft)
    out = weights.astype(np.float32)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=16)
def hann_window(win_length: int) -> np.ndarray:
    """Periodic Hann window (``scipy.signal.get_window('hann', n, fftbins=True)``), float64, read-only."""
    n = np.arange(win_length, dtype=np.float64)
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / win_length)
    w.setflags(write=False)
    return w


def n_frames(n_samples: int, cfg: AudioConfig) -> int:
    """Number of log-mel frames :func:`log_mel` returns for ``n_samples >= 1`` samples."""
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    return 1 + max(0, n_samples - cfg.win_length) // cfg.hop_length


def _check_wave(wave: np.ndarray) -> np.ndarray:
    arr = np.asarray(wave)
    if arr.ndim != 1:
        raise ValueError(f"expected mono 1-D audio, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(
            f"expected floating-point audio in [-1, 1], got dtype {arr.dtype} (use pcm16_to_float for 16-bit PCM)"
        )
    if arr.size == 0:
        raise ValueError("audio is empty (0 samples)")
    if not np.all(np.isfinite(arr)):
        raise ValueError("audio contains NaN/inf")
    return arr


def log_mel(wave: np.ndarray, cfg: AudioConfig) -> np.ndarray:
    """Log-mel features of one utterance, shape ``(frames, n_mels)``, ``float32``.

    ``wave``: mono float audio at ``cfg.sample_rate`` in [-1, 1] (float32 expected; float64 is
    accepted). Framing: see the module docstring (no centring; a wave shorter than one window is
    zero-padded to exactly one window). Values: ``log(max(mel_power, cfg.log_floor))`` with
    ``mel_power = mel_filterbank @ |rfft(hann * frame, n_fft)|^2`` (computed in float64).

    Raises ``ValueError`` for non-1-D, non-float, empty or non-finite input.
    """
    arr = _check_wave(wave).astype(np.float64, copy=False)
    win, hop = cfg.win_length, cfg.hop_length
    if arr.size < win:
        arr = np.pad(arr, (0, win - arr.size))
    count = 1 + (arr.size - win) // hop
    frames = np.lib.stride_tricks.as_strided(
        arr, shape=(count, win), strides=(arr.strides[0] * hop, arr.strides[0]), writeable=False
    )
    spec = np.fft.rfft(frames * hann_window(win), n=cfg.n_fft, axis=1)
    power = spec.real**2 + spec.imag**2
    mel = power @ mel_filterbank(cfg).T.astype(np.float64)
    log: np.ndarray = np.log(np.maximum(mel, cfg.log_floor)).astype(np.float32)
    return log


def pcm16_to_float(buf: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """Signed 16-bit little-endian PCM (raw bytes or an ``int16`` array) to float32 in [-1, 1).

    Scaling: ``x / 32768``. Raises ``ValueError`` for an odd number of bytes or a non-int16 array.
    """
    if isinstance(buf, np.ndarray):
        if buf.dtype != np.int16:
            raise ValueError(f"expected an int16 PCM array, got dtype {buf.dtype}")
        samples = buf
    else:
        raw = bytes(buf)
        if len(raw) % 2:
            raise ValueError(f"16-bit PCM needs an even number of bytes, got {len(raw)}")
        samples = np.frombuffer(raw, dtype="<i2")
    out: np.ndarray = (samples.astype(np.float32) / np.float32(32768.0)).astype(np.float32)
    return out
