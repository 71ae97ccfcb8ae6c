"""The photo-clip builder: a clip of camera size from a photograph and a recording, faces at the asked size."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from support.demo import demo_av

from benchmarks.photo_clips import main
from edge_mmer.features.face import HaarFaceDetector
from edge_mmer.runtime.settings import repo_demo_dir


def test_a_clip_from_a_photo_and_a_recording(tmp_path: Path) -> None:
    _, frames = demo_av()
    photo = tmp_path / "face.png"
    cv2.imwrite(str(photo), frames[0].image)
    out = tmp_path / "clip.mp4"
    assert main(["--photo", str(photo), "--speech", str(repo_demo_dir() / "demo_clip.mp4"), "--size", "640x360",
                 "--faces", "120,90", "--out", str(out)]) == 0
    with av.open(str(out)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert (v.codec_context.width, v.codec_context.height) == (640, 360) and a.codec_context.sample_rate == 16000
        first = next(c.decode(video=0)).to_ndarray(format="bgr24")
    faces = sorted(b.h for b in HaarFaceDetector(max_side=640, min_size=(30, 30)).detect(first))
    assert len(faces) == 2 and abs(faces[0] - 90) <= 20 and abs(faces[1] - 120) <= 25


def test_bad_inputs_are_named(tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.zeros((64, 64, 3), np.uint8))
    speech = str(repo_demo_dir() / "demo_clip.mp4")
    with pytest.raises(SystemExit, match=r"photo .*blank.png: no face found"):
        main(["--photo", str(blank), "--speech", speech, "--out", str(tmp_path / "x.mp4")])
    with pytest.raises(SystemExit, match=r"photo .*nope.jpg: not an image"):
        main(["--photo", str(tmp_path / "nope.jpg"), "--speech", speech, "--out", str(tmp_path / "x.mp4")])
    with pytest.raises(SystemExit):
        main(["--photo", str(blank), "--speech", speech, "--size", "1281x720"])
