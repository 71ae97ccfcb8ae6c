"""Faces at camera resolution, on real frames of the demo clip placed in camera-sized scenes:
downscaled detection mapped back, tracks with stable ids, the detection schedule, speaker attribution
by audio-visual synchrony, and bad camera frames (another size mid-stream, a face at the border, 0 or
30 faces, 4K, gray, BGRA)."""

from __future__ import annotations

import dataclasses
import functools
import logging

import cv2
import jsonschema
import numpy as np
import pytest
from support.demo import PipelineFactory, demo_av, demo_timeline

from edge_mmer.config import demo_config
from edge_mmer.features.face import HaarFaceDetector
from edge_mmer.runtime.chunks import VideoFrame
from edge_mmer.runtime.events import load_schema
from edge_mmer.runtime.face_tracks import FaceTracks
from edge_mmer.runtime.faces import FaceTracker
from edge_mmer.runtime.pipeline import PipelineSettings, run_offline
from edge_mmer.runtime.settings import DecisionSettings, FaceSettings

FACE = demo_config().face


@functools.lru_cache(maxsize=1)
def detector() -> HaarFaceDetector:
    return HaarFaceDetector()


def tracker(**kw: int) -> FaceTracker:
    det = detector()
    return FaceTracker(FACE, det, 5.0, tracks=FaceTracks(det, **kw))


def scene(faces: list[tuple[np.ndarray, int, int]], size: tuple[int, int] = (1280, 720)) -> np.ndarray:
    """Demo frames (320x240, one face) pasted at (x, y) on a gray canvas of ``size``, clipped at its border."""
    w, h = size
    img = np.full((h, w, 3), 90, np.uint8)
    for tile, x, y in faces:
        x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + tile.shape[1]), min(h, y + tile.shape[0])
        img[y0:y1, x0:x1] = tile[y0 - y: y1 - y, x0 - x: x1 - x]
    return img


def test_detection_at_720p_is_downscaled_mapped_back_and_tracked() -> None:
    _, frames = demo_av()
    tr = tracker()
    for i in range(0, 45):  # 3 s of the demo at its frame rate, the face at (700, 300) of a 1280x720 frame
        tr.feed(VideoFrame(frames[i].t, scene([(frames[i].image, 700, 300)]), i))
    obs = list(tr._obs)
    assert len(obs) == tr.frames_analysed >= 14
    ids = {tid for o in obs for tid, _, _ in o.people}
    assert ids == {1}  # one face, one track id throughout
    box = obs[-1].people[0][1]
    assert 700 <= box.x < box.x + box.w <= 700 + 320 and 300 <= box.y < box.y + box.h <= 300 + 240
    # full detections only on the schedule of the stream clock (every 2 s: at 0 s and 2 s), tracked between
    # (a region's detection looks twice when the first look misses)
    assert tr.tracks.full_detections == 2 and tr.tracks.roi_detections >= tr.frames_analysed - 2
    crops = [o.crop for o in obs if o.crop is not None]  # a region's detection can miss a frame; rarely
    assert len(crops) >= 0.8 * len(obs) and all(c.shape == (FACE.crop_size, FACE.crop_size, 3) for c in crops)


def test_frames_of_bad_kinds_are_handled() -> None:
    _, frames = demo_av()
    face = frames[5].image
    tr = tracker()
    cases = [
        scene([(face, 100, 100)]),  # 720p
        scene([(face, 100, 100)], (640, 480)),  # another frame size mid-stream: tracks restart
        cv2.cvtColor(scene([(face, 200, 100)]), cv2.COLOR_BGR2GRAY),  # a gray camera
        cv2.cvtColor(scene([(face, 200, 100)]), cv2.COLOR_BGR2BGRA),  # a BGRA camera
        scene([(face, -120, 500)]),  # a face at the border, partly outside
        np.full((720, 1280, 3), 90, np.uint8),  # no face
        scene([(cv2.resize(face, (960, 720)), 1000, 200)], (3840, 2160)),  # a 4K frame (faces >= 240 px found)
    ]
    for i, img in enumerate(cases):
        tr.feed(VideoFrame(i * 1.0, img, i))
    assert tr.bad_frames == 0 and tr.frames_analysed == len(cases)
    found = [len(o.people) for o in tr._obs]
    assert found[:4] == [1, 1, 1, 1] and found[5] == 0 and found[6] == 1
    assert all(c.shape == (FACE.crop_size, FACE.crop_size, 3) for o in tr._obs for _, _, c in o.people)
    big = tr._obs[6].people[0][1]
    assert big.x >= 1000 and big.x + big.w <= 1960  # found on the downscaled 4K copy, mapped back
    assert tr.tracks.tracks[0].id > 1  # the size changes restarted the tracks with new ids


