"""Face analysis cost per analysed frame on the camera clips, in CPU time of one thread.

``edge-mmer profile`` gives wall-clock figures of the whole loop; on a shared machine they move with
the load. This benchmark feeds the first ``--frames`` frames of each clip (decoded beforehand, so
decoding is not counted) to the runtime's :class:`~edge_mmer.runtime.faces.FaceTracker` with OpenCV
on one thread and reports, per clip, the CPU milliseconds of an analysed frame (mean, p50, p95; the
full detections on the ``redetect_interval_s`` schedule are the p95), of the other frames (mouth
motion only), the face CPU seconds per second of stream, and how many detections were full or
around a track. Repetitions interleave the clips; medians over them are printed as JSON.

    python -m benchmarks.camera_clips --out runs/camera-clips
    python -m benchmarks.bench_faces --clips runs/camera-clips --reps 3
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from edge_mmer.bundle import read_bundle
from edge_mmer.runtime.chunks import VideoFrame
from edge_mmer.runtime.face_tracks import FaceTracks
from edge_mmer.runtime.faces import FaceTracker, make_detector
from edge_mmer.runtime.settings import FaceSettings, repo_demo_dir


def frames_of(path: Path, limit: int) -> list[VideoFrame]:
    with av.open(str(path)) as c:
        out = []
        for i, f in enumerate(c.decode(video=0)):
            if i >= limit:
                break
            out.append(VideoFrame(float(f.time or 0.0), f.to_ndarray(format="bgr24"), i))
    return out


def one_pass(frames: list[VideoFrame], fs: FaceSettings) -> dict[str, Any]:
    cfg = read_bundle(repo_demo_dir() / "bundle").config.face
    det = make_detector(cfg)
    tr = FaceTracker(cfg, det, tracks=FaceTracks(det, fs.detect_max_side, fs.redetect_interval_s,
                                                 fs.track_max_age_s, max_faces=fs.max_faces,
                                                 min_face_px=fs.min_face_px))
    analysed: list[float] = []
    other: list[float] = []
    for f in frames:
        n, t0 = tr.frames_analysed, time.process_time()
        tr.feed(f)
        (analysed if tr.frames_analysed > n else other).append((time.process_time() - t0) * 1000.0)
    a = np.array(analysed)
    stream = frames[-1].t - frames[0].t + (frames[1].t - frames[0].t)
    return {"analysed_mean_ms": float(a.mean()), "analysed_p50_ms": float(np.median(a)),
            "analysed_p95_ms": float(np.percentile(a, 95)), "other_mean_ms": float(np.mean(other)),
            "cpu_s_per_stream_s": float((a.sum() + np.sum(other)) / 1000.0 / stream),
            "full_detections": tr.tracks.full_detections, "roi_detections": tr.tracks.roi_detections,
            "frames": len(frames), "analysed": len(a)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=Path, default=Path("runs/camera-clips"))
    ap.add_argument("--frames", type=int, default=450)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    clips = {"demo": repo_demo_dir() / "demo_clip.mp4"}
    clips.update({p.stem: p for p in sorted(args.clips.glob("*.mp4"))})
    decoded = {k: frames_of(p, args.frames) for k, p in clips.items()}
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in clips}
    for _ in range(args.reps):
        for k, frames in decoded.items():
            runs[k].append(one_pass(frames, FaceSettings()))
    out = {k: {m: float(np.median([r[m] for r in rs])) for m in rs[0]} for k, rs in runs.items()}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
