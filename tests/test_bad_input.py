"""Bad input: each a clear error (naming the file, key or device and what was expected) or a handled
case, tested through the CLI or the loop where possible; property-based tests for the manifest reader,
the runtime settings loader, the audio front end and the VAD.

Covered elsewhere (the README's Reliability table lists them): every byte of every bundle file, path
escapes, symlinks, unknown manifest fields (tests/test_bundle.py); a TensorRT plan from another device
(tests/test_runners.py::test_plans_for_another_device); an unknown / mistyped TOML key and an
unreachable camera index through the CLI (tests/test_loop.py::test_bad_settings_name_the_key); wav
conversion and file errors at the source (tests/test_sources.py); bad sink specs (tests/test_sinks.py);
NaN / inf / empty / non-1-D audio into log_mel (tests/test_audio_features.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import math
import shutil
import struct
import subprocess
import sys
import typing
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from edge_mmer import bundle as B
from edge_mmer.bundle import BundleError, parse_manifest, validate_manifest
from edge_mmer.config import ConfigError, demo_config
from edge_mmer.features.audio import log_mel, pcm16_to_float
from edge_mmer.runtime.chunks import AudioChunk, VideoFrame
from edge_mmer.runtime.loop import RunError, RuntimeLoop
from edge_mmer.runtime.pipeline import run_offline
from edge_mmer.runtime.settings import RuntimeSettings, load_settings, settings_from_dict, with_run_overrides
from edge_mmer.runtime.vad import VadSegmenter, VadSettings
from tests.runtime_helpers import DEMO_BUNDLE, demo_av, demo_pipeline
from tests.test_loop import ListSink

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_mmer.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def bundle_copy(tmp_path: Path) -> Path:
    out = tmp_path / "bundle"
    shutil.copytree(DEMO_BUNDLE, out)
    return out


def run_loop(**run: Any) -> tuple[Any, ListSink]:
    sink = ListSink()
    settings = with_run_overrides(RuntimeSettings(), stats_interval_s=0.0, **run)
    return RuntimeLoop(settings, sink=sink).run(), sink


# ------------------------------------------------------------------------------------- bundles


def test_tampered_bundle_file_through_the_cli_names_the_file(tmp_path: Path) -> None:
    b = bundle_copy(tmp_path)
    target = b / "onnx" / "speech_encoder.fp32.onnx"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    out = cli("run", "--bundle", str(b))
    assert out.returncode == 1
    assert "'onnx/speech_encoder.fp32.onnx'" in out.stderr and "sha256 mismatch" in out.stderr
    assert "Traceback" not in out.stderr
    assert out.stdout == ""


@pytest.mark.parametrize(("rel", "damage", "needle"), [
    ("svm/fused.model", "truncate", "size mismatch"),
    ("selection/face.safetensors", "delete", "missing"),
    ("networks/face_encoder.safetensors", "truncate", "truncated or replaced"),
])
def test_truncated_or_missing_bundle_file_stops_the_loop_naming_it(tmp_path: Path, rel: str, damage: str,
                                                                   needle: str) -> None:
    b = bundle_copy(tmp_path)
    if damage == "delete":
        (b / rel).unlink()
    else:
        with open(b / rel, "r+b") as f:
            f.truncate((b / rel).stat().st_size // 2)
    with pytest.raises(RunError) as info:
        run_loop(bundle=str(b))
    assert f"'{rel}'" in str(info.value) and needle in str(info.value)


@pytest.mark.parametrize("seal", [True, False])
def test_manifest_from_a_newer_schema_version_is_refused(tmp_path: Path, seal: bool) -> None:
    b = bundle_copy(tmp_path)
    manifest = json.loads((b / "manifest.json").read_bytes())
    manifest["schema_version"] = 2
    (b / "manifest.json").write_bytes(B._seal(manifest) if seal else json.dumps(manifest).encode())
    with pytest.raises(RunError, match=r"'schema_version'.*expected 1, got 2"):
        run_loop(bundle=str(b))


def test_a_directory_that_is_not_a_bundle(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    with pytest.raises(RunError, match=r"manifest\.json.*missing"):
        run_loop(bundle=str(tmp_path / "photos"))


# ------------------------------------------------------------------------------- settings (TOML)


def test_malformed_toml_through_the_cli(tmp_path: Path) -> None:
    cfg = tmp_path / "unit.toml"
    cfg.write_text('[run]\nsink = "stdout"\ndevice_id = \n')
    out = cli("run", "--config", str(cfg))
    assert out.returncode == 2 and str(cfg) in out.stderr and "not valid TOML" in out.stderr
    cfg.write_text("[mqqt]\nusername = 'robot'\n")  # a typo in a section name is not silently ignored
    out = cli("run", "--config", str(cfg))
    assert out.returncode == 2 and "unknown config key 'mqqt'" in out.stderr
    out = cli("run", "--config", str(tmp_path / "missing.toml"))
    assert out.returncode == 2 and "no such TOML file" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(("text", "needle"), [
    ("[mqtt]\nqos = 3\n", "mqtt.qos"),
    ('[mqtt]\nqos = "1"\n', "mqtt.qos"),
    ("[mqtt]\npasword_file = '/etc/pw'\n", "mqtt.pasword_file"),
    ("[run]\nrealtime = 1\n", "run.realtime"),
    ("[queues]\naudio = 0\n", "queues"),
    ("[watchdog]\nstale_timeout_s = -1.0\n", "watchdog"),
    ("[watchdog]\nstale_timeout_s = nan\n", "watchdog.stale_timeout_s"),
    ("[faces]\nanalysis_fps = nan\n", "faces.analysis_fps"),
    ("[faces]\nvideo_wait_s = inf\n", "faces.video_wait_s"),
    ("[run]\nstats_interval_s = nan\n", "run.stats_interval_s"),
    ("run = 3\n", "'run'"),
    ("[vad]\naggressiveness = 9\n", "vad.aggressiveness"),
    ("[vad]\nmin_utterance_s = 2.0\nmax_utterance_s = 1.0\n", "vad.min_utterance_s/max_utterance_s"),
    ("[faces]\nanalysis_fps = 0.0\n", "faces.analysis_fps"),  # absent is the bundle's value; 0 is no value
    ("[decision]\ncontext_reset_gap_s = 0.0\n", "decision.context_reset_gap_s"),
    ("[mqtt]\nkeepalive = 2\n", "mqtt.keepalive"),
    ("[mqtt]\nkey_file = '/etc/k.pem'\n", "mqtt.key_file"),
])
def test_bad_setting_values_name_the_key(tmp_path: Path, text: str, needle: str) -> None:
    cfg = tmp_path / "unit.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert needle in str(info.value) and str(cfg) in str(info.value)


def test_non_utf8_toml_is_a_config_error(tmp_path: Path) -> None:
    cfg = tmp_path / "unit.toml"
    cfg.write_bytes(b'[run]\ndevice_id = "\xff\xfe"\n')
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(cfg)


# ---------------------------------------------------------------------------- wav as microphone


def write_wav(path: Path, pcm: np.ndarray, rate: int = 16000, channels: int = 1, width: int = 2) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def write_float_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    """A WAVE_FORMAT_IEEE_FLOAT (format 3) mono wav, which the standard library's wave module cannot read."""
    data = samples.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE"
                     + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data)
    return path


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    audio, _ = demo_av()
    return audio[: 16000 * 7]  # the first two sentences


