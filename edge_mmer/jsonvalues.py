"""JSON values made read-only and back: what the bundle views hold and what writers and configs emit.

:func:`frozen` turns objects into read-only mappings and lists into tuples (so a view can hand out
its nested values without a copy); :func:`thawed` turns any such value, or a dataclass's
``asdict`` (tuples included), back into plain JSON: dicts and lists, in the same order.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["frozen", "thawed"]


def frozen(value: Any) -> Any:
    """A read-only copy of a JSON value: objects -> read-only mappings, lists -> tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: frozen(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(frozen(v) for v in value)
    return value


def thawed(value: Any) -> Any:
    """The plain JSON value of a :func:`frozen` one (dicts and lists, in the same order)."""
    if isinstance(value, Mapping):
        return {k: thawed(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thawed(v) for v in value]
    return value
