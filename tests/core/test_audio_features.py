"""Speech front end: log-mel against librosa (independent reference), shapes, validation, arbitrary input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from edge_mmer.config import AudioConfig, demo_config
from edge_mmer.features.audio import (
    hann_window,
    log_mel,
    mel_filterbank,
    n_frames,
    pcm16_to_float,
)

librosa = pytest.importorskip("librosa")

CFG = AudioConfig()
SR = CFG.sample_rate


def _librosa_log_mel(wave: np.ndarray, cfg: AudioConfig) -> np.ndarray:
    """librosa reference. Our frame i covers [i*hop, i*hop+win); librosa (center=False) frames span
    n_fft samples with the window centred in them, so pad the wave by the window's offset."""
    lpad = (cfg.n_fft - cfg.win_length) // 2
    rpad = cfg.n_fft - cfg.win_length - lpad
    y = np.pad(wave.astype(np.float64), (lpad, rpad))
    mel = librosa.feature.melspectrogram(
        y=y, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
        window="hann", center=False, power=2.0, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax,
        htk=False, norm="slaney",
    )
    out: np.ndarray = np.log(np.maximum(mel, cfg.log_floor)).T
    return out


def _signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1234)
    t = np.arange(int(1.3 * SR)) / SR
    chirp = 0.5 * np.sin(2 * np.pi * (100 * t + 0.5 * (7000 - 100) / t[-1] * t**2))
    noise = 0.2 * rng.standard_normal(t.size)
    f0 = 140 + 30 * np.sin(2 * np.pi * 3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) * (t > 0.1)
    speech_like = 0.3 * envelope * voiced + 0.01 * rng.standard_normal(t.size)
    quiet = 1e-5 * rng.standard_normal(t.size)  # hits the log floor in many bins
    return {
        "chirp": chirp.astype(np.float32),
        "noise": np.clip(noise, -1, 1).astype(np.float32),
        "speech_like": np.clip(speech_like, -1, 1).astype(np.float32),
        "quiet": quiet.astype(np.float32),
        "odd_length": noise[: 16000 + 77].astype(np.float32),
    }


def test_mel_filterbank_matches_librosa() -> None:
    fb = mel_filterbank(CFG)
    ref = librosa.filters.mel(sr=SR, n_fft=CFG.n_fft, n_mels=CFG.n_mels, fmin=CFG.fmin, fmax=CFG.fmax,
                              htk=False, norm="slaney")
    assert fb.shape == (CFG.n_mels, CFG.n_fft // 2 + 1)
    assert fb.dtype == np.float32
    np.testing.assert_allclose(fb, ref, rtol=1e-5, atol=1e-9)


def test_mel_filterbank_is_cached_and_read_only() -> None:
    assert mel_filterbank(CFG) is mel_filterbank(AudioConfig())
    with pytest.raises(ValueError):
        mel_filterbank(CFG)[0, 0] = 1.0


def test_hann_window_is_periodic() -> None:
    scipy_signal = pytest.importorskip("scipy.signal")
    np.testing.assert_allclose(hann_window(400), scipy_signal.get_window("hann", 400, fftbins=True), atol=1e-15)


@pytest.mark.parametrize("name", list(_signals()))
def test_log_mel_matches_librosa(name: str) -> None:
    wave = _signals()[name]
    ours = log_mel(wave, CFG)
    ref = _librosa_log_mel(wave, CFG)
    assert ours.dtype == np.float32
    assert ours.shape == ref.shape == (n_frames(wave.size, CFG), CFG.n_mels)
    assert np.max(np.abs(ours - ref)) <= 1e-4


def test_log_mel_matches_librosa_other_config() -> None:
    cfg = AudioConfig(n_fft=1024, win_length=640, hop_length=320, n_mels=64, fmin=0.0, fmax=7600.0, log_floor=1e-8)
    wave = _signals()["speech_like"]
    ours = log_mel(wave, cfg)
    ref = _librosa_log_mel(wave, cfg)
    assert ours.shape == ref.shape
    assert np.max(np.abs(ours - ref)) <= 1e-4


def test_frame_i_covers_its_own_samples() -> None:
    """A click inside frame 3 only (no overlap with others) changes frame 3 only."""
    cfg = AudioConfig(hop_length=400)  # non-overlapping frames
    wave = np.zeros(400 * 6, dtype=np.float32)
    base = log_mel(wave, cfg)
    wave[3 * 400 + 200] = 0.5
    clicked = log_mel(wave, cfg)
    changed = np.flatnonzero(np.any(clicked != base, axis=1))
    assert changed.tolist() == [3]


def test_short_wave_is_padded_to_one_window() -> None:
    wave = _signals()["noise"][:123]
    out = log_mel(wave, CFG)
    assert out.shape == (1, CFG.n_mels)
    padded = np.zeros(CFG.win_length, dtype=np.float32)
    padded[:123] = wave
    np.testing.assert_array_equal(out, log_mel(padded, CFG))


def test_silence_is_log_floor() -> None:
    out = log_mel(np.zeros(SR // 2, dtype=np.float32), CFG)
    np.testing.assert_allclose(out, np.float32(np.log(CFG.log_floor)))


def test_float64_input_matches_float32() -> None:
    wave = _signals()["chirp"]
    np.testing.assert_array_equal(log_mel(wave, CFG), log_mel(wave.astype(np.float64), CFG))


@pytest.mark.parametrize(
    ("wave", "message"),
    [
        (np.array([0.0, np.nan, 0.1], dtype=np.float32), "NaN/inf"),
        (np.array([0.0, np.inf], dtype=np.float32), "NaN/inf"),
        (np.zeros((800, 2), dtype=np.float32), "expected mono 1-D audio, got shape"),
        (np.zeros((), dtype=np.float32), "expected mono 1-D audio, got shape"),
        (np.zeros(800, dtype=np.int16), "pcm16_to_float"),
        (np.zeros(0, dtype=np.float32), "empty"),
    ],
)
def test_log_mel_rejects_bad_input(wave: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        log_mel(wave, CFG)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=5000))
def test_shape_formula(n: int) -> None:
    wave = np.zeros(n, dtype=np.float32)
    out = log_mel(wave, CFG)
    expected = 1 if n < CFG.win_length else 1 + (n - CFG.win_length) // CFG.hop_length
    assert out.shape == (expected, CFG.n_mels)
    assert n_frames(n, CFG) == expected


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, st.integers(min_value=1, max_value=3000),
              elements=st.floats(-1.0, 1.0, width=32, allow_nan=False)))