def test_a_small_face_at_1080p_is_found_and_followed() -> None:
    """A face about 100 px tall at 1920x1080: below what a 640 px copy shows the cascade at its default
    minimum size (40 px there = 120 px here), found because the scan looks for faces.min_face_px."""
    _, frames = demo_av()
    tr = tracker()
    for i in range(0, 45, 3):
        tile = cv2.resize(frames[i].image, (240, 180))  # the demo face, about 95-110 px tall
        tr.feed(VideoFrame(frames[i].t, scene([(tile, 900, 500)], (1920, 1080)), i))
    found = [o.people[0][1] for o in tr._obs if o.people]
    assert len(found) >= 0.8 * tr.frames_analysed and {tid for o in tr._obs for tid, _, _ in o.people} == {1}
    assert all(80 <= b.h <= 180 and b.x >= 900 and b.x + b.w <= 1140 for b in found)


def test_detection_cost_is_bounded_by_the_schedule_with_no_one_in_view(caplog: pytest.LogCaptureFixture) -> None:
    """No face in view: a full detection on each slot of the schedule only, not on every analysed frame
    (a kiosk with nobody in front of it costs the same every second); a 4K camera says which faces it
    cannot see."""
    tr = tracker()
    empty = np.full((720, 1280, 3), 90, np.uint8)
    for i in range(90):  # 3 s at 30 fps: 15 analysed frames at 5 fps
        tr.feed(VideoFrame(i / 30, empty, i))
    assert tr.frames_analysed == 15 and tr.tracks.full_detections == 2 and tr.tracks.roi_detections == 0
    with caplog.at_level(logging.WARNING, logger="edge_mmer.runtime.face_tracks"):
        tr.feed(VideoFrame(3.0, np.full((2160, 3840, 3), 90, np.uint8), 90))
    assert "the smallest face found is 144 px tall" in caplog.text and "detect_max_side to 1152" in caplog.text


def test_a_vga_camera_is_scheduled_and_tracked_too() -> None:
    """640x480 is no larger than detect_max_side, but detecting it whole on every analysed frame costs
    tens of milliseconds on a photographed scene: it is scheduled and followed like a larger frame
    (only frames up to 320 px, the demo clip's size, are detected whole every time)."""
    _, frames = demo_av()
    tr = tracker()
    for i in range(45):  # 3 s
        tr.feed(VideoFrame(frames[i].t, scene([(frames[i].image, 200, 150)], (640, 480)), i))
    assert tr.frames_analysed >= 14 and tr.tracks.full_detections == 2
    assert sum(bool(o.people) for o in tr._obs) >= 0.8 * tr.frames_analysed
    demo = tracker()
    for i in range(15):
        demo.feed(VideoFrame(frames[i].t, frames[i].image, i))  # 320x240: whole, every analysed frame
    assert demo.tracks.full_detections == demo.frames_analysed and demo.tracks.roi_detections == 0


def test_haar_find_checks_its_input() -> None:
    with pytest.raises(ValueError, match="gray uint8"):
        detector().find(np.zeros((64, 64, 3), np.uint8), 24)
    assert detector().find(np.full((64, 64), 90, np.uint8), 24, 48) == []


