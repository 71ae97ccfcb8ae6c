"""A bounded queue that never blocks its producer: when full, the oldest item is dropped and counted.

A live camera or microphone must never wait for a slow consumer (its driver buffer would overflow and
the device would stall); losing the stalest chunk is the better failure. A queue may have several
producers: it reports end-of-stream to its consumers once every producer has called :meth:`close`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from queue import Empty
from typing import Generic, TypeVar

from edge_mmer.errors import QueueClosed

T = TypeVar("T")

__all__ = ["DropOldestQueue", "Empty", "QueueClosed"]


class DropOldestQueue(Generic[T]):
    """Thread-safe FIFO of at most ``maxsize`` items.

    ``put`` never blocks: on a full queue it drops the oldest item and counts it in ``dropped``.
    ``put_wait`` waits for room instead (for file sources, where every chunk should arrive).
    ``get`` raises :class:`queue.Empty` on timeout and :class:`QueueClosed` at end of stream.
    """

    def __init__(self, maxsize: int, producers: int = 1) -> None:
        if maxsize < 1:
            raise ValueError(f"DropOldestQueue: maxsize must be >= 1, got {maxsize}")
        if producers < 1:
            raise ValueError(f"DropOldestQueue: producers must be >= 1, got {producers}")
        self.maxsize = maxsize
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._open_producers = producers
        self.dropped = 0
        self.put_count = 0

    def put(self, item: T) -> bool:
        """Append ``item``; returns True when an older item had to be dropped to make room.

        After the queue is closed the item is discarded (returns False).
        """
        with self._cond:
            if self._open_producers == 0:
                return False
            dropped = False
            if len(self._items) >= self.maxsize:
                self._items.popleft()
                self.dropped += 1
                dropped = True
            self._items.append(item)
            self.put_count += 1
            self._cond.notify()
            return dropped

    def put_wait(self, item: T, timeout: float | None = None) -> bool:
        """Append ``item`` once there is room; False on timeout or when the queue is closed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while len(self._items) >= self.maxsize and self._open_producers > 0:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            if self._open_producers == 0:
                return False
            self._items.append(item)
            self.put_count += 1
            self._cond.notify_all()
            return True

    def get(self, timeout: float | None = None) -> T:
        """The oldest item; waits up to ``timeout`` seconds (None: forever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items:
                if self._open_producers == 0:
                    raise QueueClosed
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise Empty
                self._cond.wait(remaining)
            item = self._items.popleft()
            self._cond.notify_all()  # wakes a producer waiting in put_wait
            return item

    def close(self, all_producers: bool = False) -> None:
        """One producer is done (or all of them); consumers see :class:`QueueClosed` once drained."""
        with self._cond:
            self._open_producers = 0 if all_producers else max(0, self._open_producers - 1)
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._open_producers == 0

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def __iter__(self) -> Iterator[T]:
        """Items until end of stream."""
        while True:
            try:
                yield self.get()
            except QueueClosed:
                return
