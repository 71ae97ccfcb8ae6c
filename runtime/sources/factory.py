"""From the command line's ``--camera`` / ``--mic`` strings to sources.

The strings are parsed by :meth:`~edge_mmer.runtime.sources.spec.SourceSpec.parse` (the forms are
listed there); each kind of spec has one builder in :data:`CAMERA_BUILDERS` / :data:`MIC_BUILDERS`.

A video file as the camera with no ``--mic`` (``mic=""``) means the file's own audio track: one
:class:`MediaFileSource` yields both, on the file's clock. A video file with a wav/audio file as the
microphone is one source too (same clock). A live camera and a file, or a file and a live microphone,
are two sources on two clocks (media time vs ``time.monotonic()``); that is allowed, with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge_mmer.runtime.sources.base import Source
from edge_mmer.runtime.sources.camera import CameraSource
from edge_mmer.runtime.sources.files import MediaFileSource, probe_media
from edge_mmer.runtime.sources.microphone import MicrophoneSource
from edge_mmer.runtime.sources.spec import (
    CAMERA,
    DEVICE,
    FILE,
    MEDIA_SUFFIXES,
    MIC,
    OFF,
    PIPELINE,
    TRACK,
    URL,
    SourceSpec,
)
from edge_mmer.runtime.sources.wav import WavSource

__all__ = ["CAMERA_BUILDERS", "MEDIA_SUFFIXES", "MIC_BUILDERS", "audio_source", "build_sources", "camera_source",
           "media_source"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildOptions:
    realtime: bool = False  # pace file sources to real time
    chunk_ms: float = 20  # audio chunk length
    fps_cap: float | None = None  # at most this many camera frames per second


Builder = Callable[[SourceSpec, BuildOptions], Source]


def _audio_file(spec: SourceSpec, o: BuildOptions) -> Source:
    if spec.path.suffix.lower() == ".wav":
        return WavSource(spec.path, realtime=o.realtime, chunk_ms=o.chunk_ms)
    return MediaFileSource(spec.path, realtime=o.realtime, audio_chunk_ms=o.chunk_ms, video=False)


CAMERA_BUILDERS: dict[str, Builder] = {
    DEVICE: lambda spec, o: CameraSource(spec.device, fps_cap=o.fps_cap),
    URL: lambda spec, o: CameraSource(spec.target, fps_cap=o.fps_cap),
    PIPELINE: lambda spec, o: CameraSource(spec.target, fps_cap=o.fps_cap, pipeline=True),
    FILE: lambda spec, o: MediaFileSource(spec.path, realtime=o.realtime, audio=False),
}
"""``--camera``: spec kind -> its source."""

MIC_BUILDERS: dict[str, Builder] = {
    DEVICE: lambda spec, o: MicrophoneSource(spec.device, chunk_ms=o.chunk_ms),
    FILE: _audio_file,
}
"""``--mic``: spec kind -> its source (the own-track kind is resolved by :func:`build_sources`)."""


def _build(spec: SourceSpec, options: BuildOptions) -> Source | None:
    if spec.kind == OFF:
        return None
    builders = CAMERA_BUILDERS if spec.role == CAMERA else MIC_BUILDERS
    return builders[spec.kind](spec, options)


def camera_source(spec: str | None, realtime: bool, fps_cap: float | None = None) -> Source | None:
    """The video source ``--camera`` names (a video file becomes a video-only :class:`MediaFileSource`)."""
    return _build(SourceSpec.parse(spec, CAMERA), BuildOptions(realtime=realtime, fps_cap=fps_cap))


def audio_source(spec: str | None, realtime: bool, chunk_ms: float = 20) -> Source | None:
    """The audio source ``--mic`` names (no ``--mic``, ``""``: the default microphone)."""
    parsed = SourceSpec.parse(spec, MIC)
    if parsed.kind == TRACK:
        parsed = SourceSpec.parse("default", MIC)
    return _build(parsed, BuildOptions(realtime=realtime, chunk_ms=chunk_ms))


def media_source(path: str | Path, audio_path: str | Path | None = None, realtime: bool = False,
                 chunk_ms: float = 20) -> MediaFileSource:
    """A video file with its own audio track (or with ``audio_path``'s): both modalities, one clock."""
    return MediaFileSource(path, audio_path=audio_path, realtime=realtime, audio_chunk_ms=chunk_ms)


def build_sources(camera: str | None, mic: str | None, realtime: bool, chunk_ms: float = 20,
                  fps_cap: float | None = None) -> list[Source]:
    """The sources for resolved ``--camera`` / ``--mic`` values: one (a file with its audio) or one per modality.

    ``None`` or ``"none"`` turns a modality off. ``mic=""`` (no ``--mic`` given) means the camera
    file's own audio track when the camera is a video file — video only, with a warning, when it has
    none — and the default microphone otherwise. A video file with an audio file as ``mic`` is one
    source on one clock.
    """
    video = camera_source(camera, realtime, fps_cap)
    mic_spec = SourceSpec.parse(mic, MIC)
    if isinstance(video, MediaFileSource):
        if mic_spec.kind == TRACK:
            if probe_media(video.path).has_audio:
                return [media_source(video.path, realtime=realtime, chunk_ms=chunk_ms)]
            log.warning("%s has no audio track: video only (give --mic for audio)", video.path)
            return [video]
        if mic_spec.kind == FILE:
            return [media_source(video.path, audio_path=mic_spec.path, realtime=realtime, chunk_ms=chunk_ms)]
    audio = audio_source(mic, realtime, chunk_ms)
    if video is not None and audio is not None and video.live != audio.live:
        log.warning("%s and %s run on different clocks (media time vs time.monotonic()); their times do not line up",
                    video.name, audio.name)
    return [s for s in (video, audio) if s is not None]
