"""The runner contract, as the runtime's backends see it (defined in :mod:`edge_mmer.runner`)."""

from __future__ import annotations

from edge_mmer.errors import RunnerError
from edge_mmer.runner import Runner, RunnerSet, TensorSpec

__all__ = ["Runner", "RunnerError", "RunnerSet", "TensorSpec"]
