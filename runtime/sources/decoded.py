"""A decoded video frame converted to BGR only where it is looked at.

Converting a 1280x720 YUV 4:2:0 picture to BGR costs about as much as decoding it, and the face
analysis needs the whole picture only on the analysed frames (a few per second); on every other
frame it reads the small mouth regions of the tracked faces. :class:`DecodedFrame` keeps the
decoder's planes and converts the whole picture on first use of :attr:`image` (the same
``to_ndarray(format="bgr24")`` as ever), or a region alone with :meth:`region`, in whichever thread
asks — the face worker's, not the reader's.

A region is converted from a block of the planes around it (aligned, with a margin of
:data:`_MARGIN` pixels so FFmpeg's chroma handling sees the same neighbours) and then cut, so its
pixels are exactly those of the whole conversion; a later region inside a block already converted
(a face's crop and mouth inside its tracked region) is cut from it. ``tests/runtime/test_decoded_frames.py``
checks the pixels on real clips.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import numpy as np

from edge_mmer.runtime.chunks import VideoFrame
from edge_mmer.runtime.sources.pacing import import_av

__all__ = ["DecodedFrame", "decoded_frame"]

_MARGIN = 8  # pixels of context kept around a region before it is converted
_ALIGN_X = 16  # the block's left edge: a multiple of this (FFmpeg converts rows in SIMD steps)
_local = threading.local()  # one FFmpeg scaler per thread (it caches its context for a size)


def _reformatter() -> Any:
    rf = getattr(_local, "reformatter", None)
    if rf is None:
        rf = import_av().video.reformatter.VideoReformatter()
        _local.reformatter = rf
    return rf


def _plane(frame: Any, i: int) -> np.ndarray:
    p = frame.planes[i]
    return np.frombuffer(p, np.uint8, count=p.height * p.line_size).reshape(p.height, p.line_size)


class DecodedFrame(VideoFrame):
    """A :class:`VideoFrame` over a decoded yuv420p ``av.VideoFrame`` (even width and height)."""

    lazy = True
    _frame: Any  # the decoder's frame (set in __init__: the base is a frozen dataclass)
    _blocks: list[tuple[int, int, int, int, int, int, np.ndarray]]

    def __init__(self, t: float, frame: Any, index: int) -> None:
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "_frame", frame)
        # regions converted so far: (the exact part x0, y0, x1, y1, the block's x0, y0, its BGR pixels)
        object.__setattr__(self, "_blocks", [])

    @functools.cached_property
    def image(self) -> np.ndarray:  # a field of the base, computed here on demand
        """The whole picture as BGR uint8 (H, W, 3), converted on first use."""
        out: np.ndarray = self._frame.to_ndarray(format="bgr24")
        return out

    @property
    def height_width(self) -> tuple[int, int]:
        return int(self._frame.height), int(self._frame.width)

    def region(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """``image[y0:y1, x0:x1]`` (clipped to the frame), converted alone unless the whole is already."""
        if "image" in self.__dict__:
            return self.image[y0:y1, x0:x1]
        f = self._frame
        w, h = f.width, f.height
        x0, y0, x1, y1 = min(max(0, x0), w), min(max(0, y0), h), min(max(0, x1), w), min(max(0, y1), h)
        if x1 <= x0 or y1 <= y0:
            return np.zeros((max(0, y1 - y0), max(0, x1 - x0), 3), np.uint8)
        for ex0, ey0, ex1, ey1, bx0, by0, block in self._blocks:  # a tracked face's crop and mouth lie in its region
            if ex0 <= x0 and ey0 <= y0 and x1 <= ex1 and y1 <= ey1:
                return block[y0 - by0:y1 - by0, x0 - bx0:x1 - bx0]
        bx0 = max(0, (x0 - _MARGIN) // _ALIGN_X * _ALIGN_X)
        by0 = max(0, (y0 - _MARGIN) // 2 * 2)
        bx1 = min(w, -(-(x1 + _MARGIN) // _ALIGN_X) * _ALIGN_X)
        by1 = min(h, -(-(y1 + _MARGIN) // 2) * 2)
        y = _plane(f, 0)[by0:by1, bx0:bx1]
        u = _plane(f, 1)[by0 // 2:by1 // 2, bx0 // 2:bx1 // 2]
        v = _plane(f, 2)[by0 // 2:by1 // 2, bx0 // 2:bx1 // 2]
        bh, bw = y.shape
        packed = np.concatenate([y.reshape(-1), u.reshape(-1), v.reshape(-1)]).reshape(bh * 3 // 2, bw)
        av = import_av()
        sub = av.VideoFrame.from_ndarray(packed, format="yuv420p")
        sub.colorspace = f.colorspace
        sub.color_range = f.color_range
        bgr: np.ndarray = _reformatter().reformat(sub, format="bgr24", threads=1).to_ndarray()
        exact = (bx0 + _MARGIN if bx0 > 0 else 0, by0 + _MARGIN if by0 > 0 else 0,
                 bx1 - _MARGIN if bx1 < w else w, by1 - _MARGIN if by1 < h else h)
        self._blocks.append((*exact, bx0, by0, bgr))
        return bgr[y0 - by0:y1 - by0, x0 - bx0:x1 - bx0]


def decoded_frame(t: float, frame: Any, index: int) -> VideoFrame:
    """A lazily converted frame when ``frame`` is yuv420p of even size, else one converted now."""
    if frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:
        return DecodedFrame(t, frame, index)
    return VideoFrame(t, frame.to_ndarray(format="bgr24"), index)
