"""The training front ends over a dataset: log-mel per utterance and Haar face crops per frame,
exactly as the runtime computes them, in worker processes, through the feature cache.

Per utterance: the waveform the utterance gives (:meth:`speech_audio`: 16 kHz mono, at most
``audio.max_utterance_s`` for media datasets) -> :func:`~edge_mmer.features.audio.log_mel`; the
frames it gives (:meth:`face_frames`: sampled at ``face.analysis_fps``, evenly subsampled to
``face.frames_per_utterance``) -> :class:`~edge_mmer.features.face.HaarFaceDetector` ->
:func:`~edge_mmer.features.face.largest_face` -> :func:`~edge_mmer.features.face.crop_face` with
``face.margin`` -> :func:`~edge_mmer.features.face.resize_face` to ``face.crop_size``.

A media defect found here (a corrupt or overlong clip, a clip without audio) does not stop the
run: the utterance comes back with ``error`` set and training skips and counts it. What a usable
utterance gives the encoders is an :class:`UtteranceInput`. Torch-free.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge_mmer.config import ModelConfig
from edge_mmer.datasets.base import DatasetError, MediaUtterance, even_subsample
from edge_mmer.datasets.cache import CacheEntry, FeatureCache, file_sha256
from edge_mmer.datasets.media import probe
from edge_mmer.features.audio import log_mel
from edge_mmer.features.face import HaarFaceDetector, crop_face, largest_face, resize_face

log = logging.getLogger(__name__)

__all__ = ["ExtractStats", "UtteranceInput", "default_workers", "extract_all", "extract_utterance",
           "front_end_settings"]

FRONTEND_VERSION = 2  # 2: an undecodable or overlong video beside a separate audio file is dropped, not the utterance
DEFAULT_MAX_CLIP_S = 60.0


@dataclass(frozen=True)
class UtteranceInput:
    """One utterance after the front ends: what the encoders see (training, parity, calibration)."""

    uid: str
    label: int
    mel: np.ndarray  # (T, n_mels) float32 log-mel (the encoder normalises with training statistics)
    faces: np.ndarray | None  # (n, S, S, 3) uint8 BGR crops, None when no face was found


@dataclass
class ExtractStats:
    """How the front ends were fed: ``decoded`` utterances went through PyAV, ``cached`` came from
    the feature cache, ``failed`` carry a defect (``reasons``)."""

    decoded: int = 0
    cached: int = 0
    failed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"decoded": self.decoded, "cached": self.cached, "failed": self.failed, "reasons": dict(self.reasons)}


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def front_end_settings(cfg: ModelConfig, detector: HaarFaceDetector, max_clip_s: float | None) -> dict[str, Any]:
    """Everything that changes what the front ends output (the cache key's settings part)."""
    return {
        "frontend_version": FRONTEND_VERSION,
        "audio": {k: getattr(cfg.audio, k) for k in cfg.audio.__dataclass_fields__},
        "face": {k: getattr(cfg.face, k) for k in ("detector", "crop_size", "margin", "analysis_fps",
                                                    "frames_per_utterance")},
        "detector": {"min_size": list(detector.min_size), "scale_factor": detector.scale_factor,
                     "min_neighbors": detector.min_neighbors, "max_side": detector.max_side,
                     "equalize": detector.equalize, "cascade": os.path.basename(detector.cascade_path)},
        "max_clip_s": max_clip_s,
    }


def _reason(exc: Exception) -> str:
    text = str(exc)
    if "file is missing" in text:
        return "missing_clip"
    if "has no audio stream" in text or "no audio samples" in text:
        return "no_audio"
    return "corrupt_clip"


def _frames(utt: Any, cfg: ModelConfig, max_clip_s: float | None) -> list[np.ndarray]:
    """The frames of an utterance whose sound is a separate file: none (audio only, logged) when its
    video cannot be decoded or is longer than ``max_clip_s``."""
    try:
        if max_clip_s is not None:
            info = probe(utt.video_path)
            if info.duration_s is not None and info.duration_s > max_clip_s:
                log.info("%s: video %.1f s > %.0f s: the utterance is audio only", utt.video_path, info.duration_s,
                         max_clip_s)
                return []
        frames: list[np.ndarray] = utt.face_frames(cfg.face, max_s=cfg.audio.max_utterance_s)
    except DatasetError as exc:
        log.info("%s: the video cannot be decoded (%s): the utterance is audio only", utt.video_path, exc)
        return []
    return frames


def extract_utterance(utt: Any, cfg: ModelConfig, detector: HaarFaceDetector,
                      max_clip_s: float | None = None) -> CacheEntry:
    """The front ends over one utterance. For media datasets every failure comes back as
    ``CacheEntry.error`` (``missing_clip``, ``no_audio``, ``corrupt_clip``, ``overlong_clip`` or
    ``front_end_error``) with the file named in ``detail``: one bad file of thousands must not stop
    a run. The synthetic set's errors are raised (its files are generated, a failure is a bug)."""
    if not isinstance(utt, MediaUtterance):
        return _front_ends(utt.speech_audio(cfg.audio), utt.face_frames(cfg.face),
                           getattr(utt, "subsample_crops", False),
                           cfg, detector)

    # a separate audio file (CREMA-D's wav beside its flv) is the utterance: a video that cannot be
    # decoded, or that is far longer than its sound, only loses the face channel
    separate = utt.audio_path is not None and utt.video_path is not None
    try:
        if max_clip_s is not None and utt.start_s is None and utt.end_s is None:
            info = probe(utt.audio_path or utt.video_path)  # type: ignore[arg-type]
            if info.duration_s is not None and info.duration_s > max_clip_s:
                return CacheEntry(None, None, "overlong_clip", f"{info.duration_s:.1f} s > {max_clip_s:.0f} s")
        wave = utt.speech_audio(cfg.audio)
        frames = _frames(utt, cfg, max_clip_s) if separate else utt.face_frames(cfg.face,
                                                                               max_s=cfg.audio.max_utterance_s)
    except DatasetError as exc:
        return CacheEntry(None, None, _reason(exc), str(exc))
    if utt.video_path is not None and not frames and not separate:
        return CacheEntry(None, None, "corrupt_clip", f"{utt.video_path}: no decodable video frames")
    try:
        return _front_ends(wave, frames, utt.subsample_crops, cfg, detector)
    except Exception as exc:  # e.g. non-finite audio from a broken decoder: counted, not raised
        where = utt.video_path or utt.audio_path
        return CacheEntry(None, None, "front_end_error", f"{where}: {type(exc).__name__}: {exc}")


def _front_ends(wave: np.ndarray, frames: list[np.ndarray], subsample_crops: bool, cfg: ModelConfig,
                detector: HaarFaceDetector) -> CacheEntry:
    mel = log_mel(wave, cfg.audio)
    crops = []
    for frame in frames:
        box = largest_face(detector.detect(frame))
        if box is not None:
            crops.append(resize_face(crop_face(frame, box, cfg.face.margin), cfg.face.crop_size))
    if subsample_crops:
        crops = even_subsample(crops, cfg.face.frames_per_utterance)
    return CacheEntry(mel=mel, faces=np.stack(crops) if crops else None)


# ------------------------------------------------------------------------------------- the workers

_DETECTOR: HaarFaceDetector | None = None


def _worker_init() -> None:
    cv2.setNumThreads(1)


def _detector() -> HaarFaceDetector:
    global _DETECTOR
    if _DETECTOR is None:
        _DETECTOR = HaarFaceDetector()
    return _DETECTOR


def _sampling(utt: Any) -> str:
    return f"{type(utt).__module__}.{type(utt).__name__}"


def _window(utt: Any) -> tuple[float | None, float | None]:
    return (getattr(utt, "start_s", None), getattr(utt, "end_s", None))


def _sources(utt: Any) -> list[Path]:
    if hasattr(utt, "sources"):
        return list(utt.sources())
    return [p for p in (getattr(utt, "audio_path", None), getattr(utt, "video_path", None)) if p is not None]


def _task(utt: Any, cfg: ModelConfig, hashes: list[str | None], cache_root: str | None, settings: dict[str, Any] | None,
          max_clip_s: float | None) -> tuple[str, list[str | None], CacheEntry, bool]:
    """Hash the missing sources, look the entry up, else extract and store it. Returns
    (uid, hashes, entry, decoded)."""
    cache = FeatureCache(Path(cache_root), settings or {}, load_index=False) if cache_root is not None else None
    key = None
    if cache is not None:
        srcs = _sources(utt)
        for i, p in enumerate(srcs):
            if hashes[i] is None and p.is_file():
                hashes[i] = file_sha256(p)
        if all(h is not None for h in hashes):
            key = cache.key([str(h) for h in hashes], _window(utt), _sampling(utt))
            hit = cache.get(key)
            if hit is not None:
                return utt.id, hashes, hit, False
    entry = extract_utterance(utt, cfg, _detector(), max_clip_s)
    if cache is not None and key is not None:
        cache.put(key, entry)
    return utt.id, hashes, entry, True


def extract_all(
    utts: Sequence[Any], cfg: ModelConfig, *, cache_dir: Path | None = None, workers: int = 1, progress: bool = False,
    max_clip_s: float | None = DEFAULT_MAX_CLIP_S, desc: str = "front ends",
    on_result: Callable[[str, CacheEntry], None] | None = None,
) -> tuple[dict[str, CacheEntry], ExtractStats]:
    """The front ends over ``utts`` (any order; the result is keyed by utterance id and does not
    depend on ``workers``). Cached entries are loaded in this process; the rest are extracted by
    ``workers`` processes (1 = in this process) and written to the cache as each finishes, so an
    interrupted run resumes where it stopped. ``on_result(uid, entry)`` is called per utterance."""
    detector = _detector()
    settings = front_end_settings(cfg, detector, max_clip_s)
    cache = FeatureCache(cache_dir, settings) if cache_dir is not None else None
    stats = ExtractStats()
    out: dict[str, CacheEntry] = {}
    todo: list[tuple[Any, list[str | None]]] = []
    for utt in utts:
        hashes: list[str | None] = []
        if cache is not None:
            hashes = [cache.known_hash(p) for p in _sources(utt)]
            if hashes and all(h is not None for h in hashes):
                hit = cache.get(cache.key([str(h) for h in hashes], _window(utt), _sampling(utt)))
                if hit is not None:
                    _record(out, stats, utt.id, hit, decoded=False, on_result=on_result)
                    continue
        todo.append((utt, hashes))
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(utts), initial=len(out), desc=desc, leave=False, dynamic_ncols=True, unit="utt")
    root = str(cache.root) if cache is not None else None

    def finish(utt: Any, result: tuple[str, list[str | None], CacheEntry, bool]) -> None:
        uid, hashes, entry, decoded = result
        if cache is not None:
            for p, h in zip(_sources(utt), hashes, strict=False):
                if h is not None:
                    cache.remember(p, h)
        _record(out, stats, uid, entry, decoded=decoded, on_result=on_result)
        if bar is not None:
            bar.update(1)

    try:
        n_workers = max(1, min(int(workers), len(todo)))
        if n_workers == 1:
            for utt, hashes in todo:
                finish(utt, _task(utt, cfg, hashes, root, settings, max_clip_s))
        else:
            ctx = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx, initializer=_worker_init)
            try:
                futures: dict[Future[Any], Any] = {
                    pool.submit(_task, utt, cfg, hashes, root, settings, max_clip_s): utt for utt, hashes in todo}
                for fut in as_completed(futures):
                    finish(futures[fut], fut.result())
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
    finally:
        if bar is not None:
            bar.close()
    return out, stats


def _record(out: dict[str, CacheEntry], stats: ExtractStats, uid: str, entry: CacheEntry, decoded: bool,
            on_result: Callable[[str, CacheEntry], None] | None) -> None:
    out[uid] = entry
    if decoded:
        stats.decoded += 1
    else:
        stats.cached += 1
    if entry.error:
        stats.failed += 1
        stats.reasons[entry.error] = stats.reasons.get(entry.error, 0) + 1
    if on_result is not None:
        on_result(uid, entry)
