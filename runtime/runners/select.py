"""``load_runners`` and its names at the import path ``edge_mmer.runtime.runners.select``; the rules
live in :mod:`.choose`, the loading in :mod:`.load`."""

from __future__ import annotations

from .load import BACKENDS, NETWORKS, PRECISIONS, LoadedRunners, load_runners

__all__ = ["BACKENDS", "NETWORKS", "PRECISIONS", "LoadedRunners", "load_runners"]
