"""Tests of the synthetic dataset generator, the demo clip and the synthetic loader.

Real espeak-ng, OpenCV and PyAV; no mocks.  A tiny config keeps this fast.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from edge_mmer.config import LABELS
from edge_mmer.datasets import DatasetError, load_synthetic
from edge_mmer.synth import SynthConfig, generate_dataset, make_demo_clip, make_speakers
from edge_mmer.synth.face import haar_detect, haar_detection_rate
from edge_mmer.synth.speech import (
    SENTENCES,
    EspeakNotFoundError,
    espeak_path,
    make_voices,
    sample_prosody,
    synthesize_utterance,
)

pytestmark = pytest.mark.needs_espeak

TINY = SynthConfig(n_speakers=3, sessions_per_speaker=1, utterances_per_session=3)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tiny_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_dataset(tmp_path_factory.mktemp("ds_a"), TINY, progress=False, workers=1)


# ---------------------------------------------------------------- determinism


def test_same_seed_same_bytes_any_workers(tiny_ds: Path, tmp_path: Path) -> None:
    again = generate_dataset(tmp_path / "b", TINY, progress=False, workers=2)
    assert (tiny_ds / "utterances.jsonl").read_bytes() == (again / "utterances.jsonl").read_bytes()
    assert (tiny_ds / "dataset.json").read_bytes() == (again / "dataset.json").read_bytes()
    wavs = sorted((tiny_ds / "audio").glob("*.wav"))
    assert len(wavs) == 9
    for wav in wavs[:3]:
        assert _sha(wav) == _sha(again / "audio" / wav.name)


def test_different_seed_differs(tiny_ds: Path, tmp_path: Path) -> None:
    other = generate_dataset(
        tmp_path / "c",
        SynthConfig(n_speakers=3, seed=1, sessions_per_speaker=1, utterances_per_session=3),
        progress=False,
        workers=1,
    )
    assert _sha(tiny_ds / "utterances.jsonl") != _sha(other / "utterances.jsonl")
    a = sorted((tiny_ds / "audio").glob("*.wav"))[0]
    assert _sha(a) != _sha(other / "audio" / a.name)


# ---------------------------------------------------------------- layout and formats


def test_metadata_and_speaker_independent_split(tiny_ds: Path) -> None:
    meta = json.loads((tiny_ds / "dataset.json").read_text())
    assert meta["synthetic"] is True
    assert meta["generator"] == "edge-mmer synthetic"
    assert meta["labels"] == list(LABELS)
    assert meta["seed"] == 0
    rows = [json.loads(line) for line in (tiny_ds / "utterances.jsonl").read_text().splitlines()]
    assert len(rows) == 9
    split_of: dict[str, set[str]] = {}
    for r in rows:
        split_of.setdefault(r["speaker"], set()).add(r["split"])
    assert all(len(s) == 1 for s in split_of.values()), split_of
    assert {next(iter(s)) for s in split_of.values()} == {"train", "val", "test"}
    declared = {s["id"]: s["split"] for s in meta["speakers"]}
    assert all(declared[r["speaker"]] == r["split"] for r in rows)


def test_wav_and_video_match_duration(tiny_ds: Path) -> None:
    import cv2

    rows = [json.loads(line) for line in (tiny_ds / "utterances.jsonl").read_text().splitlines()]
    for r in rows:
        with wave.open(str(tiny_ds / r["audio"]), "rb") as wf:
            assert wf.getframerate() == 16000
            assert wf.getnchannels() == 1
            assert wf.getsampwidth() == 2
            assert wf.getnframes() / 16000 == pytest.approx(r["duration_s"], abs=1e-3)
        assert 0.8 < r["duration_s"] < 8.0
        cap = cv2.VideoCapture(str(tiny_ds / r["video"]))
        n = 0
        while cap.read()[0]:
            n += 1
        cap.release()
        assert abs(n - r["duration_s"] * TINY.fps) <= 2, (r["id"], n, r["duration_s"])
        assert n == r["n_frames"]


# ---------------------------------------------------------------- faces


def test_haar_detects_rendered_faces_all_classes() -> None:
    stats = haar_detection_rate(n_identities=5, frames_per_label=3, seed=11)
    assert stats.n_frames == 5 * 3 * len(LABELS)
    assert stats.rate >= 0.95, stats.per_label
    assert set(stats.per_label) == set(LABELS)


def test_haar_detects_faces_in_dataset_videos(tiny_ds: Path) -> None:
    ds = load_synthetic(tiny_ds)
    hits = total = 0
    for utt in ds.utterances():
        frames = utt.load_frames(max_frames=4)
        assert len(frames) == 4
        assert frames[0].shape == (240, 320, 3) and frames[0].dtype == np.uint8
        for f in frames:
            hits += int(len(haar_detect(f)) > 0)
            total += 1
    assert hits / total >= 0.95


# ---------------------------------------------------------------- prosody


def _f0_rms_centroid(audio: np.ndarray) -> tuple[float, float, float]:
    import librosa

    f0, voiced, _ = librosa.pyin(audio.astype(np.float64), fmin=50.0, fmax=600.0, sr=16000, frame_length=1024)
    f0_med = float(np.nanmedian(f0[voiced]))
    rms_db = float(20.0 * np.log10(np.sqrt(np.mean(audio.astype(np.float64) ** 2))))
    centroid = float(librosa.feature.spectral_centroid(y=audio, sr=16000).mean())
    return f0_med, rms_db, centroid


def test_class_prosody_is_measurable() -> None:
    voice = make_voices(2, np.random.default_rng(3))[1]
    stats: dict[str, list[tuple[float, float, float, float]]] = {}
    for label in ("neutral", "happy", "sad", "angry", "disgust"):
        rng = np.random.default_rng(42)
        for text in SENTENCES[:3]:
            s = synthesize_utterance(text, label, voice, rng)
            f0, rms, cent = _f0_rms_centroid(s.clean)
            stats.setdefault(label, []).append((f0, rms, cent, s.duration_s))
    m = {k: np.mean(np.asarray(v), axis=0) for k, v in stats.items()}
    # happy: higher pitch, louder, faster than sad
    assert m["happy"][0] > 1.2 * m["sad"][0], m
    assert m["happy"][1] > m["sad"][1] + 4.0, m
    assert m["sad"][3] > 1.15 * m["happy"][3], m
    # angry: louder and brighter (harsh) than neutral
    assert m["angry"][1] > m["neutral"][1] + 3.0, m
    assert m["angry"][2] > 1.1 * m["neutral"][2], m
    # disgust is deliberately close to neutral in the voice
    assert abs(m["disgust"][0] - m["neutral"][0]) < 0.5 * abs(m["happy"][0] - m["sad"][0]), m


def test_prosody_varies_per_utterance() -> None:
    voice = make_voices(1, np.random.default_rng(0))[0]
    rng = np.random.default_rng(0)
    draws = [sample_prosody("happy", voice, rng) for _ in range(5)]
    assert len({(d.pitch, d.speed, round(d.snr_db, 3)) for d in draws}) == 5


def test_missing_espeak_has_install_hint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EspeakNotFoundError, match="apt-get install espeak-ng"):
        espeak_path()


# ---------------------------------------------------------------- loader


def test_loader_returns_sessions_ordered(tiny_ds: Path, tmp_path: Path) -> None:
    root = shutil.copytree(tiny_ds, tmp_path / "shuffled")
    lines = (root / "utterances.jsonl").read_text().splitlines()
    (root / "utterances.jsonl").write_text("\n".join(reversed(lines)) + "\n")
    ds = load_synthetic(root)
    assert ds.labels == LABELS
    assert len(ds) == 9
    for split in ("train", "val", "test"):
        sessions = ds.sessions(split)
        assert len(sessions) == 1
        assert [u.index for u in sessions[0]] == [0, 1, 2]
        assert all(u.split == split for u in sessions[0])
    utt = ds.utterances("test")[0]
    assert utt.label_index == LABELS.index(utt.label)
    audio = utt.load_audio()
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert audio.shape[0] / 16000 == pytest.approx(utt.duration_s, abs=1e-3)
    assert float(np.abs(audio).max()) <= 1.0
    speakers = {u.speaker: u.split for u in ds.utterances()}
    assert len(speakers) == 3 and len(set(speakers.values())) == 3


def test_loader_errors_name_file_and_field(tiny_ds: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"dataset\.json"):
        load_synthetic(tmp_path)

    root = shutil.copytree(tiny_ds, tmp_path / "bad")
    jsonl = root / "utterances.jsonl"
    good = jsonl.read_text()
    lines = good.splitlines()

    jsonl.write_text(lines[0] + "\n{not json\n")
    with pytest.raises(DatasetError, match=r"utterances\.jsonl:2: not valid JSON"):
        load_synthetic(root)

    row = json.loads(lines[1])
    del row["label"]
    jsonl.write_text(lines[0] + "\n" + json.dumps(row) + "\n")
    with pytest.raises(DatasetError, match=r"utterances\.jsonl:2: missing field 'label'"):
        load_synthetic(root)

    row = json.loads(lines[1])
    row["label"] = "bored"
    jsonl.write_text(json.dumps(row) + "\n")
    with pytest.raises(DatasetError, match=r"utterances\.jsonl:1: field 'label'"):
        load_synthetic(root)

    jsonl.write_text(good)
    first = json.loads(lines[0])
    wav = root / first["audio"]
    wav.unlink()
    with pytest.raises(DatasetError, match=rf"field 'audio'.*{wav.name}"):
        load_synthetic(root)

    # a wav with the wrong rate: the error names the file when loading audio
    with wave.open(str(wav), "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(8000)
        wf.writeframes(np.zeros(800, dtype="<i2").tobytes())
    utt = next(u for u in load_synthetic(root).utterances() if u.id == first["id"])
    with pytest.raises(DatasetError, match=rf"{wav.name}.*8000 Hz"):
        utt.load_audio()

    meta = json.loads((root / "dataset.json").read_text())
    del meta["labels"]
    (root / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match=r"dataset\.json: missing field 'labels'"):
        load_synthetic(root)


def test_loader_is_torch_free() -> None:
    import subprocess

    code = (
        "import sys; import edge_mmer.datasets.synthetic; "
        "assert 'torch' not in sys.modules, 'torch imported'; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_config_validation() -> None:
    assert SynthConfig().split_speakers == (10, 3, 3)
    assert SynthConfig(n_speakers=5).split_speakers == (3, 1, 1)
    assert SynthConfig(n_speakers=3).split_speakers == (1, 1, 1)
    with pytest.raises(ValueError, match="split_speakers"):
        SynthConfig(n_speakers=4, split_speakers=(3, 3, 3))
    with pytest.raises(ValueError, match="sample_rate"):
        SynthConfig(sample_rate=22050)
    speakers = make_speakers(SynthConfig())
    assert [s.split for s in speakers].count("test") == 3
    assert len({s.voice.voice for s in speakers}) == 16


# ---------------------------------------------------------------- demo clip


def test_demo_clip_decodes_with_both_streams(tmp_path: Path) -> None:
    import av

    clip = make_demo_clip(tmp_path / "demo.mp4", seed=0)
    assert clip.is_file() and clip.stat().st_size < 2_000_000
    sidecar = json.loads((tmp_path / "demo.labels.json").read_text())
    assert sidecar["synthetic"] is True
    test_speakers = {s.id for s in make_speakers(SynthConfig(seed=0)) if s.split == "test"}
    assert sidecar["speaker"] in test_speakers
    timeline = sidecar["timeline"]
    assert 8 <= len(timeline) <= 10
    assert set(LABELS) <= {seg["label"] for seg in timeline}
    for a, b in itertools.pairwise(timeline):
        assert a["label"] != b["label"]
        assert 0.55 <= b["start_s"] - a["end_s"] <= 1.55
    assert all(seg["start_s"] < seg["end_s"] <= sidecar["duration_s"] for seg in timeline)
    assert 18.0 <= sidecar["duration_s"] <= 35.0

    with av.open(str(clip)) as container:
        kinds = {s.type: s.codec_context.name for s in container.streams}
        assert kinds == {"video": "h264", "audio": "aac"}
        frames = [f for f in container.decode(video=0)]
    assert abs(len(frames) - sidecar["n_frames"]) <= 1
    assert frames[0].width == 320 and frames[0].height == 240
    with av.open(str(clip)) as container:
        n_samples = 0
        rates = set()
        layouts = set()
        for f in container.decode(audio=0):
            n_samples += f.samples
            rates.add(f.sample_rate)
            layouts.add(f.layout.name)
    assert rates == {16000} and layouts == {"mono"}
    assert n_samples / 16000 == pytest.approx(sidecar["duration_s"], abs=0.2)
    # the face is visible throughout, speech or silence
    sampled = frames[:: max(1, len(frames) // 20)]
    detected = sum(len(haar_detect(f.to_ndarray(format="bgr24"))) > 0 for f in sampled)
    assert detected / len(sampled) >= 0.95


@pytest.mark.needs_espeak
def test_scene_clip_two_people_one_speaks_at_a_time(tmp_path: Path) -> None:
    """A small camera scene: the sidecar's turns alternate speakers of the held-out split, and the
    frames are the asked size with both faces where the sidecar says (found by the Haar cascade)."""
    import av

    from edge_mmer.synth.scene import SceneSpec, make_scene_clip

    clip = make_scene_clip(tmp_path / "s.mp4", SceneSpec(size=(640, 360), face_px=(150, 120), n_turns=2, seed=5))
    truth = json.loads(clip.with_name("s.labels.json").read_text())
    turns = truth["timeline"]
    assert len(turns) == 2 and turns[0]["speaker"] != turns[1]["speaker"]
    assert all(p["split"] == "test" for p in truth["people"]) and truth["frame_size"] == [640, 360]
    with av.open(str(clip)) as c:
        frame = next(f for i, f in enumerate(c.decode(video=0)) if i == 10).to_ndarray(format="bgr24")
    assert frame.shape == (360, 640, 3)
    found = haar_detect(frame)
    for x, y, w, h in (p["tile"] for p in truth["people"]):
        assert any(x <= fx + fw / 2 <= x + w and y <= fy + fh / 2 <= y + h for fx, fy, fw, fh in found)
