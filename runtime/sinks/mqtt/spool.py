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
* **Damaged rows** (bit-rot, a topic that is not UTF-8 or holds a wildcard, a bad QoS): every row has a
  CRC and is checked before it is published (:mod:`.spool_rows`); a row that fails is moved to the
  ``dead`` table (the last :data:`DEAD_MAX_ROWS` kept for inspection), counted in ``dead_lettered``,
  never published, and the rows after it flow on.
* **Damaged file** (not a database, a malformed page, a wrong schema; found at open by
  ``PRAGMA quick_check`` or later by a read): the file is moved aside to ``NAME.corrupt-TIMESTAMP``,
  its readable rows are salvaged into a new file (checked like any row; counted in ``salvaged``), and
  the rows that could not be read are counted in ``lost``.
* **Compaction**: when the spool has drained and the free pages hold more than
  :data:`COMPACT_MIN_BYTES`, the file is vacuumed and its WAL truncated, so it shrinks back.

``close()`` logs every count that is not zero (dropped, dead-lettered, lost, still pending).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

from edge_mmer.runtime.settings import DEFAULT_SPOOL_MAX_BYTES as DEFAULT_MAX_BYTES
from edge_mmer.runtime.settings import DEFAULT_SPOOL_MAX_EVENTS as DEFAULT_MAX_EVENTS
from edge_mmer.runtime.sinks.mqtt.spool_rows import (
    SELECT_RAW,
    PayloadCheck,
    RawRow,
    SpoolRow,
    check_row,
    raw_rows,
    row_crc,
    salvage,
)

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_EVENTS", "DEFAULT_MEMORY_MAX_EVENTS", "Spool", "SpoolRow",
           "default_spool_path"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = "2"  # 2: a crc per row, the dead table (a version 1 file is upgraded in place)
DEFAULT_MEMORY_MAX_EVENTS = 1000
DEAD_MAX_ROWS = 1000
COMPACT_MIN_BYTES = 1 << 20
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


