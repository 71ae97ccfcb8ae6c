"""Speaker attribution on synthetic multi-person scenes of the held-out speakers.

Renders ``--scenes`` scenes (:func:`edge_mmer.synth.scene.make_scene_clip`: 2-3 people, one speaks
at a time, the talking face known from the renderer), cached under ``--cache``, runs each through the
pipeline on the demo bundle (ONNX Runtime CPU) and scores every utterance decision: correct when the
event's ``speaker`` box lies in the tile of the person the renderer made speak. Prints one JSON
object (per scene and overall: decisions, correct, rate, how many fell back to the largest face).

    python -m benchmarks.bench_speakers --scenes 12 --cache runs/bench-scenes
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import av
import numpy as np

from edge_mmer.bundle import read_bundle
from edge_mmer.runtime.chunks import VideoFrame
from edge_mmer.runtime.pipeline import Pipeline, PipelineSettings, run_offline
from edge_mmer.runtime.runners.select import load_runners
from edge_mmer.runtime.settings import DecisionSettings, FaceSettings, repo_demo_dir
from edge_mmer.synth.demo import labels_path_for
from edge_mmer.synth.scene import SceneSpec, make_scene_clip

_FACES = ((220, 150), (200, 160, 120), (260, 110), (180, 180, 140))
_SIZES = ((1280, 720), (1920, 1080))


def scene_specs(n: int, turns: int) -> list[SceneSpec]:
    """``n`` scenes cycling through people counts, face sizes and both camera sizes."""
    return [SceneSpec(size=_SIZES[i % 2], face_px=_FACES[i % len(_FACES)], n_turns=turns, seed=100 + i)
            for i in range(n)]


def decode(path: Path) -> tuple[np.ndarray, list[VideoFrame]]:
    with av.open(str(path)) as c:
        res = av.AudioResampler(format="s16", layout="mono", rate=16000)
        pcm = [g.to_ndarray().reshape(-1) for f in c.decode(audio=0) for g in res.resample(f)]
        pcm += [g.to_ndarray().reshape(-1) for g in res.resample(None)]
    with av.open(str(path)) as c:
        frames = [VideoFrame(float(f.time or 0.0), f.to_ndarray(format="bgr24"), i)
                  for i, f in enumerate(c.decode(video=0))]
    return np.concatenate(pcm).astype(np.int16), frames


def _inside(box: list[int], tile: list[int]) -> bool:
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    return bool(tile[0] <= cx <= tile[0] + tile[2] and tile[1] <= cy <= tile[1] + tile[3])


def score_scene(events: list[dict[str, Any]], truth: dict[str, Any]) -> dict[str, Any]:
    tiles = [p["tile"] for p in truth["people"]]
    rows = []
    for e in events:
        if e["trigger"] != "utterance" or e.get("speaker") is None:
            continue
        u = e["utterance"]
        overlap = [max(0.0, min(u["end_s"], t["end_s"]) - max(u["start_s"], t["start_s"])) for t in truth["timeline"]]
        turn = truth["timeline"][int(np.argmax(overlap))]
        rows.append({"correct": _inside(e["speaker"]["box"], tiles[turn["speaker"]]),
                     "fallback": e["speaker"]["attribution"] == "largest", "score": e["speaker"]["speaking_score"]})
    return {"turns": len(truth["timeline"]), "decisions": len(rows), "correct": sum(r["correct"] for r in rows),
            "fallbacks": sum(r["fallback"] for r in rows)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenes", type=int, default=12)
    ap.add_argument("--turns", type=int, default=5)
    ap.add_argument("--cache", type=Path, default=Path("runs/bench-scenes"))
    ap.add_argument("--bundle", type=Path, default=None)
    args = ap.parse_args(argv)
    bundle = read_bundle(args.bundle or repo_demo_dir() / "bundle")
    networks = load_runners(bundle, backend="onnxruntime", threads=2).networks()
    settings = PipelineSettings(faces=FaceSettings(face_only_interval_s=0.0),
                                decision=DecisionSettings(emit="every"))
    out: dict[str, Any] = {"scenes": []}
    for spec in scene_specs(args.scenes, args.turns):
        name = f"scene-{spec.size[0]}x{spec.size[1]}-{len(spec.face_px)}p-{spec.seed}.mp4"
        clip = args.cache / name
        if not labels_path_for(clip).is_file():  # the sidecar is written last: a clip without one is partial
            make_scene_clip(clip, spec)
        truth = json.loads(labels_path_for(clip).read_text())
        audio, frames = decode(clip)
        networks.reset_states()
        pipe = Pipeline(bundle, networks, dataclasses.replace(settings), session_id="bench")
        events = [e.to_dict() for e in run_offline(pipe, audio, frames)]
        pipe.face_worker.close()  # the networks are shared by the next scene
        out["scenes"].append({"clip": name, **score_scene(events, truth)})
        print(json.dumps(out["scenes"][-1]), file=sys.stderr)
    tot = {k: sum(s[k] for s in out["scenes"]) for k in ("turns", "decisions", "correct", "fallbacks")}
    tot["rate"] = round(tot["correct"] / max(1, tot["decisions"]), 4)
    out["total"] = tot
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
