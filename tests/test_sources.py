"""Sources on real parts: PyAV decoding real files, OpenCV reading real videos, PyAudio capturing from a
virtual ALSA microphone (``tests/virtual_mic.py``), and the command-line parsing of --camera / --mic."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from virtual_mic import DEVICE_NAME, PacedVirtualMic, demo_pcm, unavailable_reason, virtual_mic_env

from edge_mmer.runtime.chunks import AudioChunk, VideoFrame
from edge_mmer.runtime.sources.base import SourceError
from edge_mmer.runtime.sources.camera import CameraSource, redact
from edge_mmer.runtime.sources.factory import audio_source, build_sources, camera_source, media_source
from edge_mmer.runtime.sources.files import MediaFileSource, fixed_chunks, probe_media
from edge_mmer.runtime.sources.microphone import MicrophoneSource, ToMono16k
from edge_mmer.runtime.sources.wav import WavSource

pytest.importorskip("av", reason="PyAV is not installed (pip install edge-mmer[capture])")

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo" / "demo_clip.mp4"
LABELS = json.loads((ROOT / "demo" / "demo_clip.labels.json").read_text())
SR = 16_000
AAC_FRAME_S = 1024 / SR  # the encoder pads the last AAC frame: the decoded track may run this much longer


# -- helpers: real files written with the stdlib and PyAV -----------------------------------------------

def write_wav(path: Path, samples: np.ndarray, rate: int = SR, channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return path


def write_video(path: Path, n_frames: int = 10, fps: int = 10, size: tuple[int, int] = (64, 48)) -> Path:
    """A video-only mp4 (MPEG-4 part 2); frame i is a flat grey of level 20 * i."""
    import av

    w, h = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(n_frames):
            img = np.full((h, w, 3), (20 * i) % 256, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def sine(seconds: float, rate: int = SR, freq: float = 440.0, amp: float = 8000.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def digest(chunks: list) -> list[tuple[str, float, str]]:
    return [(type(c).__name__, c.t,
             hashlib.sha1((c.samples if isinstance(c, AudioChunk) else c.image).tobytes()).hexdigest())
            for c in chunks]


@pytest.fixture(scope="module")
def demo_chunks() -> list:
    with MediaFileSource(DEMO) as source:
        return list(source.chunks())


# -- MediaFileSource on the committed demo clip ------------------------------------------------------

def test_demo_clip_frames_and_audio_match_its_labels(demo_chunks: list) -> None:
    frames = [c for c in demo_chunks if isinstance(c, VideoFrame)]
    audio = [c for c in demo_chunks if isinstance(c, AudioChunk)]
    assert len(frames) == LABELS["n_frames"] == 408
    duration = sum(c.samples.size for c in audio) / SR
    assert LABELS["duration_s"] - 0.001 <= duration <= LABELS["duration_s"] + AAC_FRAME_S
    w, h = LABELS["frame_size"]
    assert all(f.image.shape == (h, w, 3) and f.image.dtype == np.uint8 for f in frames)
    assert [f.index for f in frames] == list(range(len(frames)))
    assert all(abs(f.t - f.index / LABELS["fps"]) < 1e-6 for f in frames)
    # audio: 20 ms chunks on a continuous sample clock, only the last one may be shorter
    assert all(c.sample_rate == SR and c.samples.dtype == np.int16 for c in audio)
    assert all(c.samples.size == 320 for c in audio[:-1]) and 0 < audio[-1].samples.size <= 320
    assert all(c.t == k * 320 / SR for k, c in enumerate(audio))


def test_demo_clip_chunks_come_in_time_order(demo_chunks: list) -> None:
    times = [c.t for c in demo_chunks]
    assert times == sorted(times)
    assert isinstance(demo_chunks[0], AudioChunk) and demo_chunks[0].t == 0.0  # audio first on a tie


def test_demo_clip_is_deterministic(demo_chunks: list) -> None:
    source = MediaFileSource(DEMO)
    with source:
        again = list(source.chunks())
    assert digest(again) == digest(demo_chunks)


def test_demo_clip_audio_only_and_video_only(demo_chunks: list) -> None:
    with MediaFileSource(DEMO, video=False) as s:
        audio = list(s.chunks())
    with MediaFileSource(DEMO, audio=False) as s:
        video = list(s.chunks())
    assert all(isinstance(c, AudioChunk) for c in audio) and all(isinstance(c, VideoFrame) for c in video)
    assert digest(audio) == digest([c for c in demo_chunks if isinstance(c, AudioChunk)])
    assert digest(video) == digest([c for c in demo_chunks if isinstance(c, VideoFrame)])


def test_demo_clip_is_streamed_not_loaded_whole() -> None:
    """The peak memory while streaming the clip stays far below its decoded size (~90 MB of frames)."""
    code = (
        "import resource, sys\n"
        "from edge_mmer.runtime.sources.files import MediaFileSource\n"
        "s = MediaFileSource(sys.argv[1]); s.open(); it = s.chunks()\n"
        "head = [next(it) for _ in range(30)]\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "n = sum(1 for _ in it)\n"
        "print(n, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(DEMO)], capture_output=True, text=True, timeout=120,
                         check=True)
    n, growth_mb = out.stdout.split()
    assert int(n) > 1500
    assert float(growth_mb) < 30, f"streaming the demo clip grew the peak memory by {growth_mb} MB"


# -- MediaFileSource on files written here -------------------------------------------------------------

def test_video_with_a_separate_wav(tmp_path: Path) -> None:
    video = write_video(tmp_path / "v.mp4", n_frames=10, fps=10)
    rng = np.random.default_rng(0)
    speech = rng.integers(-9000, 9000, size=int(1.25 * SR)).astype(np.int16)
    wav = write_wav(tmp_path / "a.wav", speech)
    with media_source(video, audio_path=wav) as source:
        chunks = list(source.chunks())
    audio = [c for c in chunks if isinstance(c, AudioChunk)]
    frames = [c for c in chunks if isinstance(c, VideoFrame)]
    assert np.array_equal(np.concatenate([c.samples for c in audio]), speech)  # 16 kHz mono s16 passes through exactly
    assert len(frames) == 10 and [round(f.t, 6) for f in frames] == [i / 10 for i in range(10)]
    assert [c.t for c in chunks] == sorted(c.t for c in chunks)
    levels = [int(np.median(f.image)) for f in frames]
    assert levels == sorted(levels) and all(abs(level - 20 * i) <= 8 for i, level in enumerate(levels))  # in order


def test_video_without_an_audio_track(tmp_path: Path) -> None:
    video = write_video(tmp_path / "silent.mp4")
    with pytest.raises(SourceError, match=r"silent\.mp4: no audio track"):
        MediaFileSource(video).open()
    with MediaFileSource(video, audio=False) as source:
        assert len(list(source.chunks())) == 10
    assert probe_media(video).has_audio is False


def test_missing_and_undecodable_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"nope\.mp4: no such file"):
        MediaFileSource(tmp_path / "nope.mp4").open()
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00not a video" * 500)
    with pytest.raises(SourceError, match=r"garbage\.mp4: cannot decode"):
        MediaFileSource(garbage).open()
    video = write_video(tmp_path / "v.mp4")
    with pytest.raises(SourceError, match=r"missing\.wav: no such file"):
        MediaFileSource(video, audio_path=tmp_path / "missing.wav").open()


def test_realtime_delivery_follows_the_clock_and_close_stops_it(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "a.wav", sine(0.6))
    source = MediaFileSource(wav, realtime=True, video=False)
    start = time.monotonic()
    with source:
        chunks = list(source.chunks())
    assert time.monotonic() - start >= chunks[-1].t - 0.01  # nothing released before its time

    long_wav = write_wav(tmp_path / "long.wav", sine(20.0))
    for paced in (MediaFileSource(long_wav, realtime=True, video=False), WavSource(long_wav, realtime=True)):
        paced.open()
        got: list = []
        reader = threading.Thread(target=lambda s=paced, out=got: out.extend(s.chunks()))
        reader.start()
        while len(got) < 3:
            time.sleep(0.01)
        paced.close()  # from another thread
        reader.join(5)
        assert not reader.is_alive()
        assert len(got) < 20 * 50  # stopped well before the end of the 20 s file


def test_fixed_chunks_recut_any_block_sizes() -> None:
    samples = np.arange(1000, dtype=np.int16)
    blocks = np.split(samples, [7, 7, 300, 333, 999])
    chunks = list(fixed_chunks(blocks, 1.5, 320))
    assert [c.samples.size for c in chunks] == [320, 320, 320, 40]
    assert np.array_equal(np.concatenate([c.samples for c in chunks]), samples)
    assert [c.t for c in chunks] == [1.5 + k * 320 / SR for k in range(4)]


# -- WavSource -----------------------------------------------------------------------------------------

def test_wav_16k_mono_is_read_exactly(tmp_path: Path) -> None:
    speech = sine(1.01)
    with WavSource(write_wav(tmp_path / "a.wav", speech)) as source:
        chunks = list(source.chunks())
    assert np.array_equal(np.concatenate([c.samples for c in chunks]), speech)
    assert [c.t for c in chunks] == [k * 320 / SR for k in range(len(chunks))]
    assert chunks[-1].samples.size == int(1.01 * SR) % 320


def test_wav_at_another_rate_and_channel_count_is_converted(tmp_path: Path) -> None:
    left = sine(1.0, rate=44_100)
    stereo = np.stack([left, left], axis=1).reshape(-1)
    with WavSource(write_wav(tmp_path / "cd.wav", stereo, rate=44_100, channels=2)) as source:
        got = np.concatenate([c.samples for c in source.chunks()])
    want = sine(1.0)
    assert abs(got.size - want.size) <= 320
    n = min(got.size, want.size) - 400
    corr = np.corrcoef(got[200:n].astype(float), want[200:n].astype(float))[0, 1]
    assert corr >= 0.99


def test_wav_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"empty\.wav: empty"):
        WavSource(write_wav(tmp_path / "empty.wav", np.zeros(0, dtype=np.int16))).open()
    with pytest.raises(SourceError, match=r"absent\.wav: no such file"):
        WavSource(tmp_path / "absent.wav").open()
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    with pytest.raises(SourceError, match=r"bad\.wav: .*expected 16 kHz mono 16-bit PCM"):
        WavSource(bad).open()


# -- CameraSource (OpenCV) -----------------------------------------------------------------------------

def test_camera_reads_a_video_file(tmp_path: Path) -> None:
    video = write_video(tmp_path / "cam.mp4", n_frames=12, fps=10)
    source = CameraSource(str(video))
    assert source.live is False
    with source:
        frames = list(source.chunks())
    assert len(frames) == 12 and source.bad_frames == 0
    assert all(f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8 for f in frames)
    assert [round(f.t, 3) for f in frames] == [round(i / 10, 3) for i in range(12)]


def test_camera_fps_cap_drops_frames(tmp_path: Path) -> None:
    video = write_video(tmp_path / "cam.mp4", n_frames=20, fps=10)
    source = CameraSource(str(video), fps_cap=5)
    with source:
        frames = list(source.chunks())
    assert len(frames) == 10 and source.skipped_frames == 10


def test_unopenable_camera_names_it() -> None:
    with pytest.raises(SourceError, match=r"camera 97: cannot open video device 97 .*--camera 0"):
        CameraSource(97).open()
    with pytest.raises(SourceError, match=r"no such file or device"):
        CameraSource("/nonexistent/clip.mp4").open()
    with pytest.raises(SourceError, match=r"camera pipeline 'videotestsrc num-buffers=0 ! bogus_sink'"):
        CameraSource("videotestsrc num-buffers=0 ! bogus_sink").open()


def test_rtsp_credentials_are_hidden() -> None:
    assert redact("rtsp://admin:s3cret@10.0.0.2:554/stream1") == "rtsp://admin:***@10.0.0.2:554/stream1"
    assert "s3cret" not in CameraSource("rtsp://admin:s3cret@10.0.0.2/x").name


class DamagedCamera(CameraSource):
    """A real OpenCV capture with a damaged frame injected before every third real one."""

    BAD = (None, np.zeros((0, 0, 3), np.uint8), np.zeros((10, 10, 3), np.uint8), np.zeros((48, 64, 3), np.float32),
           np.zeros((48, 64, 5), np.uint8))

    def __init__(self, spec: str) -> None:
        super().__init__(spec)
        self.reads = 0
        self.injected = 0

    def _read(self) -> tuple[bool, np.ndarray | None]:
        self.reads += 1
        if self.reads % 3 == 0:
            self.injected += 1
            return True, self.BAD[self.injected % len(self.BAD)]
        return super()._read()


def test_damaged_frames_are_skipped_and_counted(tmp_path: Path) -> None:
    video = write_video(tmp_path / "cam.mp4", n_frames=15, fps=10)
    source = DamagedCamera(str(video))
    with source:
        frames = list(source.chunks())
    assert len(frames) == 15
    assert source.bad_frames == source.injected >= 5
    assert all(f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8 for f in frames)
    assert [f.index for f in frames] == list(range(15))


def test_camera_close_from_another_thread_ends_the_stream(tmp_path: Path) -> None:
    video = write_video(tmp_path / "cam.mp4", n_frames=200, fps=10)
    source = CameraSource(str(video))
    source.open()
    got: list = []

    def read() -> None:
        for frame in source.chunks():
            got.append(frame)
            time.sleep(0.01)

    reader = threading.Thread(target=read)
    reader.start()
    while len(got) < 3:
        time.sleep(0.01)
    source.close()
    reader.join(5)
    assert not reader.is_alive() and len(got) < 200


# -- MicrophoneSource (PyAudio on a virtual ALSA microphone) ---------------------------------------------

MIC_SCRIPT = r"""
import json, sys
import numpy as np
from edge_mmer.runtime.sources.base import SourceError
from edge_mmer.runtime.sources.microphone import MicrophoneSource, list_input_devices

