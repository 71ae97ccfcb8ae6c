"""Decoded file frames convert to BGR lazily: a region is exactly the whole conversion's pixels there."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from support.demo import demo_av

from edge_mmer.bundle import read_bundle
from edge_mmer.runtime.chunks import VideoFrame
from edge_mmer.runtime.face_tracks import FaceTracks
from edge_mmer.runtime.faces import FaceTracker, make_detector
from edge_mmer.runtime.settings import repo_demo_dir
from edge_mmer.runtime.sources.decoded import DecodedFrame, decoded_frame
from edge_mmer.runtime.sources.files import MediaFileSource

DEMO_CLIP = repo_demo_dir() / "demo_clip.mp4"


def _decoded(path: Path, limit: int) -> list[tuple[DecodedFrame, np.ndarray]]:
    out = []
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i >= limit:
                break
            d = decoded_frame(float(f.time or 0.0), f, i)
            assert isinstance(d, DecodedFrame)
            out.append((d, f.to_ndarray(format="bgr24")))
    return out


def test_regions_equal_the_whole_conversion() -> None:
    rng = np.random.default_rng(0)
    for d, full in _decoded(DEMO_CLIP, 40):
        h, w = full.shape[:2]
        for _ in range(20):
            x0, y0 = int(rng.integers(-5, w)), int(rng.integers(-5, h))
            x1, y1 = x0 + int(rng.integers(1, 90)), y0 + int(rng.integers(1, 60))
            want = full[max(0, y0):max(0, y1), max(0, x0):max(0, x1)]
            np.testing.assert_array_equal(d.region(x0, y0, x1, y1), want)
        np.testing.assert_array_equal(d.image, full)  # the whole picture, on first use
        np.testing.assert_array_equal(d.region(3, 4, 50, 60), full[4:60, 3:50])


def _clip_720p(path: Path) -> Path:
    """A 1280x720 H.264 clip: two demo faces, one moving, one cut by the frame's right border."""
    _, frames = demo_av()
    with av.open(str(path), "w") as c:
        st = c.add_stream("libx264", rate=30)
        st.width, st.height, st.pix_fmt = 1280, 720, "yuv420p"
        for i, f in enumerate(frames[:45]):
            img = np.full((720, 1280, 3), 90, np.uint8)
            img[300:540, 200 + 4 * i:520 + 4 * i] = f.image
            img[100:340, 1050:1280] = f.image[:, :230]
            for packet in st.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                c.mux(packet)
        for packet in st.encode():
            c.mux(packet)
    return path


@pytest.mark.parametrize("clip", ["demo", "720p"])
def test_tracker_sees_the_same_on_decoded_and_converted_frames(clip: str, tmp_path: Path) -> None:
    path = DEMO_CLIP if clip == "demo" else _clip_720p(tmp_path / "two.mp4")
    cfg = read_bundle(repo_demo_dir() / "bundle").config.face
    lazy, eager = (FaceTracker(cfg, make_detector(cfg), tracks=FaceTracks(make_detector(cfg))) for _ in range(2))
    for d, full in _decoded(path, 120):
        lazy.feed(d)
        eager.feed(VideoFrame(d.t, full, d.index))
    assert lazy.frames_analysed == eager.frames_analysed > 0
    if clip == "720p":
        assert lazy.tracks.roi_detections > 0 and len(lazy.tracks.tracks) == 2
    for tid in (1, 2, 3):
        for a, b in zip(lazy.motion.between(tid, 0, 99), eager.motion.between(tid, 0, 99), strict=True):
            np.testing.assert_array_equal(a, b)
    assert len(lazy.motion.between(1, 0, 99)[0]) > 30
    for lo, eo in zip(lazy._obs, eager._obs, strict=True):
        assert [(tid, box) for tid, box, _ in lo.people] == [(tid, box) for tid, box, _ in eo.people]
        for (_, _, a), (_, _, b) in zip(lo.people, eo.people, strict=True):
            np.testing.assert_array_equal(a, b)


def test_file_source_yields_lazy_frames() -> None:
    src = MediaFileSource(DEMO_CLIP, audio=False)
    frames = [c for _, c in zip(range(3), src.chunks(), strict=False)]
    src.close()
    assert all(isinstance(f, DecodedFrame) and f.lazy and f.image.shape == (240, 320, 3) for f in frames)
