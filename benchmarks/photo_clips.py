"""A camera-sized benchmark clip from your own photograph and recording.

The rendered camera clips (:mod:`benchmarks.camera_clips`) have smooth rendered faces on a drawn
room; a photograph has the texture of real skin, hair and a real background, which keeps a Haar
cascade busier. This script places the face of a photograph (as many copies as ``--faces`` gives
heights, slowly swaying) on a background photograph at camera resolution, under light that drifts,
with a recording of speech as the sound track (played twice, with pauses), so
``edge-mmer profile --source`` can measure the loop on real picture content and real speech:

    python -m benchmarks.photo_clips --photo portrait.jpg --background room.jpg --speech talk.flac \\
        --size 1280x720 --faces 160 --out runs/photo-720p.mp4
    edge-mmer profile --source runs/photo-720p.mp4 --runs 3 --out runs/profile-photo-720p

The head and shoulders around the face the Haar cascade finds in the photo (the largest) are cut
out and scaled so the face is ``--faces`` pixels tall. Nothing here is committed: the inputs are
yours, and so is their licence.
"""

from __future__ import annotations

import argparse
import logging
import math
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from edge_mmer.datasets.media import decode_audio
from edge_mmer.features.face import HaarFaceDetector
from edge_mmer.vocab import SAMPLE_RATE

log = logging.getLogger(__name__)

FPS = 30


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1280x720, got {text!r}") from None
    if not (64 <= w <= 7680 and 64 <= h <= 4320) or w % 2 or h % 2:
        raise argparse.ArgumentTypeError(f"expected an even WIDTHxHEIGHT within 64x64..7680x4320, got {text!r}")
    return w, h


def _read(path: Path, what: str) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise SystemExit(f"photo_clips: {what} {path}: not an image OpenCV can read (expected a JPEG or PNG)")
    return img


def head_and_shoulders(photo: np.ndarray, path: Path) -> tuple[np.ndarray, int]:
    """The part of the photograph around its largest face (Haar), and that face's height in it."""
    boxes = HaarFaceDetector(max_side=max(photo.shape[:2])).detect(photo)
    if not boxes:
        raise SystemExit(f"photo_clips: photo {path}: no face found in it (expected a frontal face)")
    b = max(boxes, key=lambda f: f.area)
    x0, y0 = max(0, b.x - b.w), max(0, b.y - b.h // 2)
    x1, y1 = min(photo.shape[1], b.x + 2 * b.w), min(photo.shape[0], b.y + 2 * b.h)
    return photo[y0:y1, x0:x1], b.h


def speech_track(path: Path, gap_s: float = 1.5) -> np.ndarray:
    """The recording twice, with ``gap_s`` of silence before, between and after (float32, 16 kHz)."""
    speech = decode_audio(path, SAMPLE_RATE)
    if speech.size < SAMPLE_RATE:
        raise SystemExit(f"photo_clips: speech {path}: under a second of audio (expected a recording of speech)")
    gap = np.zeros(int(gap_s * SAMPLE_RATE), np.float32)
    return np.concatenate([gap, speech, gap, speech, gap])


def make_photo_clip(out: Path, photo_path: Path, background_path: Path | None, speech_path: Path,
                    size: tuple[int, int], faces: list[int]) -> Path:
    w, h = size
    photo = _read(photo_path, "photo")
    bg = cv2.resize(_read(background_path, "background") if background_path else cv2.blur(photo, (51, 51)), (w, h))
    part, f0 = head_and_shoulders(photo, photo_path)
    tiles = [cv2.resize(part, (max(2, round(part.shape[1] * px / f0)), max(2, round(part.shape[0] * px / f0))),
                        interpolation=cv2.INTER_AREA) for px in faces]
    track = speech_track(speech_path)
    n = int(track.size / SAMPLE_RATE * FPS)
    out.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(out), mode="w", format="mp4") as c:
        vs = c.add_stream("libx264", rate=FPS, options={"crf": "23", "preset": "veryfast"})
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        aus = c.add_stream("aac", rate=SAMPLE_RATE)
        aus.layout = "mono"
        a = 0
        for i in range(n):
            t = i / FPS
            frame = bg.copy()
            for k, tile in enumerate(tiles):  # side by side, each swaying a few pixels
                th, tw = min(tile.shape[0], h), min(tile.shape[1], w)
                cx = (k + 0.5) * w / len(tiles) + 6 * math.sin(2 * math.pi * t / 5 + k)
                x0 = int(min(max(0, cx - tw / 2), w - tw))
                y0 = (h - th) // 2
                frame[y0:y0 + th, x0:x0 + tw] = tile[:th, :tw]
            gain = 1.0 + 0.2 * math.sin(2 * math.pi * t / 7.0)  # the light drifts
            vf = av.VideoFrame.from_ndarray(np.clip(frame * gain, 0, 255).astype(np.uint8), format="bgr24")
            vf.pts, vf.time_base = i, Fraction(1, FPS)
            c.mux(vs.encode(vf))
            until = min(track.size, round((i + 1) / FPS * SAMPLE_RATE))
            while a < until:
                seg = track[a:min(a + 1024, until)]
                af = av.AudioFrame.from_ndarray(seg.reshape(1, -1), format="flt", layout="mono")
                af.sample_rate, af.pts, af.time_base = SAMPLE_RATE, a, Fraction(1, SAMPLE_RATE)
                c.mux(aus.encode(af))
                a += seg.size
        c.mux(vs.encode(None))
        c.mux(aus.encode(None))
    log.info("wrote %s: %dx%d, %d frames, faces %s px", out, w, h, n, faces)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photo", type=Path, required=True, help="a photograph with a frontal face (JPEG, PNG)")
    ap.add_argument("--background", type=Path, help="a photograph for the background (default: the photo, blurred)")
    ap.add_argument("--speech", type=Path, required=True, help="a recording of speech (any format FFmpeg reads)")
    ap.add_argument("--size", type=_size, default=(1280, 720), help="WIDTHxHEIGHT (default 1280x720)")
    ap.add_argument("--faces", default="160", help="comma-separated face heights in pixels, one per person")
    ap.add_argument("--out", type=Path, default=Path("runs/photo-clip.mp4"))
    args = ap.parse_args(argv)
    try:
        faces = [int(v) for v in args.faces.split(",")]
    except ValueError:
        ap.error(f"--faces: expected comma-separated heights in pixels such as 160,110, got {args.faces!r}")
    if not faces or any(not 24 <= f <= args.size[1] for f in faces):
        ap.error(f"--faces: each height must be 24..{args.size[1]} px, got {args.faces!r}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(make_photo_clip(args.out, args.photo, args.background, args.speech, args.size, faces))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
