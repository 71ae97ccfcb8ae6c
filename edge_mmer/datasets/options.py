"""Loader options from a dataset spec's query part: ``meld:/data/MELD?target=sentiment&max_clip_s=30``."""

from __future__ import annotations

from collections.abc import Sequence

from edge_mmer.datasets.base import DatasetError

__all__ = ["Options"]


class Options:
    """``key=value`` pairs; each accessor validates its key and marks it used; :meth:`check_used`
    rejects keys no accessor asked for (a typo is an error naming the key and the known ones)."""

    def __init__(self, pairs: dict[str, str], kind: str) -> None:
        self.pairs = dict(pairs)
        self.kind = kind
        self._known: list[str] = []

    def _get(self, key: str) -> str | None:
        self._known.append(key)
        return self.pairs.get(key)

    def _bad(self, key: str, expected: str) -> DatasetError:
        return DatasetError(f"dataset option '{key}' of '{self.kind}': expected {expected}, got {self.pairs[key]!r}")

    def string(self, key: str, default: str | None = None) -> str | None:
        value = self._get(key)
        return default if value is None else value

    def choice(self, key: str, choices: Sequence[str], default: str) -> str:
        value = self._get(key)
        if value is None:
            return default
        if value not in choices:
            raise self._bad(key, " or ".join(repr(c) for c in choices))
        return value

    def fraction(self, key: str, default: float) -> float:
        value = self._get(key)
        if value is None:
            return default
        try:
            f = float(value)
        except ValueError:
            raise self._bad(key, "a number in [0, 1)") from None
        if not 0.0 <= f < 1.0:
            raise self._bad(key, "a number in [0, 1)")
        return f

    def number(self, key: str, default: float | None) -> float | None:
        value = self._get(key)
        if value is None:
            return default
        if value.lower() in ("none", "off", "0"):
            return None
        try:
            f = float(value)
        except ValueError:
            raise self._bad(key, "a positive number or 'none'") from None
        if f <= 0:
            raise self._bad(key, "a positive number or 'none'")
        return f

    def integer(self, key: str, default: int) -> int:
        value = self._get(key)
        if value is None:
            return default
        try:
            n = int(value)
        except ValueError:
            raise self._bad(key, "a positive integer") from None
        if n < 1:
            raise self._bad(key, "a positive integer")
        return n

    def check_used(self) -> None:
        unknown = sorted(set(self.pairs) - set(self._known))
        if unknown:
            known = ", ".join(sorted(set(self._known))) or "none"
            raise DatasetError(f"unknown dataset option(s) {', '.join(map(repr, unknown))} for '{self.kind}' "
                               f"(known: {known})")
