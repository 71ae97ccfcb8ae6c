"""The source contract: open, iterate timestamped chunks, close; and what live devices share."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator

from edge_mmer.errors import SourceError as SourceError  # re-exported: raised by every source
from edge_mmer.runtime.chunks import Chunk

__all__ = ["CLOSE_GRACE_S", "LiveSource", "Source", "SourceError"]

log = logging.getLogger(__name__)

CLOSE_GRACE_S = 1.0
"""How long ``close()`` from another thread waits for a read in progress before releasing anyway."""


class Source(ABC):
    """A camera, a microphone or a media file.

    ``open`` acquires the device (raising :class:`SourceError` naming it), ``chunks`` yields
    :class:`~edge_mmer.runtime.chunks.AudioChunk` / :class:`~edge_mmer.runtime.chunks.VideoFrame` in
    time order until the stream ends (a file) or ``close`` is called (a live device), and ``close``
    releases the device; it may be called from another thread and more than once. A watchdog
    reopens a live source by calling ``close`` then ``open`` again.
    """

    name: str = "source"
    live: bool = False

    @property
    @abstractmethod
    def has_audio(self) -> bool:
        """It yields :class:`~edge_mmer.runtime.chunks.AudioChunk` s."""

    @property
    @abstractmethod
    def has_video(self) -> bool:
        """It yields :class:`~edge_mmer.runtime.chunks.VideoFrame` s."""

    @property
    def kind(self) -> str:
        """``audio``, ``video`` or ``av`` (both)."""
        return "av" if self.has_audio and self.has_video else "audio" if self.has_audio else "video"

    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def chunks(self) -> Iterator[Chunk]: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Source:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LiveSource(Source):
    """A device read by blocking calls in a capture thread: a camera, a microphone.

    ``close()`` may come from another thread while a read blocks in the driver: it stops new reads,
    waits up to :data:`CLOSE_GRACE_S` for the one in progress, then releases the device anyway
    (``_release``). A subclass wraps each read in ``_begin_read(stop)`` (False: stop, or no device)
    and ``_end_read()``, and starts a pass with ``_new_pass()``.
    """

    live = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reader_done = threading.Event()
        self._reader_done.set()

    @abstractmethod
    def _holds_device(self) -> bool:
        """The device is open (called under the lock)."""

    @abstractmethod
    def _release(self) -> None:
        """Let go of the device; safe to call when it is not open."""

    def _new_pass(self) -> None:
        """Before opening: drop what an earlier pass held; a fresh stop flag for this one."""
        self._release()
        self._stop = threading.Event()

    def _begin_read(self, stop: threading.Event) -> bool:
        with self._lock:
            if stop.is_set() or not self._holds_device():
                return False
            self._reader_done.clear()
            return True

    def _end_read(self) -> None:
        self._reader_done.set()

    def close(self) -> None:
        """Stop reading; from another thread, waits briefly for a read in progress to finish first."""
        with self._lock:  # after this no new read starts; one in progress is waited for
            self._stop.set()
        if not self._reader_done.wait(CLOSE_GRACE_S):
            log.warning("%s: a read is still blocked after %.1f s; releasing the device under it", self.name,
                        CLOSE_GRACE_S)
        self._release()
