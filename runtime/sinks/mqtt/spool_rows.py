"""The spool's integrity checks: a CRC per row, the row's fields checked before it is published, and
the rows of a damaged file read back one way or the other.

sqlite has no page checksums: a flipped bit in a row's payload reads back as a valid row of garbage,
and a topic that is not UTF-8 (or holds a wildcard, or a QoS of 7) makes paho or sqlite raise at
every try. So every row carries ``crc`` (CRC-32 over its topic, QoS, retain flag and payload) and is
checked by :func:`check_row` when it is read; a row that fails is not published but moved to the
spool's dead-letter table and counted. Rows written before the CRC existed (``crc`` NULL) get every
check but the CRC.
"""

from __future__ import annotations

import logging
import sqlite3
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAX_TOPIC_BYTES = 65535  # MQTT: a UTF-8 string is prefixed by its 16-bit length
_TOPIC_FORBIDDEN = ("#", "+", "\x00")

PayloadCheck = Callable[[bytes], bool]
"""Whether a payload is one the sink could have written (the MQTT sink: a JSON object)."""


@dataclass(frozen=True)
class SpoolRow:
    """One spooled message, in the order it was appended (``id`` grows)."""

    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool


@dataclass(frozen=True)
class RawRow:
    """A row as stored, before any check (the topic as bytes: it may not be UTF-8)."""

    id: int
    topic: bytes
    payload: Any  # bytes, unless the file was damaged or written by something else
    qos: Any
    retain: Any
    crc: int | None
    size: int


def row_crc(topic: str | bytes, payload: bytes, qos: int, retain: bool) -> int:
    """CRC-32 of a row's fields (what :func:`check_row` recomputes)."""
    head = (topic.encode("utf-8") if isinstance(topic, str) else topic) + b"\x00" + bytes([qos & 0xFF, int(retain)])
    return zlib.crc32(payload, zlib.crc32(head))


def check_row(raw: RawRow, payload_ok: PayloadCheck | None = None) -> SpoolRow | str:
    """The row, or why it must not be published."""
    try:
        topic = raw.topic.decode("utf-8")
    except UnicodeDecodeError:
        return "the topic is not UTF-8"
    if not topic or any(c in topic for c in _TOPIC_FORBIDDEN) or len(raw.topic) > MAX_TOPIC_BYTES:
        return f"the topic {topic[:80]!r} is not a valid MQTT topic name"
    if not isinstance(raw.qos, int) or raw.qos not in (0, 1, 2):
        return f"qos {raw.qos!r} is not 0, 1 or 2"
    if raw.retain not in (0, 1):
        return f"retain {raw.retain!r} is not 0 or 1"
    if not isinstance(raw.payload, bytes):
        return "the payload is not a blob"
    if raw.crc is not None and raw.crc != row_crc(raw.topic, raw.payload, raw.qos, bool(raw.retain)):
        return "its CRC does not match (the row was damaged on disk)"
    if payload_ok is not None and not payload_ok(raw.payload):
        return "the payload is not one the sink writes"
    return SpoolRow(raw.id, topic, raw.payload, raw.qos, bool(raw.retain))


def raw_rows(cursor: sqlite3.Cursor) -> list[RawRow]:
    """Rows selected as ``id, CAST(topic AS BLOB), payload, qos, retain, crc, size``."""
    return list(iter_raw(cursor))


def iter_raw(cursor: sqlite3.Cursor) -> Iterator[RawRow]:
    for i, t, p, q, r, c, s in cursor:
        yield RawRow(int(i), bytes(t) if t is not None else b"", p if isinstance(p, bytes) else (p or b""),
                     q, r, None if c is None else int(c), int(s or 0))


SELECT_RAW = "SELECT id, CAST(topic AS BLOB), payload, qos, retain, crc, size FROM spool"
_SELECT_LEGACY = "SELECT id, CAST(topic AS BLOB), payload, qos, retain, NULL, LENGTH(payload) FROM spool"


def salvage(path: Path) -> tuple[list[RawRow], int | None]:
    """The rows of a damaged spool file that can still be read, and how many it held (from its count,
    else from the ids missing between the scans; None when neither can be read). A damaged b-tree
    page ends a scan: the rows are read from the front and from the back, so only the rows on the
    damaged pages are lost."""
    try:
        db = sqlite3.connect(str(path), timeout=0.5)
    except sqlite3.Error as exc:
        log.debug("spool %s: nothing to salvage: %s", path, exc)
        return [], None
    rows: dict[int, RawRow] = {}
    claimed: int | None = None
    try:
        with_crc = _has_column(db, "crc")
        select = SELECT_RAW if with_crc and _has_column(db, "size") else _SELECT_LEGACY
        ends: list[int | None] = []
        broken = False
        for order in ("ASC", "DESC"):
            end: int | None = None
            try:
                for row in iter_raw(db.execute(f"{select} ORDER BY id {order}")):
                    rows[row.id] = row
                    end = row.id
            except sqlite3.Error as exc:
                broken = True
                log.debug("spool %s: the %s scan stopped at a damaged page: %s", path, order, exc)
            ends.append(end)
        try:
            claimed = int(db.execute("SELECT COUNT(*) FROM spool").fetchone()[0])
        except sqlite3.Error:
            # rows are appended with growing ids and drained oldest first: the ids missing between the
            # two scans are the rows on the damaged pages
            first_gone, last_gone = ends
            if broken and first_gone is not None and last_gone is not None and last_gone > first_gone:
                claimed = len(rows) + (last_gone - first_gone - 1)
    except sqlite3.Error as exc:
        log.debug("spool %s: no readable spool table: %s", path, exc)
    finally:
        db.close()
    return [rows[k] for k in sorted(rows)], claimed


def _has_column(db: sqlite3.Connection, column: str) -> bool:
    return any(str(r[1]) == column for r in db.execute("PRAGMA table_info(spool)"))