def test_thirty_faces_keep_the_largest_max_faces() -> None:
    _, frames = demo_av()
    small = cv2.resize(frames[5].image, (213, 160))
    tiles = [(small, 213 * (i % 6), 160 * (i // 6)) for i in range(30)]
    img = scene(tiles, (1280, 800))
    tr = tracker(detect_max_side=1280, max_faces=8)
    tr.feed(VideoFrame(0.0, img, 0))
    assert 1 <= len(tr._obs[0].people) <= 8


def two_people(audio_frames: tuple[np.ndarray, tuple[VideoFrame, ...]], talker_left: bool) -> list[VideoFrame]:
    """The demo's talking face beside a still copy of its first frame, 1280x720."""
    _, frames = audio_frames
    still = frames[0].image
    out = []
    for f in frames:
        a, b = (f.image, still) if talker_left else (still, f.image)
        out.append(VideoFrame(f.t, scene([(a, 120, 240), (b, 800, 240)]), f.index))
    return out


def test_the_speaker_is_the_face_whose_mouth_follows_the_voice(demo_pipeline: PipelineFactory) -> None:
    """The talking face on the right (not the first track found): each utterance is attributed to it."""
    talker_left = False
    audio, frames = demo_av()
    n = 2  # the first two sentences
    end = demo_timeline()[n - 1]["end_s"] + 0.8
    clip = [f for f in two_people((audio, frames), talker_left) if f.t <= end]
    settings = PipelineSettings(faces=FaceSettings(face_only_interval_s=0.0, people=True),
                                decision=DecisionSettings(emit="every"))
    events = [e.to_dict() for e in run_offline(demo_pipeline(settings), audio[: int(end * 16000)], clip)]
    assert len(events) == n
    schema = load_schema()
    for e in events:
        jsonschema.validate(e, schema)
        sp = e["speaker"]
        centre = sp["box"][0] + sp["box"][2] / 2
        assert (centre < 640) == talker_left, sp
        assert sp["attribution"] == "sync" and sp["speaking_score"] > 0.2
        assert [p["track_id"] for p in e["people"]] != [sp["track_id"]] and e["people"][0]["face"] is not None


def test_the_worker_streams_as_offline_on_a_camera_sized_two_person_clip(demo_pipeline: PipelineFactory) -> None:
    audio, frames = demo_av()
    end = demo_timeline()[1]["end_s"] + 0.8
    clip = [f for f in two_people((audio, frames), True) if f.t <= end]
    pcm = audio[: int(end * 16000)]
    settings = PipelineSettings(decision=DecisionSettings(emit="every"))
    offline = [e.to_dict() for e in run_offline(demo_pipeline(dataclasses.replace(settings)), pcm, clip)]
    pipe = demo_pipeline(settings)
    from edge_mmer.runtime.chunks import AudioChunk

    streamed = []
    step = 1600  # 0.1 s of audio, then the frames up to its end: a camera and a microphone interleaved
    k = 0
    for a in range(0, len(pcm), step):
        t_end = (a + step) / 16000
        while k < len(clip) and clip[k].t < t_end:
            streamed += pipe.feed(clip[k])
            k += 1
        streamed += pipe.feed(AudioChunk(a / 16000, pcm[a: a + step], 16000))
    streamed += pipe.flush()
    drop = ("wall_time", "decision_latency_ms")
    assert [{k: v for k, v in e.to_dict().items() if k not in drop} for e in streamed] == \
        [{k: v for k, v in e.items() if k not in drop} for e in offline]
    assert len(offline) == 2


def test_the_face_worker_is_lossless_for_files_and_drops_oldest_live() -> None:
    """Frames submitted faster than they are analysed (1080p, every frame analysed): a file source
    loses none, a live source drops its oldest and counts it; neither stalls."""
    from edge_mmer.runtime.face_worker import FaceWorker
    from edge_mmer.runtime.stats import RuntimeStats

    _, frames = demo_av()
    img = scene([(frames[5].image, 600, 300)], (1920, 1080))
    for lossless in (True, False):
        det = detector()
        tr = FaceTracker(FACE, det, 60.0, tracks=FaceTracks(det, redetect_interval_s=0.0))
        stats = RuntimeStats()
        worker = FaceWorker(tr, stats, lossless=lossless)
        for i in range(24):
            worker.submit(VideoFrame(i / 30, img, i))
        worker.sync()
        worker.close()
        counters = stats.snapshot()["counters"]
        if lossless:
            assert tr.frames_seen == 24 and worker.dropped == 0
        else:
            assert worker.dropped > 0 and counters["face_frames_dropped"] == worker.dropped
            assert tr.frames_seen == 24 - worker.dropped
