"""Say a condition once: a broker that stays unreachable, a refusal that repeats on every retry.

:class:`LogOnce` logs a message the first time its key comes up and stays quiet about that key
until :meth:`LogOnce.reset` (the condition cleared: the broker answered), so a retry loop does not
fill the log (after Polygraphy's ``LogMode.ONCE``).
"""

from __future__ import annotations

import logging
import threading

__all__ = ["LogOnce"]


class LogOnce:
    """``once(level, key, msg, *args)``: log unless ``key`` was said since the last reset. Thread-safe."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._said: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, level: int, key: str, msg: str, *args: object) -> bool:
        """True when it was logged now (the first time since the last reset)."""
        with self._lock:
            if key in self._said:
                return False
            self._said.add(key)
        self._logger.log(level, msg, *args)
        return True

    def said(self, key: str) -> bool:
        with self._lock:
            return key in self._said

    def reset(self, key: str | None = None) -> None:
        """Forget ``key`` (every key when None): the next time it comes up it is logged again."""
        with self._lock:
            if key is None:
                self._said.clear()
            else:
                self._said.discard(key)
