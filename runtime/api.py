"""``open_pipeline``: a bundle to a ready pipeline in one call (what embedding the runtime needs).

The loop (:class:`~edge_mmer.runtime.loop.RuntimeLoop`) builds the same thing from a settings
file, with sources, a watchdog and a sink around it; this is the pipeline alone, for a program that
brings its own audio and frames.
"""

from __future__ import annotations

import os
from pathlib import Path

from edge_mmer.bundle import Bundle, read_bundle
from edge_mmer.errors import RunnerError
from edge_mmer.runtime.pipeline import Pipeline
from edge_mmer.runtime.runners.load import load_runners
from edge_mmer.runtime.settings import PipelineSettings, RuntimeSettings

__all__ = ["open_pipeline"]


def open_pipeline(bundle: Bundle | str | os.PathLike[str], backend: str = "auto", precision: str = "fp32", *,
                  settings: PipelineSettings | RuntimeSettings | None = None, threads: int = 0,
                  device_id: str = "edge-mmer", expect_video: bool = True, expect_audio: bool = True) -> Pipeline:
    """A pipeline over ``bundle`` (a :class:`Bundle` or its directory), its networks loaded and active.

    Parameters
    ----------
    bundle
        The model bundle; its files are verified (sha256) as they are read.
    backend, precision
        ``auto`` | ``onnxruntime`` | ``tensorrt`` and ``fp32`` | ``fp16`` | ``int8``, as for
        ``edge-mmer run`` (``auto`` takes TensorRT only when the bundle's plans fit this device).
    settings
        The ``[vad]``, ``[faces]`` and ``[decision]`` sections (a whole :class:`RuntimeSettings` will
        do); what they leave out is the bundle's.
    threads
        ONNX Runtime intra-op threads (0 = one per core).
    device_id, expect_video, expect_audio
        Stamped on every event; whether frames and audio will come (see :class:`Pipeline`).

    Feed it :class:`~edge_mmer.runtime.chunks.AudioChunk` s and
    :class:`~edge_mmer.runtime.chunks.VideoFrame` s, call ``flush()`` at the end of the stream and
    ``close()`` (or use it in a ``with`` block) to release the networks::

        with open_pipeline("demo/bundle") as pipe:
            events = pipe.feed_all(chunks) + pipe.flush()
    """
    b = bundle if isinstance(bundle, Bundle) else read_bundle(Path(bundle))
    loaded = load_runners(b, backend=backend, precision=precision, threads=threads)
    section = settings.pipeline if isinstance(settings, RuntimeSettings) else settings
    try:
        return Pipeline(b, loaded.networks(), section, device_id=device_id, expect_video=expect_video,
                        expect_audio=expect_audio)
    except (RunnerError, ValueError):
        loaded.deactivate()
        raise
