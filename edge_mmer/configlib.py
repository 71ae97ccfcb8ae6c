"""The one small library behind every settings file: typed mappings -> frozen dataclasses.

:func:`from_mapping` builds a dataclass from a nested mapping (a TOML table, a manifest's JSON),
driven by the class's annotations: ``bool``, ``int``, ``float``, ``str``, ``Path``, ``tuple[...]``,
``X | None`` and nested dataclasses. A key that is not given keeps its default (TOML has no null, so
"not given" is simply absent); an unknown key or a value of the wrong type raises
:class:`~edge_mmer.errors.ConfigError` naming the key: ``config key 'vad.frame_ms': expected an
integer, got '20'``. :func:`check` and :func:`check_finite` are the range checks the sections'
``validate`` methods use, :func:`load_toml` reads a file.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, Union

from edge_mmer.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (JetPack 6)
    import tomli as tomllib

__all__ = ["SETTING", "check", "check_finite", "check_range", "from_mapping", "load_toml"]

T = TypeVar("T")

SETTING = "setting"
"""Field metadata key: ``field(metadata={SETTING: False})`` marks a field that the program sets
(a sink's URL from the command line, say) and a settings file may not: :func:`from_mapping` treats
its key as unknown."""


def check(cond: bool, key: str, expected: str, value: object) -> None:
    """Raise ``config key '<key>': expected <expected>, got <value>`` unless ``cond``."""
    if not cond:
        raise ConfigError(f"config key '{key}': expected {expected}, got {value!r}")


def check_range(value: float | int, key: str, lo: float, hi: float, *, zero_ok: bool = False, unit: str = "") -> None:
    """``lo <= value <= hi`` (or exactly 0, meaning "off", when ``zero_ok``): the range a consumer
    accepts, so that a value that passes cannot hang, flood or starve it."""
    what = f"{lo:g}..{hi:g}{f' {unit}' if unit else ''}"
    check((zero_ok and value == 0) or lo <= value <= hi, key, f"0 (off) or {what}" if zero_ok else what, value)


def check_finite(obj: Any, prefix: str = "") -> None:
    """Every float in a dataclass tree is finite (TOML allows ``nan`` and ``inf``, which every range
    check would let through)."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            check_finite(value, f"{prefix}{f.name}.")
        elif isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"config key '{prefix}{f.name}': expected a finite number, got {value!r}")


def load_toml(path: str | os.PathLike[str], missing: str) -> dict[str, Any]:
    """The TOML file at ``path`` as a dict; ``missing`` is the message when it is not a file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(missing)
    try:
        data: dict[str, Any] = tomllib.loads(p.read_text(encoding="utf-8"))
        return data
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from exc


def from_mapping(cls: type[T], data: Any, prefix: str = "") -> T:
    """``cls(**data)``, each value checked against the field's annotation; nested tables become
    nested dataclasses. Raises :class:`ConfigError` naming the key."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"config key '{prefix}': expected a table, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)  # type: ignore[arg-type]
              if f.init and f.metadata.get(SETTING, True)}
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields:
            raise ConfigError(f"unknown config key '{full}' (known: {', '.join(sorted(fields))})")
        kwargs[key] = _convert(hints[key], value, full)
    return cls(**kwargs)


def _convert(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        if len(args) == 1:
            return _convert(args[0], value, key)
        raise TypeError(f"config key '{key}': unsupported annotation {hint!r}")  # pragma: no cover - a coding error
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, key)
    if origin is tuple:  # the items are the section's validate() to check (its message says what they mean)
        check(isinstance(value, (list, tuple)), key, "a list", value)
        return tuple(value)
    if hint is bool:
        check(isinstance(value, bool), key, "true or false", value)
        return value
    if hint is float:
        check(isinstance(value, (int, float)) and not isinstance(value, bool), key, "a number", value)
        return float(value)
    if hint is int:
        check(isinstance(value, int) and not isinstance(value, bool), key, "an integer", value)
        return value
    if hint is str:
        check(isinstance(value, str), key, "str", value)
        return value
    if hint is Path:
        check(isinstance(value, str) and bool(value), key, "a path", value)
        return Path(value)
    raise TypeError(f"config key '{key}': unsupported annotation {hint!r}")  # pragma: no cover - a coding error