def test_finite_for_any_finite_input(wave: np.ndarray) -> None:
    out = log_mel(wave, CFG)
    assert np.all(np.isfinite(out))
    assert np.all(out >= np.float32(np.log(CFG.log_floor)))


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=1, max_value=3000), st.data())
def test_nan_anywhere_raises(n: int, data: st.DataObject) -> None:
    wave = np.zeros(n, dtype=np.float32)
    wave[data.draw(st.integers(0, n - 1))] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    with pytest.raises(ValueError, match="NaN/inf"):
        log_mel(wave, CFG)


def test_pcm16_to_float() -> None:
    pcm = np.array([0, 1, -1, 32767, -32768, 16384], dtype=np.int16)
    expected = pcm.astype(np.float32) / 32768.0
    from_bytes = pcm16_to_float(pcm.astype("<i2").tobytes())
    from_array = pcm16_to_float(pcm)
    assert from_bytes.dtype == from_array.dtype == np.float32
    np.testing.assert_array_equal(from_bytes, expected)
    np.testing.assert_array_equal(from_array, expected)
    assert from_bytes.min() == -1.0 and from_bytes.max() < 1.0
    with pytest.raises(ValueError, match="even number of bytes"):
        pcm16_to_float(b"\x00\x01\x02")
    with pytest.raises(ValueError, match="int16"):
        pcm16_to_float(np.zeros(4, dtype=np.float32))


# --- arbitrary input ----------------------------------------------------------------------------

_ANY_DTYPE = st.sampled_from([np.float32, np.float64, np.float16, np.int16, np.int32, np.uint8, np.int8, np.bool_,
                              np.complex64])


@settings(max_examples=300, deadline=None)
@given(arrays(_ANY_DTYPE, array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=900)))
def test_log_mel_on_arbitrary_arrays_gives_a_result_or_value_error(wave_in: np.ndarray) -> None:
    cfg = demo_config().audio
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            out = log_mel(wave_in, cfg)
    except ValueError:
        return
    assert wave_in.ndim == 1 and wave_in.size > 0 and np.issubdtype(wave_in.dtype, np.floating)
    assert out.dtype == np.float32 and out.ndim == 2 and out.shape[1] == cfg.n_mels
    # finite features for any finite input of sane magnitude (float64 beyond ~1e150 overflows the power
    # spectrum; the runtime only ever feeds pcm16_to_float's output, within [-1, 1))
    if np.max(np.abs(wave_in.astype(np.float64))) <= 1e100:
        assert np.all(np.isfinite(out))


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=64), arrays(_ANY_DTYPE, array_shapes(min_dims=0, max_dims=2, max_side=16))))
def test_pcm16_to_float_on_arbitrary_input_gives_a_result_or_value_error(buf: Any) -> None:
    try:
        out = pcm16_to_float(buf)
    except ValueError:
        return
    assert out.dtype == np.float32
    assert np.all((out >= -1.0) & (out < 1.0))
    n = buf.size if isinstance(buf, np.ndarray) else len(buf) // 2
    assert out.size == n