@pytest.fixture(scope="module")
def reference_labels(speech: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    wav = write_wav(tmp_path_factory.mktemp("ref") / "speech.wav", speech)
    _, sink = run_loop(camera="none", mic=str(wav))
    assert len(sink.events) >= 1
    return [e.label for e in sink.events]


def _to_24bit(pcm: np.ndarray) -> np.ndarray:
    wide = pcm.astype("<i4") << 8
    return wide.view(np.uint8).reshape(-1, 4)[:, :3].copy()


@pytest.mark.parametrize("kind", ["48k-stereo-16bit", "16k-mono-24bit", "16k-mono-float32"])
def test_wav_at_another_rate_channels_or_width_is_converted(tmp_path: Path, speech: np.ndarray, kind: str,
                                                            reference_labels: list[str], caplog) -> None:
    caplog.set_level("INFO")
    if kind == "48k-stereo-16bit":
        stereo = np.repeat(np.repeat(speech, 3)[:, None], 2, axis=1)
        wav = write_wav(tmp_path / "in.wav", stereo, rate=48000, channels=2)
    elif kind == "16k-mono-24bit":
        wav = write_wav(tmp_path / "in.wav", _to_24bit(speech), width=3)
    else:
        wav = write_float_wav(tmp_path / "in.wav", speech.astype(np.float32) / 32768.0)
    _, sink = run_loop(camera="none", mic=str(wav))
    assert any("converting to 16 kHz mono 16-bit PCM" in r.getMessage() for r in caplog.records)
    assert [e.label for e in sink.events] == reference_labels
    assert all(e.channels["speech"] is not None for e in sink.events)


def test_wav_full_of_nan_is_handled(tmp_path: Path) -> None:
    """A float wav whose samples are NaN (a broken recorder) decodes to full-scale int16; the loop runs on."""
    noise = np.full(16000 * 3, np.nan, np.float32)
    noise[::2] = 0.25
    summary, sink = run_loop(camera="none", mic=str(write_float_wav(tmp_path / "nan.wav", noise)))
    assert summary.stopped_by == "end of stream"
    for e in sink.events:
        assert all(math.isfinite(v) for v in e.scores.values())


@pytest.mark.parametrize(("content", "needle"), [
    (b"this is not audio at all\n" * 20, "expected 16 kHz mono 16-bit PCM"),
    (None, "empty"),
])
def test_unreadable_or_empty_wav_is_refused_naming_it(tmp_path: Path, content: bytes | None, needle: str) -> None:
    path = tmp_path / "mic.wav"
    if content is None:
        write_wav(path, np.zeros(0, np.int16))
    else:
        path.write_bytes(content)
    with pytest.raises(RunError) as info:
        run_loop(camera="none", mic=str(path))
    assert str(path) in str(info.value) and needle in str(info.value)


# ------------------------------------------------------------------------- audio into the pipeline


def test_empty_chunks_change_nothing_and_float_or_nan_chunks_are_refused() -> None:
    audio, frames = demo_av()
    audio = audio[: 16000 * 7]
    ref = run_offline(demo_pipeline(), audio, [f for f in frames if f.t < 7.0])
    pipe = demo_pipeline()
    events = []
    for f in (f for f in frames if f.t < 7.0):
        events += pipe.feed(f)
    for i in range(0, len(audio), 320):
        events += pipe.feed(AudioChunk(i / 16000, np.zeros(0, np.int16), 16000))
        events += pipe.feed(AudioChunk(i / 16000, audio[i:i + 320], 16000))
    events += pipe.flush()
    assert [(e.label, e.utterance) for e in events] == [(e.label, e.utterance) for e in ref]
    with pytest.raises(ValueError, match="int16"):
        pipe.feed(AudioChunk(7.0, np.full(320, np.nan, np.float32), 16000))
    with pytest.raises(ValueError, match="16000 Hz"):
        pipe.feed(AudioChunk(7.0, np.zeros(441, np.int16), 44100))


def test_clipped_full_scale_audio_gives_finite_scores() -> None:
    square = np.where(np.sin(np.arange(16000 * 3) * 2 * np.pi * 220 / 16000) >= 0, 32767, -32768).astype(np.int16)
    pipe = demo_pipeline()
    events = pipe.feed(AudioChunk(0.0, np.concatenate([np.zeros(8000, np.int16), square, np.zeros(16000, np.int16)]),
                                  16000)) + pipe.flush()
    for e in events:
        assert all(0.0 <= v <= 1.0 for v in e.scores.values())


# ------------------------------------------------------------------------- frames into the pipeline


def test_zero_size_tiny_and_huge_frames_are_handled() -> None:
    _, frames = demo_av()
    real = frames[10].image
    pipe = demo_pipeline()
    bad = [np.zeros((0, 0, 3), np.uint8), np.zeros((0, 640, 3), np.uint8), np.zeros((3, 3, 3), np.uint8)]
    for i, img in enumerate(bad):
        assert pipe.feed(VideoFrame(0.1 * i, img, i)) == []
    assert pipe.faces.bad_frames == len(bad) and pipe.stats.snapshot()["counters"]["bad_frames"] == len(bad)
    # a 4K frame (the demo face scaled up) and a 20000-pixel-wide strip are valid frames: analysed, no error
    huge = np.ascontiguousarray(np.repeat(np.repeat(real, 9, axis=0), 12, axis=1))  # 2160 x 3840
    pipe.feed(VideoFrame(1.0, huge, 10))
    pipe.feed(VideoFrame(2.0, np.zeros((8, 20000, 3), np.uint8), 11))
    assert pipe.faces.frames_analysed == 2 and pipe.faces.bad_frames == len(bad)
    crops = pipe.faces.crops_between(0.0, 3.0)
    assert len(crops) == 1 and crops[0].shape == (demo_config().face.crop_size,) * 2 + (3,)


# ---------------------------------------------------------------------------- devices and the sink


def test_unreachable_cameras_and_microphones_name_the_device(tmp_path: Path) -> None:
    with pytest.raises(RunError, match=r"/dev/video99.*no such file or device"):
        run_loop(camera="/dev/video99", mic="none")
    with pytest.raises(RunError, match=r"camera rtsp://admin:\*\*\*@127\.0\.0\.1:9/stream: cannot open the stream"):
        run_loop(camera="rtsp://admin:hunter2@127.0.0.1:9/stream", mic="none")
    with pytest.raises(RunError, match=r"nothing to run on"):
        run_loop(camera="none", mic="none")


@pytest.mark.parametrize(("url", "needle"), [
    ("mqtt://", "has no host"),
    ("mqtt://broker:99999/p", "99999"),
    ("mqtt://broker:port/p", "not a number"),
    ("mqtt://broker/a+b", "must not contain"),
    ("mqtt://broker/p?x=1", "query strings"),
    ("mqtt://robot:s3cret@broker/p", "contains a password"),
    ("ws://broker/p", "unknown sink spec"),
    ("jsonl:", "has no path"),
])
def test_invalid_sink_url_stops_the_loop_before_it_runs(tmp_path: Path, url: str, needle: str) -> None:
    settings = with_run_overrides(RuntimeSettings(), sink=url, device_id="unit-b", stats_interval_s=0.0)
    with pytest.raises(RunError) as info:
        RuntimeLoop(settings).run()
    assert needle in str(info.value)
    assert "s3cret" not in str(info.value)


# --------------------------------------------------------------------------------- property tests


def _json() -> st.SearchStrategy[Any]:
    leaves = (st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats(allow_nan=False)
              | st.text(max_size=10))
    return st.recursive(leaves, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids,
                                                                                          max_size=4), max_leaves=12)


