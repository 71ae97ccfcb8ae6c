"""The source contract: open, iterate timestamped chunks, close."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

from edge_mmer.errors import SourceError as SourceError  # re-exported: raised by every source
from edge_mmer.runtime.chunks import Chunk


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
