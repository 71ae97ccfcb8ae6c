"""Bad input: each a clear error (naming the file, key or device and what was expected) or a handled
case, tested through the CLI or the loop.

Covered elsewhere (docs/reliability.md lists them): every byte of every bundle file, path escapes,
symlinks, unknown manifest fields, and arbitrary JSON or bytes as a manifest (core/test_bundle.py);
a TensorRT plan from another device (runtime/test_runners.py::test_plans_for_another_device); bad
setting values, and arbitrary settings tables (runtime/test_settings.py); an unknown / mistyped TOML
key and an unreachable camera index through the CLI
(system/test_end_to_end.py::test_bad_settings_name_the_key); wav conversion and file errors at the
source (runtime/test_sources.py); bad sink specs (runtime/test_sinks.py); NaN / inf / empty / non-1-D
and arbitrary arrays into log_mel (core/test_audio_features.py); audio cut into arbitrary chunks
into the VAD (runtime/test_vad.py).
"""

from __future__ import annotations

import json
import math
import shutil
import struct
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.cli import run_cli as cli
from support.demo import DEMO_BUNDLE, PipelineFactory, demo_av
from support.events import ListSink

from edge_mmer import bundle as B
from edge_mmer.config import demo_config
from edge_mmer.errors import RunError
from edge_mmer.runtime.chunks import AudioChunk, VideoFrame
from edge_mmer.runtime.loop import RuntimeLoop
from edge_mmer.runtime.pipeline import run_offline
from edge_mmer.runtime.settings import RuntimeSettings, with_run_overrides


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
    out: np.ndarray = wide.view(np.uint8).reshape(-1, 4)[:, :3].copy()
    return out


@pytest.mark.parametrize("kind", ["48k-stereo-16bit", "16k-mono-24bit", "16k-mono-float32"])
def test_wav_at_another_rate_channels_or_width_is_converted(tmp_path: Path, speech: np.ndarray, kind: str,
                                                            reference_labels: list[str],
                                                            caplog: pytest.LogCaptureFixture) -> None:
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


def test_empty_chunks_change_nothing_and_float_or_nan_chunks_are_refused(demo_pipeline: PipelineFactory) -> None:
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


def test_clipped_full_scale_audio_gives_finite_scores(demo_pipeline: PipelineFactory) -> None:
    square = np.where(np.sin(np.arange(16000 * 3) * 2 * np.pi * 220 / 16000) >= 0, 32767, -32768).astype(np.int16)
    pipe = demo_pipeline()
    events = pipe.feed(AudioChunk(0.0, np.concatenate([np.zeros(8000, np.int16), square, np.zeros(16000, np.int16)]),
                                  16000)) + pipe.flush()
    for e in events:
        assert all(0.0 <= v <= 1.0 for v in e.scores.values())


# ------------------------------------------------------------------------- frames into the pipeline


def test_zero_size_tiny_and_huge_frames_are_handled(demo_pipeline: PipelineFactory) -> None:
    _, frames = demo_av()
    real = frames[10].image
    pipe = demo_pipeline()
    bad = [np.zeros((0, 0, 3), np.uint8), np.zeros((0, 640, 3), np.uint8), np.zeros((3, 3, 3), np.uint8)]
    for i, img in enumerate(bad):
        assert pipe.feed(VideoFrame(0.1 * i, img, i)) == []
    pipe.face_worker.sync()  # face analysis runs in its own thread: wait for it before reading the tracker
    assert pipe.faces.bad_frames == len(bad) and pipe.stats.snapshot()["counters"]["bad_frames"] == len(bad)
    # a 4K frame (the demo face scaled up) and a 20000-pixel-wide strip are valid frames: analysed, no error
    huge = np.ascontiguousarray(np.repeat(np.repeat(real, 9, axis=0), 12, axis=1))  # 2160 x 3840
    pipe.feed(VideoFrame(1.0, huge, 10))
    pipe.feed(VideoFrame(2.0, np.zeros((8, 20000, 3), np.uint8), 11))
    pipe.face_worker.sync()
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
