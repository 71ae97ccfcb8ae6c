"""The camera benchmark clips: synthetic scenes at camera resolution, rendered once and cached.

    python -m benchmarks.camera_clips --out runs/camera-clips
    edge-mmer profile --source runs/camera-clips/one-face-720p.mp4 --out runs/profile-720p

``one-face-720p`` (1280x720, a 200 px face), ``one-face-1080p`` (1920x1080, a 260 px face),
``three-people-720p`` (1280x720, faces 220 / 150 / 100 px, one speaks at a time); 30 fps, about
20 s, lighting that drifts; the held-out speakers of the synthetic dataset, espeak-ng speech.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_mmer.synth.demo import labels_path_for
from edge_mmer.synth.scene import SceneSpec, make_scene_clip

CLIPS = {
    "one-face-720p": SceneSpec(size=(1280, 720), face_px=(200,), n_turns=6, seed=1),
    "one-face-1080p": SceneSpec(size=(1920, 1080), face_px=(260,), n_turns=6, seed=2),
    "three-people-720p": SceneSpec(size=(1280, 720), face_px=(220, 150, 100), n_turns=6, seed=3),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="render the camera benchmark clips (cached)")
    ap.add_argument("--out", type=Path, default=Path("runs/camera-clips"))
    args = ap.parse_args(argv)
    for name, spec in CLIPS.items():
        path = args.out / f"{name}.mp4"
        if not labels_path_for(path).is_file():  # the sidecar is written last: a clip without one is partial
            make_scene_clip(path, spec)
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
