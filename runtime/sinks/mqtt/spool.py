"""An on-disk FIFO of MQTT event messages the broker has not acknowledged yet.

Every event the MQTT sink emits is appended here first and deleted only when the broker's PUBACK
arrives, so events survive a broker outage, a SIGKILL and a restart (the next sink on the same file
replays them, oldest first). Only events go through the spool; availability, state and stats
messages do not.

Storage: one stdlib ``sqlite3`` file in WAL mode (``synchronous=NORMAL`` by default: a committed
row survives a crash of the process; a power cut may lose the last rows since the WAL was last
synced, never the file's consistency). The file is locked exclusively while open
(``locking_mode=EXCLUSIVE``): a second process on the same file gets a clear error and runs on
memory instead of sending the same events twice.

Policies (also in docs/sinks.md):

* **Full** (``max_events`` rows or ``max_bytes`` of payload): the OLDEST rows are dropped to make
  room, counted in ``dropped``; one warning per burst (a burst ends when a row fits again, with an
  info line saying how many were dropped). A single payload larger than ``max_bytes`` is dropped.
* **Unwritable** (disk full, I/O error, read-only or missing directory, file locked by another
  process): the error is logged once per burst, naming the file, and counted in ``write_errors``;
  the caller never sees an exception. The row is kept in a small in-memory overflow
  (``memory_max_events``, oldest dropped and counted when it is full) and published from there in
  order with the rows on disk; rows in memory are lost if the process dies.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from edge_mmer.runtime.settings import DEFAULT_SPOOL_MAX_BYTES as DEFAULT_MAX_BYTES
from edge_mmer.runtime.settings import DEFAULT_SPOOL_MAX_EVENTS as DEFAULT_MAX_EVENTS

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_EVENTS", "DEFAULT_MEMORY_MAX_EVENTS", "Spool", "SpoolRow",
           "default_spool_path"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"
DEFAULT_MEMORY_MAX_EVENTS = 1000
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


@dataclass(frozen=True)
class SpoolRow:
    """One spooled message, in the order it was appended (``id`` grows)."""

    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool


def default_spool_path(device_id: str) -> Path:
    """``$XDG_STATE_HOME/edge-mmer/spool-<device>.sqlite`` (``~/.local/state`` when unset)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", device_id) or "default"
    return Path(base) / "edge-mmer" / f"spool-{safe}.sqlite"