report = {"devices": list_input_devices()}
for device in sys.argv[2:]:
    source = MicrophoneSource(device)
    with source:
        chunks = []
        for chunk in source.chunks():
            chunks.append(chunk)
            if len(chunks) == int(sys.argv[1]):
                break
    np.concatenate([c.samples for c in chunks]).astype("<i2").tofile(f"captured_{len(report)}.s16")
    report[device] = {"name": source.device_name, "rate": source.device_rate,
                      "sizes": sorted({c.samples.size for c in chunks}),
                      "t_increasing": all(a.t < b.t for a, b in zip(chunks, chunks[1:]))}
try:
    MicrophoneSource("no-such-microphone-xyz").open()
except SourceError as e:
    report["error"] = str(e)
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def mic_capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, np.ndarray]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"virtual ALSA microphone unavailable: {reason}")
    tmp = tmp_path_factory.mktemp("vmic")
    pcm = demo_pcm()[: 2 * 3 * SR]  # the clip's first 3 s
    env = {**os.environ, **virtual_mic_env(tmp, pcm)}
    out = subprocess.run([sys.executable, "-c", MIC_SCRIPT, "150", "vmic", "default"], cwd=tmp, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1]), tmp, np.frombuffer(pcm, dtype="<i2")


def test_microphone_captures_the_virtual_device_exactly(mic_capture: tuple[dict, Path, np.ndarray]) -> None:
    report, tmp, raw = mic_capture
    assert DEVICE_NAME in [name for _, name in report["devices"]]
    by_substring = report["vmic"]
    assert by_substring["name"] == DEVICE_NAME and by_substring["rate"] == SR
    assert by_substring["sizes"] == [320] and by_substring["t_increasing"]
    captured = np.fromfile(tmp / "captured_1.s16", dtype="<i2")
    assert captured.size == 150 * 320
    assert np.array_equal(captured, raw[: captured.size])


