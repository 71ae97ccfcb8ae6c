"""One grammar for ``--camera`` and ``--mic``: :meth:`SourceSpec.parse`.

The short forms the command line has always taken, plus optional explicit schemes (after
jetson-utils' ``videoSource`` URIs), so a name that looks like another form can be said plainly:

``--camera``
    ``none`` | ``0`` (a device index) | ``/dev/video1`` | ``clip.mp4`` (an existing file) |
    ``rtsp://…`` / ``http://…`` (any other URL: a network stream) | a GStreamer pipeline (it contains
    ``!``) | explicit: ``file://PATH``, ``v4l2://0`` or ``v4l2:///dev/video1``, ``gst:PIPELINE``.
``--mic``
    ``none`` | ``default`` | ``2`` (a device index) | ``speech.wav`` or any media file (an existing
    file, or a name with a media suffix: its audio track) | ``USB`` (part of a device name) |
    explicit: ``file://PATH``. ``""`` (no ``--mic``) is the camera file's own audio track.

Both the loop (is the camera a file, so that its own audio track is the default microphone?) and
the source factory (which source to build) decide through this one parser, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge_mmer.runtime.sources.base import SourceError

__all__ = ["CAMERA", "DEVICE", "FILE", "MEDIA_SUFFIXES", "MIC", "OFF", "PIPELINE", "TRACK", "URL", "SourceSpec"]

CAMERA, MIC = "camera", "mic"
OFF = "off"  # the modality is turned off
DEVICE = "device"  # a camera or microphone: an index, a path (/dev/video1), "default" or part of a name
FILE = "file"  # a media file
URL = "url"  # a network stream (camera)
PIPELINE = "pipeline"  # a GStreamer pipeline (camera)
TRACK = "track"  # the camera file's own audio track (mic, when none is given)

MEDIA_SUFFIXES = frozenset({".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac",
                            ".mp4", ".mkv", ".mov", ".avi", ".webm"})

MIC_FORMS = "none, default, a device index, part of a device name, a media file (file://PATH)"


@dataclass(frozen=True)
class SourceSpec:
    """A parsed ``--camera`` / ``--mic`` value: what ``kind`` of source, and which one (``target``)."""

    role: str  # CAMERA or MIC
    kind: str  # OFF, DEVICE, FILE, URL, PIPELINE or TRACK
    target: str = ""  # a path, URL, pipeline, device path or name ("default")
    index: int | None = None  # a device index (kind DEVICE)
    text: str = ""  # as given

    @property
    def path(self) -> Path:
        """The file (kind FILE), ``~`` expanded."""
        return Path(self.target).expanduser()

    @property
    def device(self) -> int | str:
        """The device (kind DEVICE): its index, or its path / name."""
        return self.index if self.index is not None else self.target

    @classmethod
    def parse(cls, text: str | None, role: str) -> SourceSpec:
        """``text`` for ``role`` (:data:`CAMERA` or :data:`MIC`); None or ``none`` turns it off."""
        if role not in (CAMERA, MIC):
            raise ValueError(f"source role must be {CAMERA!r} or {MIC!r}, got {role!r}")
        if text is None:
            return cls(role, OFF)
        s = text.strip()
        if s.lower() == "none":
            return cls(role, OFF, text=text)
        if role == MIC and s == "":
            return cls(role, TRACK, text=text)
        explicit = _explicit(s, role)
        if explicit is not None:
            kind, target = explicit
        elif role == CAMERA:
            kind, target = _camera(s)
        else:
            kind, target = _mic(s)
        if kind == DEVICE and target.isdigit():
            return cls(role, DEVICE, index=int(target), text=text)
        return cls(role, kind, target, text=text)


def _explicit(s: str, role: str) -> tuple[str, str] | None:
    """The scheme forms: ``file://``, ``v4l2://``, ``gst:``."""
    lower = s.lower()
    if lower.startswith("file://"):
        path = s[len("file://"):]
        if not path:
            raise SourceError(f"--{role} {s!r}: no path after file://")
        return FILE, path
    for scheme, kind in (("v4l2://", DEVICE), ("gst:", PIPELINE)):
        if lower.startswith(scheme):
            if role == MIC:
                raise SourceError(f"--mic {s!r}: {scheme} names a camera; expected {MIC_FORMS}")
            rest = s[len(scheme):].strip()
            if not rest:
                raise SourceError(f"--camera {s!r}: nothing after {scheme}")
            return kind, rest
    return None


def _camera(s: str) -> tuple[str, str]:
    if "!" in s:
        return PIPELINE, s
    if "://" in s:
        return URL, s
    if s.isdigit():
        return DEVICE, s
    if Path(s).expanduser().is_file():
        return FILE, s
    return DEVICE, s  # /dev/videoN, or a missing path: opening it says what is wrong


def _mic(s: str) -> tuple[str, str]:
    if s.lower() == "default":
        return DEVICE, "default"
    if s.isdigit():
        return DEVICE, s
    p = Path(s).expanduser()
    if p.is_file() or p.suffix.lower() in MEDIA_SUFFIXES:
        return FILE, s
    return DEVICE, s  # part of a device name