def default_spool_path(device_id: str) -> Path:
    """``$XDG_STATE_HOME/edge-mmer/spool-<device>.sqlite`` (``~/.local/state`` when unset)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", device_id) or "default"
    if safe != device_id:  # two ids that sanitize alike never share a spool
        safe += "-" + hashlib.sha256(device_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
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
        payload_ok: PayloadCheck | None = None,
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
        self._payload_ok = payload_ok
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._disk_count = 0
        self._disk_bytes = 0
        self._memory: OrderedDict[int, SpoolRow] = OrderedDict()  # rows the disk refused
        self._unsynced_acks: set[int] = set()  # acknowledged, but the DELETE failed: never replay in-process
        self._next_id = 1
        self.dropped = 0
        self.write_errors = 0
        self.dead_lettered = 0  # rows that failed their check: moved to the dead table, never published
        self.salvaged = 0  # rows carried over from a damaged file
        self.lost = 0  # rows of a damaged file that could not be read back
        self._read_error = False
        self._locked = False
        self._compacted_at = -1e9
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
            self._check_file()
        except sqlite3.DatabaseError as exc:
            if "locked" in str(exc):
                self._open_failed(exc)
            else:
                self._heal(exc)
        except OSError as exc:
            self._open_failed(exc)
        if self._db is not None and self._disk_count:
            log.info("spool %s holds %d unacknowledged event(s) from an earlier run; they are sent first",
                     self.path, self._disk_count)

    def _check_file(self) -> None:
        """``quick_check`` and the counts; a sqlite.DatabaseError when the file is damaged."""
        assert self._db is not None
        problems = [str(r[0]) for r in self._db.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise sqlite3.DatabaseError(f"quick_check: {'; '.join(problems[:3])}")
        row = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0), COALESCE(MAX(id), 0) FROM spool").fetchone()
        dead_max = int(self._db.execute("SELECT COALESCE(MAX(id), 0) FROM dead").fetchone()[0])
        self._disk_count, self._disk_bytes = int(row[0]), int(row[1])
        self._next_id = max(int(row[2]), dead_max, self._next_id - 1) + 1

    def _heal(self, exc: BaseException) -> None:
        """A damaged file: move it aside, salvage its readable rows into a new one, count the rest."""
        assert self.path is not None
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        try:
            for suffix in ("", "-wal", "-shm"):
                src = self.path.with_name(self.path.name + suffix)
                if src.exists():
                    os.replace(src, aside.with_name(aside.name + suffix))
            rows, claimed = salvage(aside)
            self._db = self._connect(self.path)
            self._next_id = max([self._next_id, *(r.id + 1 for r in rows)])
            self._disk_count = self._disk_bytes = 0
            kept = self._insert_salvaged(rows)
            self._check_file()
        except (OSError, sqlite3.Error) as exc2:
            self._open_failed(exc2)
            return
        lost = max(0, claimed - len(rows)) if claimed is not None else 0
        self.salvaged += kept
        self.lost += lost
        unknown = "" if claimed is not None else " (its row count is unreadable: more may be lost)"
        log.error("spool %s is damaged or not a readable sqlite database (%s); moved it to %s and started a new "
                  "one with its %d readable row(s) "
                  "(%d lost%s, %d dead-lettered)", self.path, exc, aside, kept, lost, unknown, len(rows) - kept)

    def _insert_salvaged(self, rows: list[RawRow]) -> int:
        kept = 0
        with self._transaction() as db:
            for raw in rows:
                checked = check_row(raw, self._payload_ok)
                if isinstance(checked, str):
                    self._bury(db, raw, checked)
                    continue
                db.execute("INSERT INTO spool (id, topic, payload, qos, retain, size, created, crc) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           (raw.id, checked.topic, raw.payload, checked.qos, int(checked.retain), len(raw.payload),
                            time.time(), row_crc(checked.topic, raw.payload, checked.qos, checked.retain)))
                kept += 1
        return kept

    def _bury(self, db: sqlite3.Connection, raw: RawRow, reason: str) -> None:
        """Move a row that failed its check to the dead table (inside a transaction)."""
        db.execute("DELETE FROM spool WHERE id = ?", (raw.id,))
        db.execute("INSERT OR REPLACE INTO dead (id, topic, payload, qos, retain, reason, created) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (raw.id, raw.topic, raw.payload, str(raw.qos), str(raw.retain), reason, time.time()))
        db.execute("DELETE FROM dead WHERE id NOT IN (SELECT id FROM dead ORDER BY id DESC LIMIT ?)",
                   (DEAD_MAX_ROWS,))
        self.dead_lettered += 1
        if self.dead_lettered <= 10:
            log.error("spool %s: row %d is not published and moved to the dead table: %s%s", self.path, raw.id,
                      reason, " (further ones are counted, not logged)" if self.dead_lettered == 10 else "")

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
                       "size INTEGER NOT NULL, created REAL NOT NULL, crc INTEGER)")
            db.execute("CREATE TABLE IF NOT EXISTS dead (id INTEGER PRIMARY KEY, topic BLOB, payload BLOB, "
                       "qos TEXT, retain TEXT, reason TEXT NOT NULL, created REAL NOT NULL)")
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,))
            version = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0]
            columns = {str(r[1]) for r in db.execute("PRAGMA table_info(spool)")}
            if version == "1" and "crc" not in columns:  # the version before the CRC: upgraded in place
                db.execute("ALTER TABLE spool ADD COLUMN crc INTEGER")
                db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (SCHEMA_VERSION,))
                version, columns = SCHEMA_VERSION, columns | {"crc"}
            db.execute("COMMIT")
        except BaseException:
            db.close()
            raise
        missing = {"id", "topic", "payload", "qos", "retain", "size", "created", "crc"} - columns
        if version != SCHEMA_VERSION or missing:
            db.close()
            raise sqlite3.DatabaseError(f"spool schema version {version!r} (columns missing: "
                                        f"{', '.join(sorted(missing)) or 'none'}), expected {SCHEMA_VERSION!r}")
        return db

    def _open_failed(self, exc: BaseException) -> None:
        self.write_errors += 1
        self._error_burst = True
        locked = "locked" in str(exc)
        self._locked = locked
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
                db.execute("INSERT INTO spool (id, topic, payload, qos, retain, size, created, crc) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           (row.id, row.topic, row.payload, row.qos, int(row.retain), size, time.time(),
                            row_crc(row.topic, row.payload, row.qos, row.retain)))
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
            if self._disk_count <= 0:
                self._compact()

    def _compact(self) -> None:
        """The spool has drained: give the free pages back when they are worth it."""
        assert self._db is not None
        now = time.monotonic()
        if now - self._compacted_at < 5.0:
            return
        self._compacted_at = now
        try:
            free = int(self._db.execute("PRAGMA freelist_count").fetchone()[0])
            page = int(self._db.execute("PRAGMA page_size").fetchone()[0])
            if free * page < COMPACT_MIN_BYTES:
                return
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            log.debug("spool %s: compaction skipped: %s", self.path, exc)
            return
        log.info("spool %s drained; compacted it (%d free page(s) given back)", self.path, free)

    # ---- reading -------------------------------------------------------------------------------

    def pending(self, limit: int = 100, after_id: int = 0) -> list[SpoolRow]:
        """Up to ``limit`` unacknowledged rows with ``id > after_id``, oldest first; rows that fail
        their check are moved to the dead table instead (never returned)."""
        with self._lock:
            if self._closed or limit <= 0:
                return []
            rows: list[SpoolRow] = []
            if self._db is not None:
                rows = self._pending_disk(limit, after_id)
            rows.extend(r for r in self._memory.values() if r.id > after_id)
            rows.sort(key=lambda r: r.id)
            return rows[:limit]

    def _pending_disk(self, limit: int, after_id: int) -> list[SpoolRow]:
        assert self._db is not None
        for _ in range(3):  # each pass buries what failed; rows after them come in the next one
            try:
                raws = raw_rows(self._db.execute(f"{SELECT_RAW} WHERE id > ? ORDER BY id LIMIT ?",
                                                 (after_id, limit + len(self._unsynced_acks))))
            except sqlite3.DatabaseError as exc:
                if "malformed" in str(exc) or "not a database" in str(exc):
                    self._heal(exc)
                    return []
                if not self._read_error:
                    self._read_error = True
                    log.error("spool %s cannot be read: %s; sending from memory only until it can", self.path, exc)
                return []
            self._read_error = False
            good: list[SpoolRow] = []
            bad: list[tuple[RawRow, str]] = []
            for raw in raws:
                if raw.id in self._unsynced_acks:
                    continue
                checked = check_row(raw, self._payload_ok)
                if isinstance(checked, str):
                    bad.append((raw, checked))
                else:
                    good.append(checked)
            if not bad:
                return good
            self._bury_rows(bad)
            if good:
                return good
        return []

    def _bury_rows(self, bad: list[tuple[RawRow, str]]) -> None:
        try:
            with self._transaction() as db:
                for raw, reason in bad:
                    self._bury(db, raw, reason)
        except (sqlite3.Error, OSError) as exc:
            self._write_failed(exc)
            return
        self._disk_count -= len(bad)
        self._disk_bytes -= sum(raw.size for raw, _ in bad)

    def quarantine(self, row_id: int, reason: str) -> None:
        """A row the publisher could not hand over (paho refused it): dead-letter it. Never raises."""
        with self._lock:
            if self._closed:
                return
            mem = self._memory.pop(row_id, None)
            if mem is not None:
                self.dead_lettered += 1
                log.error("spool %s: event %d (in memory) not published: %s", self.path, row_id, reason)
                return
            if self._db is None:
                return
            try:
                found = raw_rows(self._db.execute(f"{SELECT_RAW} WHERE id = ?", (row_id,)))
            except sqlite3.Error as exc:
                log.error("spool %s: row %d cannot be dead-lettered: %s", self.path, row_id, exc)
                return
            if found:
                self._bury_rows([(found[0], reason)])

    def last(self) -> SpoolRow | None:
        """The newest unacknowledged row that passes its check, or None."""
        with self._lock:
            candidates: list[SpoolRow] = []
            if self._memory:
                candidates.append(next(reversed(self._memory.values())))
            if self._db is not None and not self._closed:
                try:
                    raws = raw_rows(self._db.execute(f"{SELECT_RAW} ORDER BY id DESC LIMIT 50"))
                except sqlite3.Error:
                    raws = []
                for raw in raws:  # the newest row that passes its check (a damaged one is not the state)
                    checked = check_row(raw, self._payload_ok)
                    if raw.id not in self._unsynced_acks and not isinstance(checked, str):
                        candidates.append(checked)
                        break
            return max(candidates, key=lambda x: x.id) if candidates else None

    def __len__(self) -> int:
        with self._lock:
            return max(0, self._disk_count - len(self._unsynced_acks)) + len(self._memory)

    @property
    def in_memory(self) -> int:
        """Rows held only in memory (the disk refused them)."""
        return len(self._memory)

    @property
    def locked(self) -> bool:
        """The file is held by another process (this spool runs on memory)."""
        return self._locked

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
            counts = {"dropped (spool full)": self.dropped, "dead-lettered": self.dead_lettered,
                      "lost in a damaged file": self.lost, "salvaged from a damaged file": self.salvaged}
            said = ", ".join(f"{n} {what}" for what, n in counts.items() if n)
            if said:
                log.warning("spool %s at close: %s", self.path, said)
            if self._db is not None:
                try:
                    self._db.close()
                except sqlite3.Error as exc:
                    log.error("spool %s did not close cleanly: %s", self.path, exc)
                self._db = None

    def __repr__(self) -> str:
        return (f"Spool(path={self.path!s}, pending={len(self)}, dropped={self.dropped}, "
                f"write_errors={self.write_errors}, dead_lettered={self.dead_lettered}, lost={self.lost})")
