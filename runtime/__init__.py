"""The lean runtime: camera and microphone in, emotion events out. Never imports torch.

The whole loop from a settings file (what ``edge-mmer run`` does)::

    from edge_mmer.runtime import RuntimeLoop, load_settings

    summary = RuntimeLoop(load_settings("run.toml")).run()

The pipeline alone, fed by your own audio chunks and video frames::

    from edge_mmer.runtime import open_pipeline

    with open_pipeline("demo/bundle", backend="auto", precision="fp32") as pipe:
        for chunk in chunks:
            for event in pipe.feed(chunk):
                print(event.to_json())
        events = pipe.flush()

Public names: :func:`open_pipeline`, :class:`Pipeline`, :class:`RuntimeLoop`, :func:`load_settings`
(and :class:`RuntimeSettings`, :class:`PipelineSettings`), :class:`EmotionEvent` and
:class:`StatsMessage`. They are imported when first used, so ``import edge_mmer.runtime`` stays
cheap; everything else lives in the submodules (``sources``, ``sinks``, ``runners``, ``settings``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge_mmer.runtime.api import open_pipeline
    from edge_mmer.runtime.events import EmotionEvent, StatsMessage
    from edge_mmer.runtime.loop import RuntimeLoop
    from edge_mmer.runtime.pipeline import Pipeline
    from edge_mmer.runtime.settings import PipelineSettings, RuntimeSettings, load_settings

__all__ = ["EmotionEvent", "Pipeline", "PipelineSettings", "RuntimeLoop", "RuntimeSettings", "StatsMessage",
           "load_settings", "open_pipeline"]

_WHERE = {
    "open_pipeline": "edge_mmer.runtime.api",
    "Pipeline": "edge_mmer.runtime.pipeline",
    "RuntimeLoop": "edge_mmer.runtime.loop",
    "load_settings": "edge_mmer.runtime.settings",
    "RuntimeSettings": "edge_mmer.runtime.settings",
    "PipelineSettings": "edge_mmer.runtime.settings",
    "EmotionEvent": "edge_mmer.runtime.events",
    "StatsMessage": "edge_mmer.runtime.events",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