_MANIFEST_KEYS = st.sampled_from([*B._TOP_LEVEL, "extra", ""])


@st.composite
def manifest_like(draw: st.DrawFn) -> Any:
    """Mostly objects with the real top-level keys (schema id and version right half the time)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(_json())
    m: dict[str, Any] = draw(st.dictionaries(_MANIFEST_KEYS, _json(), max_size=8))
    if draw(st.booleans()):
        m["schema"], m["schema_version"] = B.SCHEMA, B.SCHEMA_VERSION
    return m


@settings(max_examples=300, deadline=None)
@given(manifest_like())
def test_manifest_reader_on_arbitrary_json_raises_only_bundle_error(manifest: Any) -> None:
    try:
        validate_manifest(manifest, "bundle-under-test")
    except BundleError as exc:
        assert "bundle-under-test" in str(exc)
    data = json.dumps(manifest).encode()
    try:
        parse_manifest(data, "bundle-under-test")
    except BundleError as exc:
        assert "manifest.json" in str(exc) or "manifest_sha256" in str(exc) or "schema" in str(exc)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_manifest_reader_on_arbitrary_bytes_raises_only_bundle_error(data: bytes) -> None:
    with contextlib.suppress(BundleError):
        parse_manifest(data, "bundle-under-test")


def _field_values(default: Any) -> st.SearchStrategy[Any]:
    junk = st.none() | st.text(max_size=6) | st.lists(st.integers(), max_size=2) | st.dictionaries(st.text(max_size=3),
                                                                                                  st.integers(),
                                                                                                  max_size=2)
    if isinstance(default, bool):
        typed: st.SearchStrategy[Any] = st.booleans()
    elif isinstance(default, float):
        typed = st.floats(allow_nan=True, allow_infinity=True) | st.floats(-5, 100) | st.integers(-5, 100)
    elif isinstance(default, int):
        typed = st.integers(-5, 10**6) | st.integers(-(2**70), 2**70)
    elif isinstance(default, str):
        typed = st.text(max_size=12) | st.sampled_from(["auto", "fp16", "int8", "every", "change", "stdout",
                                                        "onnxruntime", "tensorrt", "mqtt://h/p", "none", ""])
    else:
        typed = st.nothing()
    return st.one_of(typed, typed, typed, junk)


def _example(cls: type, name: str, default: Any) -> Any:
    """The default, or for an option whose default is "not given" (None) a value of its type."""
    if default is not None:
        return default
    hint = typing.get_type_hints(cls)[name]
    kind = next(a for a in typing.get_args(hint) if a is not type(None))
    return {float: 0.0, int: 0, bool: False}.get(kind, "")


def _section(cls: type) -> st.SearchStrategy[dict[str, Any]]:
    defaults = cls()
    fields = {f.name: _field_values(_example(cls, f.name, getattr(defaults, f.name))) for f in dataclasses.fields(cls)}
    keys = st.sampled_from([*sorted(fields), "bogus"])
    return st.dictionaries(keys, st.just(None), max_size=len(fields)).flatmap(
        lambda chosen: st.fixed_dictionaries({k: fields.get(k, st.integers()) for k in chosen}))


_SECTIONS = {f.name: _section(type(getattr(RuntimeSettings(), f.name))) for f in dataclasses.fields(RuntimeSettings)}


@st.composite
def settings_like(draw: st.DrawFn) -> dict[str, Any]:
    chosen = draw(st.lists(st.sampled_from([*_SECTIONS, "bogus"]), unique=True, max_size=4))
    out: dict[str, Any] = {}
    for name in chosen:
        out[name] = draw(_SECTIONS[name] if name in _SECTIONS and draw(st.integers(0, 9)) else _json())
    return out


def _floats(obj: Any, prefix: str = "") -> list[tuple[str, float]]:
    found = []
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):
            found += _floats(v, f"{prefix}{f.name}.")
        elif isinstance(v, float):
            found.append((f"{prefix}{f.name}", v))
    return found


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(settings_like())
def test_settings_loader_raises_only_config_error_and_accepts_only_usable_values(data: dict[str, Any]) -> None:
    try:
        s = settings_from_dict(data, "unit.toml")
    except ConfigError as exc:
        assert str(exc).startswith("unit.toml: ")
        return
    bad = [(k, v) for k, v in _floats(s) if not math.isfinite(v)]
    assert not bad, f"accepted non-finite settings {bad}"
    assert s.pipeline.vad == s.vad and s.pipeline.decision == s.decision
    vad = s.vad.for_front_end(demo_config().audio)  # the length limits not given are the bundle's
    if (s.vad.min_utterance_s is None) == (s.vad.max_utterance_s is None):
        VadSegmenter(vad)
    else:  # one limit given: whether it fits the other is known only with the bundle's
        with contextlib.suppress(ConfigError):
            VadSegmenter(vad)


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


@st.composite
def audio_and_cuts(draw: st.DrawFn) -> tuple[np.ndarray, list[int]]:
    """A slice of the demo clip's speech (with noise added) or pure noise, and where to cut it."""
    audio, _ = demo_av()
    n = draw(st.integers(1, 16000 * 6) | st.integers(16000 * 2, 16000 * 6))
    if draw(st.integers(0, 3)):
        start = draw(st.integers(0, len(audio) - n))
        x = audio[start:start + n].astype(np.int32)
    else:
        x = np.zeros(n, np.int32)
    seed = draw(st.integers(0, 2**32 - 1))
    level = draw(st.sampled_from([0, 0, 30, 300, 32767]))
    x = np.clip(x + np.random.default_rng(seed).integers(-level, level + 1, n), -32768, 32767).astype(np.int16)
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=40)))
    return x, cuts


def _segments(seg: VadSegmenter, chunks: list[np.ndarray]) -> list[tuple[float, float, bytes, bool]]:
    out, offset = [], 0
    for c in chunks:
        out += seg.feed(AudioChunk(offset / 16000, c, 16000))
        offset += len(c)
    out += seg.flush()
    return [(round(u.start, 9), round(u.end, 9), u.samples.tobytes(), u.cut) for u in out]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(audio_and_cuts(), st.sampled_from([VadSettings(), VadSettings(frame_ms=10, hangover_ms=150, max_utterance_s=1.5),
                                          VadSettings(frame_ms=30, aggressiveness=0, min_utterance_s=0.1)]))
def test_vad_segments_do_not_depend_on_how_the_audio_is_chunked(case: tuple[np.ndarray, list[int]],
                                                                vad: VadSettings) -> None:
    audio, cuts = case
    assume(len(audio) > 0)
    bounds = [0, *cuts, len(audio)]
    chunks = [audio[a:b] for a, b in itertools.pairwise(bounds)]
    assert sum(len(c) for c in chunks) == len(audio)
    assert _segments(VadSegmenter(vad), chunks) == _segments(VadSegmenter(vad), [audio])

