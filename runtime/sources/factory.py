"""From the command line's ``--camera`` / ``--mic`` strings to sources.

``--camera``: ``0`` (device index) | ``/dev/video1`` | ``clip.mp4`` | ``rtsp://…`` / ``http://…`` |
``"<gst pipeline> ! appsink"`` | ``none``.
``--mic``: ``default`` | ``2`` (device index) | ``USB`` (part of a device name) | ``speech.wav`` (or any
audio/video file: its audio track) | ``none``.

A video file as the camera with no ``--mic`` (``mic=""``) means the file's own audio track: one
:class:`MediaFileSource` yields both, on the file's clock. A video file with a wav/audio file as the
microphone is one source too (same clock). A live camera and a file, or a file and a live microphone,
are two sources on two clocks (media time vs ``time.monotonic()``); that is allowed, with a warning.
"""

from __future__ import annotations

import logging
from pathlib import Path

from edge_mmer.runtime.sources.base import Source
from edge_mmer.runtime.sources.camera import CameraSource
from edge_mmer.runtime.sources.files import MediaFileSource, probe_media
from edge_mmer.runtime.sources.microphone import MicrophoneSource
from edge_mmer.runtime.sources.wav import WavSource

log = logging.getLogger(__name__)

MEDIA_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac",
                  ".mp4", ".mkv", ".mov", ".avi", ".webm"}


def _off(spec: str | None) -> bool:
    return spec is None or spec.strip().lower() == "none"


def _is_file_spec(spec: str) -> bool:
    p = Path(spec).expanduser()
    return p.is_file() or p.suffix.lower() in MEDIA_SUFFIXES


def camera_source(spec: str | None, realtime: bool, fps_cap: float | None = None) -> Source | None:
    """The video source ``--camera`` names (a video file becomes a video-only :class:`MediaFileSource`)."""
    if spec is None or _off(spec):
        return None
    s = spec.strip()
    if s.isdigit():
        return CameraSource(int(s), fps_cap=fps_cap)
    if "!" in s or "://" in s:
        return CameraSource(s, fps_cap=fps_cap)
    p = Path(s).expanduser()
    if p.is_file():
        return MediaFileSource(p, realtime=realtime, audio=False)
    return CameraSource(s, fps_cap=fps_cap)  # /dev/videoN, or a missing path: open() says what is wrong


def audio_source(spec: str | None, realtime: bool, chunk_ms: float = 20) -> Source | None:
    """The audio source ``--mic`` names."""
    if spec is None or _off(spec):
        return None
    s = spec.strip()
    if s.lower() == "default":
        return MicrophoneSource("default", chunk_ms=chunk_ms)
    if s.isdigit():
        return MicrophoneSource(int(s), chunk_ms=chunk_ms)
    if _is_file_spec(s):
        p = Path(s).expanduser()
        if p.suffix.lower() == ".wav":
            return WavSource(p, realtime=realtime, chunk_ms=chunk_ms)
        return MediaFileSource(p, realtime=realtime, audio_chunk_ms=chunk_ms, video=False)
    return MicrophoneSource(s, chunk_ms=chunk_ms)


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
    if isinstance(video, MediaFileSource) and mic is not None and not _off(mic):
        if mic.strip() == "":
            if probe_media(video.path).has_audio:
                return [media_source(video.path, realtime=realtime, chunk_ms=chunk_ms)]
            log.warning("%s has no audio track: video only (give --mic for audio)", video.path)
            return [video]
        if _is_file_spec(mic.strip()):
            return [media_source(video.path, audio_path=Path(mic.strip()).expanduser(), realtime=realtime,
                                 chunk_ms=chunk_ms)]
    audio = audio_source("default" if mic is not None and mic.strip() == "" else mic, realtime, chunk_ms)
    if video is not None and audio is not None and video.live != audio.live:
        log.warning("%s and %s run on different clocks (media time vs time.monotonic()); their times do not line up",
                    video.name, audio.name)
    return [s for s in (video, audio) if s is not None]
