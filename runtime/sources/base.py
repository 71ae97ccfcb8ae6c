"""The source contract: open, iterate timestamped chunks, close; and what live devices share."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

from edge_mmer.errors import SourceError as SourceError  # re-exported: raised by every source
from edge_mmer.runtime.chunks import Chunk

__all__ = ["CLOSE_GRACE_S", "LiveSource", "ReadPass", "Source", "SourceError"]

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


class ReadPass:
    """One open of a live device: its stop flag, whether a read is in progress, and the handles a
    ``close()`` from another thread left for the reading thread to let go of."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.idle = threading.Event()
        self.idle.set()
        self.orphan: Any = None

    def is_set(self) -> bool:
        """The pass is stopped (reads like the ``threading.Event`` it wraps)."""
        return self.stop.is_set()

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` unless the pass is stopped; True when it is."""
        return self.stop.wait(timeout)


class LiveSource(Source):
    """A device read by blocking calls in a capture thread: a camera, a microphone.

    ``close()`` may come from another thread while a read blocks in the driver: it stops new reads and
    waits up to :data:`CLOSE_GRACE_S` for the one in progress. A native handle is never released while
    another thread is inside it (that is a use-after-free: FFmpeg and PortAudio return into the freed
    object): when the read is still blocked after the grace, the handles are taken out of the source
    and left to the reading thread, which releases them the moment its read returns; the source can be
    opened again meanwhile (a watchdog starts a fresh capture thread). A subclass wraps each read in
    ``_begin_read(pass_)`` (False: stop, or no device) and ``_end_read(pass_)``, starts a pass with
    ``_new_pass()``, and splits its release into ``_detach`` (take the handles, under the lock) and
    ``_release_handles``.
    """

    live = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pass = ReadPass()
        self.orphaned_reads = 0  # reads left blocked in the driver, their release handed to their thread

    @property
    def _stop(self) -> threading.Event:
        return self._pass.stop

    @abstractmethod
    def _holds_device(self) -> bool:
        """The device is open (called under the lock)."""

    @abstractmethod
    def _detach(self) -> Any:
        """Take the device's handles out of the source (called under the lock); None when not open."""

    @abstractmethod
    def _release_handles(self, handles: Any) -> None:
        """Let go of handles ``_detach`` returned (no other thread is inside them)."""

    def _release(self) -> None:
        with self._lock:
            handles = self._detach()
        if handles is not None:
            self._release_handles(handles)

    def _new_pass(self) -> ReadPass:
        """Before opening: drop what an earlier pass held (unless its reader still owns it); a fresh pass."""
        old = self._pass
        if old.idle.is_set():
            self._release()
        self._pass = ReadPass()
        return self._pass

    def _begin_read(self, pass_: ReadPass) -> bool:
        with self._lock:
            if pass_.is_set() or pass_ is not self._pass or not self._holds_device():
                return False
            pass_.idle.clear()
            return True

    def _end_read(self, pass_: ReadPass) -> None:
        with self._lock:
            orphan, pass_.orphan = pass_.orphan, None
            pass_.idle.set()
        if orphan is not None:  # close() gave up waiting: this thread releases what it was reading
            log.info("%s: the blocked read returned; its device is released", self.name)
            self._release_handles(orphan)

    def close(self) -> None:
        """Stop reading; from another thread, waits briefly for a read in progress to finish first."""
        pass_ = self._pass
        with self._lock:  # after this no new read starts; one in progress is waited for
            pass_.stop.set()
        if pass_.idle.wait(CLOSE_GRACE_S):
            self._release()
            return
        with self._lock:
            if pass_.idle.is_set():
                handles = self._detach()
            else:
                pass_.orphan, handles = self._detach(), None
                self.orphaned_reads += 1
        if handles is not None:
            self._release_handles(handles)
        else:
            log.warning("%s: a read is still blocked after %.1f s; its thread releases the device when it "
                        "returns", self.name, CLOSE_GRACE_S)