class Spool:
    """FIFO of :class:`SpoolRow` in a sqlite file; thread-safe; never raises on write failures.

    ``path=None`` keeps everything in memory (no durability; for tests and for ``--no-spool``).
    """

    def __init__(
        self,
        path: Path | str | None,
        *,
        max_events: int = DEFAULT_MAX_EVENTS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        memory_max_events: int = DEFAULT_MEMORY_MAX_EVENTS,
        synchronous: str = "NORMAL",
    ) -> None:
        if max_events < 1:
            raise ValueError(f"spool max_events must be >= 1, got {max_events}")
        if max_bytes < 1:
            raise ValueError(f"spool max_bytes must be >= 1, got {max_bytes}")
        if memory_max_events < 1:
            raise ValueError(f"spool memory_max_events must be >= 1, got {memory_max_events}")
        if synchronous.upper() not in _SYNCHRONOUS:
            raise ValueError(f"spool synchronous must be one of {_SYNCHRONOUS}, got {synchronous!r}")
        self.path = None if path is None else Path(path).expanduser()
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.memory_max_events = memory_max_events
        self._synchronous = synchronous.upper()
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._disk_count = 0
        self._disk_bytes = 0
        self._memory: OrderedDict[int, SpoolRow] = OrderedDict()  # rows the disk refused
        self._unsynced_acks: set[int] = set()  # acknowledged, but the DELETE failed: never replay in-process
        self._next_id = 1
        self.dropped = 0
        self.write_errors = 0
        self._full_burst = 0  # rows dropped in the current "full" burst (0 = not in a burst)
        self._error_burst = False
        self._closed = False
        if self.path is not None:
            self._open()

    # ---- opening -------------------------------------------------------------------------------

    def _open(self) -> None:
        assert self.path is not None
        try:
            self._db = self._connect(self.path)
        except sqlite3.DatabaseError as exc:
            if "not a database" in str(exc) or "malformed" in str(exc):
                aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
                log.error("spool %s is not a readable sqlite database (%s); moved it to %s and started a new one",
                          self.path, exc, aside)
                try:
                    os.replace(self.path, aside)
                    self._db = self._connect(self.path)
                except (OSError, sqlite3.Error) as exc2:
                    self._open_failed(exc2)
            else:
                self._open_failed(exc)
        except OSError as exc:
            self._open_failed(exc)
        if self._db is not None:
            row = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0), COALESCE(MAX(id), 0) FROM spool").fetchone()
            self._disk_count, self._disk_bytes, self._next_id = int(row[0]), int(row[1]), int(row[2]) + 1
            if self._disk_count:
                log.info("spool %s holds %d unacknowledged event(s) from an earlier run; they are sent first",
                         self.path, self._disk_count)

    def _connect(self, path: Path) -> sqlite3.Connection:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), timeout=0.5, isolation_level=None, check_same_thread=False)
        try:
            # EXCLUSIVE before WAL: no shared-memory index, and one process per spool file.
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("spool %s: sqlite refused WAL mode (got %s); durability is the same, speed lower",
                            path, mode)
            db.execute(f"PRAGMA synchronous={self._synchronous}")
            db.execute("BEGIN IMMEDIATE")  # takes the exclusive lock now, not at the first event
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            db.execute("CREATE TABLE IF NOT EXISTS spool (id INTEGER PRIMARY KEY, topic TEXT NOT NULL, "
                       "payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL, "
                       "size INTEGER NOT NULL, created REAL NOT NULL)")
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,))
            version = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0]
            db.execute("COMMIT")
        except BaseException:
            db.close()
            raise
        if version != SCHEMA_VERSION:
            db.close()
            raise sqlite3.DatabaseError(f"spool schema version {version!r}, expected {SCHEMA_VERSION!r}")
        return db

    def _open_failed(self, exc: BaseException) -> None:
        self.write_errors += 1
        self._error_burst = True
        locked = "locked" in str(exc)
        hint = " (another sink or process has it open: one runtime per device and spool file)" if locked else ""
        log.error("spool %s cannot be opened: %s%s. Events are kept in memory only (up to %d, oldest dropped "
                  "first) and are lost if the process stops before the broker acknowledges them",
                  self.path, exc, hint, self.memory_max_events)
        self._db = None

    # ---- writing -------------------------------------------------------------------------------

    def append(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> int:
        """Add a row at the tail; returns its id (0 when the row itself was dropped). Never raises."""
        data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        with self._lock:
            if self._closed:
                raise RuntimeError(f"spool {self.path} is closed")
            row_id = self._next_id
            self._next_id += 1
            row = SpoolRow(row_id, topic, data, int(qos), bool(retain))
            if len(data) > self.max_bytes:
                self.dropped += 1
                log.warning("spool %s: an event of %d bytes is larger than the whole spool (max_bytes=%d); dropped",
                            self.path, len(data), self.max_bytes)
                return 0
            if self._db is not None and self._append_disk(row):
                return row_id
            self._append_memory(row)
            return row_id

    def _append_disk(self, row: SpoolRow) -> bool:
        assert self._db is not None
        size = len(row.payload)
        excess_n = self._disk_count + 1 - self.max_events
        excess_b = self._disk_bytes + size - self.max_bytes
        try:
            with self._transaction() as db:
                freed_n, freed_b = 0, 0
                if excess_n > 0 or excess_b > 0:
                    victims: list[int] = []
                    for vid, vsize in db.execute("SELECT id, size FROM spool ORDER BY id"):
                        if freed_n >= excess_n and freed_b >= excess_b:
                            break
                        victims.append(int(vid))
                        freed_n += 1
                        freed_b += int(vsize)
                    db.executemany("DELETE FROM spool WHERE id = ?", [(v,) for v in victims])
                db.execute("INSERT INTO spool (id, topic, payload, qos, retain, size, created) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (row.id, row.topic, row.payload, row.qos, int(row.retain), size, time.time()))
        except (sqlite3.Error, OSError) as exc:
            self._write_failed(exc)
            return False
        self._disk_count += 1 - freed_n
        self._disk_bytes += size - freed_b
        self._note_dropped(freed_n, "max_events" if excess_n > 0 else "max_bytes")
        self._write_ok()
        return True

    def _append_memory(self, row: SpoolRow) -> None:
        dropped = 0
        while len(self._memory) >= self.memory_max_events:
            self._memory.popitem(last=False)
            dropped += 1
        self._memory[row.id] = row
        self._note_dropped(dropped, "memory_max_events")

    def _note_dropped(self, n: int, bound: str) -> None:
        if n <= 0:
            if self._full_burst:
                log.info("spool %s has room again; %d oldest event(s) were dropped while it was full",
                         self.path, self._full_burst)
                self._full_burst = 0
            return
        self.dropped += n
        if not self._full_burst:
            limit = {"max_events": self.max_events, "max_bytes": self.max_bytes,
                     "memory_max_events": self.memory_max_events}[bound]
            log.warning("spool %s is full (%s=%d): dropping the OLDEST unsent events to keep the newest "
                        "(counted in 'dropped'; logged once per burst)", self.path, bound, limit)
        self._full_burst += n

    def _write_failed(self, exc: BaseException) -> None:
        self.write_errors += 1
        if not self._error_burst:
            self._error_burst = True
            log.error("spool %s cannot be written: %s. New events are kept in memory (up to %d, oldest dropped "
                      "first) until the disk accepts writes again; they are lost if the process stops first",
                      self.path, exc, self.memory_max_events)
        else:
            log.debug("spool %s: write failed again: %s", self.path, exc)

    def _write_ok(self) -> None:
        if self._error_burst:
            self._error_burst = False
            log.info("spool %s accepts writes again (%d write error(s) so far)", self.path, self.write_errors)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; anything raised inside rolls the transaction back."""
        db = self._db
        assert db is not None
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):  # no transaction left: sqlite already rolled back
                db.execute("ROLLBACK")
            raise

    def ack(self, row_id: int) -> None:
        """The broker has the row: delete it (unknown ids are ignored). Never raises."""
        with self._lock:
            if self._closed or row_id <= 0:
                return
            if self._memory.pop(row_id, None) is not None:
                return
            if self._db is None:
                return
            ids = [row_id, *self._unsynced_acks]
            try:
                with self._transaction() as db:
                    gone = db.execute(
                        f"SELECT COUNT(*), COALESCE(SUM(size), 0) FROM spool WHERE id IN ({','.join('?' * len(ids))})",
                        ids).fetchone()
                    db.executemany("DELETE FROM spool WHERE id = ?", [(i,) for i in ids])
            except (sqlite3.Error, OSError) as exc:
                self._write_failed(exc)
                self._unsynced_acks.add(row_id)
                return
            self._unsynced_acks.clear()
            self._disk_count -= int(gone[0])
            self._disk_bytes -= int(gone[1])

    # ---- reading -------------------------------------------------------------------------------

    def pending(self, limit: int = 100, after_id: int = 0) -> list[SpoolRow]:
        """Up to ``limit`` unacknowledged rows with ``id > after_id``, oldest first."""
        with self._lock:
            if self._closed or limit <= 0:
                return []
            rows: list[SpoolRow] = []
            if self._db is not None:
                try:
                    cur = self._db.execute(
                        "SELECT id, topic, payload, qos, retain FROM spool WHERE id > ? ORDER BY id LIMIT ?",
                        (after_id, limit + len(self._unsynced_acks)))
                    rows = [SpoolRow(int(i), str(t), bytes(p), int(q), bool(r)) for i, t, p, q, r in cur
                            if int(i) not in self._unsynced_acks]
                except sqlite3.Error as exc:
                    log.error("spool %s cannot be read: %s; sending from memory only for now", self.path, exc)
            rows.extend(r for r in self._memory.values() if r.id > after_id)
            rows.sort(key=lambda r: r.id)
            return rows[:limit]

    def last(self) -> SpoolRow | None:
        """The newest unacknowledged row, or None."""
        with self._lock:
            candidates: list[SpoolRow] = []
            if self._memory:
                candidates.append(next(reversed(self._memory.values())))
            if self._db is not None and not self._closed:
                try:
                    r = self._db.execute(
                        "SELECT id, topic, payload, qos, retain FROM spool ORDER BY id DESC LIMIT 1").fetchone()
                except sqlite3.Error:
                    r = None
                if r is not None and int(r[0]) not in self._unsynced_acks:
                    candidates.append(SpoolRow(int(r[0]), str(r[1]), bytes(r[2]), int(r[3]), bool(r[4])))
            return max(candidates, key=lambda x: x.id) if candidates else None

    def __len__(self) -> int:
        with self._lock:
            return max(0, self._disk_count - len(self._unsynced_acks)) + len(self._memory)

    @property
    def in_memory(self) -> int:
        """Rows held only in memory (the disk refused them)."""
        return len(self._memory)

    @property
    def on_disk(self) -> bool:
        """True while the spool has a working sqlite file."""
        return self._db is not None

    def close(self) -> None:
        """Close the file. Rows in memory are lost (logged when there are any)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._memory:
                log.warning("spool %s: %d event(s) held in memory (the disk refused them) are lost at close",
                            self.path, len(self._memory))
            if self._db is not None:
                try:
                    self._db.close()
                except sqlite3.Error as exc:
                    log.error("spool %s did not close cleanly: %s", self.path, exc)
                self._db = None

    def __repr__(self) -> str:
        return (f"Spool(path={self.path!s}, pending={len(self)}, dropped={self.dropped}, "
                f"write_errors={self.write_errors})")