def test_microphone_default_is_the_default_input(mic_capture: tuple[dict, Path, np.ndarray]) -> None:
    report, tmp, raw = mic_capture
    assert report["default"]["sizes"] == [320]
    captured = np.fromfile(tmp / "captured_2.s16", dtype="<i2")
    assert np.array_equal(captured, raw[: captured.size])


def test_unknown_microphone_lists_the_input_devices(mic_capture: tuple[dict, Path, np.ndarray]) -> None:
    report, _, _ = mic_capture
    error = report["error"]
    assert "microphone 'no-such-microphone-xyz'" in error
    index = next(i for i, name in report["devices"] if name == DEVICE_NAME)
    assert f"{index}: {DEVICE_NAME}" in error


PACED_SCRIPT = r"""
import json, sys
import numpy as np
from edge_mmer.runtime.sources.microphone import MicrophoneSource

source = MicrophoneSource(sys.argv[1])
with source:
    chunks = []
    for chunk in source.chunks():
        chunks.append(chunk)
        if len(chunks) == 50:
            break
np.concatenate([c.samples for c in chunks]).astype("<i2").tofile("paced.s16")
print(json.dumps({"span_s": chunks[-1].t - chunks[0].t}))
"""


def test_paced_virtual_microphone_delivers_in_real_time(tmp_path: Path) -> None:
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"virtual ALSA microphone unavailable: {reason}")
    pcm = demo_pcm()[: 2 * 2 * SR]
    with PacedVirtualMic(tmp_path, pcm) as mic:
        out = subprocess.run([sys.executable, "-c", PACED_SCRIPT, DEVICE_NAME], cwd=tmp_path,
                             env={**os.environ, **mic.env}, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    captured = np.fromfile(tmp_path / "paced.s16", dtype="<i2")
    assert np.array_equal(captured, np.frombuffer(pcm, dtype="<i2")[: 50 * 320])
    # 50 chunks = 1 s of audio; at most ~128 ms could wait in the pipe before capture began
    assert json.loads(out.stdout.strip().splitlines()[-1])["span_s"] >= 0.75


def test_device_audio_is_downmixed_and_resampled_to_16k() -> None:
    rate = 48_000
    tone = sine(1.0, rate=rate)
    stereo = np.stack([tone, tone], axis=1).reshape(-1)
    convert = ToMono16k(rate, 2)
    got = np.concatenate([convert(block) for block in np.array_split(stereo, 50)])  # 20 ms reads
    want = sine(1.0)
    assert abs(got.size - want.size) <= 64  # the resampler holds back a few samples
    n = min(got.size, want.size)
    shift = want.size - got.size if got.size < want.size else 0
    corr = max(np.corrcoef(got[100:n - 100].astype(float), want[100 + s:n - 100 + s].astype(float))[0, 1]
               for s in range(0, shift + 1))
    assert corr >= 0.99


# -- --camera / --mic parsing ---------------------------------------------------------------------------

def test_camera_and_mic_strings(tmp_path: Path) -> None:
    assert camera_source(None, realtime=True) is None and camera_source("none", realtime=True) is None
    cam = camera_source("0", realtime=True)
    assert isinstance(cam, CameraSource) and cam.spec == 0 and cam.live
    gst = "nvarguscamerasrc ! video/x-raw(memory:NVMM) ! nvvidconv ! appsink"
    assert isinstance(camera_source(gst, realtime=True), CameraSource)
    assert isinstance(camera_source("rtsp://cam.local/stream", realtime=True), CameraSource)
    clip = camera_source(str(DEMO), realtime=True)
    assert isinstance(clip, MediaFileSource) and clip.audio is False and clip.realtime
    assert isinstance(camera_source("/dev/video5", realtime=True), CameraSource)

    assert audio_source(None, realtime=False) is None and audio_source("none", realtime=False) is None
    mic = audio_source("default", realtime=False)
    assert isinstance(mic, MicrophoneSource) and mic.device == "default"
    mic = audio_source("2", realtime=False)
    assert isinstance(mic, MicrophoneSource) and mic.device == 2
    mic = audio_source("USB Audio", realtime=False)
    assert isinstance(mic, MicrophoneSource) and mic.device == "USB Audio"
    assert isinstance(audio_source(str(tmp_path / "speech.wav"), realtime=False), WavSource)
    clip_audio = audio_source(str(DEMO), realtime=False)
    assert isinstance(clip_audio, MediaFileSource) and clip_audio.video is False


def test_build_sources_for_a_video_file(tmp_path: Path) -> None:
    (both,) = build_sources(str(DEMO), "", realtime=False)  # no --mic: the file's own audio track
    assert isinstance(both, MediaFileSource) and both.kind == "av" and both.audio_path is None
    wav = write_wav(tmp_path / "a.wav", sine(0.5))
    (paired,) = build_sources(str(DEMO), str(wav), realtime=False)
    assert isinstance(paired, MediaFileSource) and paired.audio_path == wav and paired.kind == "av"
    for off in (None, "none"):
        (video_only,) = build_sources(str(DEMO), off, realtime=False)
        assert isinstance(video_only, MediaFileSource) and video_only.kind == "video"
    silent = write_video(tmp_path / "silent.mp4")
    (no_track,) = build_sources(str(silent), "", realtime=False)
    assert isinstance(no_track, MediaFileSource) and not no_track.has_audio


def test_build_sources_for_live_devices() -> None:
    live = build_sources("0", "vmic", realtime=True)
    assert [type(s) for s in live] == [CameraSource, MicrophoneSource] and [s.kind for s in live] == ["video", "audio"]
    (mic,) = build_sources(None, "", realtime=True)
    assert isinstance(mic, MicrophoneSource) and mic.device == "default"
    (cam,) = build_sources("rtsp://cam.local/stream", "none", realtime=True)
    assert isinstance(cam, CameraSource) and cam.has_video and not cam.has_audio


# -- one grammar: SourceSpec ------------------------------------------------------------------------------

def test_source_spec_short_forms_and_schemes(tmp_path: Path) -> None:
    from edge_mmer.runtime.sources.spec import CAMERA, DEVICE, FILE, MIC, OFF, PIPELINE, TRACK, URL, SourceSpec

    def kind(text: str | None, role: str) -> tuple[str, object]:
        spec = SourceSpec.parse(text, role)
        return spec.kind, spec.device if spec.kind == DEVICE else spec.target

    assert kind(None, CAMERA) == (OFF, "") and kind(" None ", MIC) == (OFF, "")
    assert kind("0", CAMERA) == (DEVICE, 0) and kind("v4l2://2", CAMERA) == (DEVICE, 2)
    assert kind("/dev/video5", CAMERA) == (DEVICE, "/dev/video5")
    assert kind("v4l2:///dev/video5", CAMERA) == (DEVICE, "/dev/video5")
    assert kind(str(DEMO), CAMERA) == (FILE, str(DEMO)) and kind(f"file://{DEMO}", CAMERA) == (FILE, str(DEMO))
    assert kind("rtsp://cam.local/stream", CAMERA) == (URL, "rtsp://cam.local/stream")
    gst = "videotestsrc ! appsink"
    assert kind(gst, CAMERA) == (PIPELINE, gst) and kind("gst:videotestsrc", CAMERA) == (PIPELINE, "videotestsrc")
    assert kind("", MIC) == (TRACK, "") and kind("default", MIC) == (DEVICE, "default")
    assert kind("3", MIC) == (DEVICE, 3) and kind("USB Audio", MIC) == (DEVICE, "USB Audio")
    assert kind("missing.wav", MIC) == (FILE, "missing.wav")  # a media suffix: a file (opening it says it is missing)
    assert kind("file://speech", MIC) == (FILE, "speech")
    with pytest.raises(SourceError, match="names a camera"):
        SourceSpec.parse("v4l2://0", MIC)
    with pytest.raises(SourceError, match="no path after file://"):
        SourceSpec.parse("file://", CAMERA)
    cam = camera_source("gst:videotestsrc", realtime=True)  # said to be a pipeline, though it has no '!'
    assert isinstance(cam, CameraSource) and cam.pipeline and cam.name == "camera pipeline"


def test_the_loop_and_the_factory_agree_on_what_a_file_is(tmp_path: Path) -> None:
    """A video file without a suffix is still a file: its own audio track is the default microphone,
    for the loop's defaults and for the sources it builds."""
    from edge_mmer.runtime.loop import resolve_inputs
    from edge_mmer.runtime.settings import RuntimeSettings, with_run_overrides

    clip = tmp_path / "clip"
    clip.write_bytes(DEMO.read_bytes())
    inputs = resolve_inputs(with_run_overrides(RuntimeSettings(), bundle=str(ROOT / "demo" / "bundle"),
                                               camera=str(clip)))
    assert inputs.mic == ""  # the file's own track
    (both,) = build_sources(inputs.camera, inputs.mic, realtime=False)
    assert isinstance(both, MediaFileSource) and both.kind == "av" and both.path == clip
    inputs = resolve_inputs(with_run_overrides(RuntimeSettings(), bundle=str(ROOT / "demo" / "bundle"),
                                               camera="/dev/video7"))
    assert inputs.mic == "default"
    inputs = resolve_inputs(with_run_overrides(RuntimeSettings(), bundle=str(ROOT / "demo" / "bundle"),
                                               camera=f"file://{clip}"))
    assert inputs.mic == ""
