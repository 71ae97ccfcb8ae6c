"""The spool heals itself, against real damaged sqlite files: a corrupt b-tree page, a wrong schema,
poison rows (a topic that is not UTF-8, a wildcard, a QoS of 7), bit-rot inside a row, and a file that
never shrank after draining. Every case: the spool opens, the good rows flow in order, the bad ones
are counted, never published."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import pytest

from edge_mmer.runtime.sinks.mqtt.spool import Spool

PAGE = 4096


def _event(i: int, size: int = 400) -> bytes:
    return json.dumps({"seq": i, "pad": "x" * size}).encode()


def _is_json(payload: bytes) -> bool:
    try:
        return isinstance(json.loads(payload), dict)
    except ValueError:
        return False


def _filled(path: Path, n: int, size: int = 400) -> None:
    sp = Spool(path)
    for i in range(n):
        sp.append("adv/d1/emotion", _event(i, size))
    sp.close()
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0


def _leaf_pages(path: Path) -> list[int]:
    """Page numbers of the spool table's leaf pages (type byte 0x0D), found by reading the file."""
    data = path.read_bytes()
    return [n + 1 for n in range(2, len(data) // PAGE) if data[n * PAGE] == 0x0D]


def test_a_corrupt_page_is_moved_aside_and_the_readable_rows_salvaged(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    """B2: one page-type byte of a leaf page in the middle flipped; meta and schema intact. Before the
    fix: `sqlite3.DatabaseError: database disk image is malformed` out of Spool() at every start."""
    path = tmp_path / "spool.sqlite"
    _filled(path, 300)
    leaves = _leaf_pages(path)
    assert len(leaves) > 10
    victim = leaves[len(leaves) // 2]
    data = bytearray(path.read_bytes())
    data[(victim - 1) * PAGE] = 0x00  # not a page type
    path.write_bytes(bytes(data))
    caplog.set_level(logging.ERROR)
    sp = Spool(path, payload_ok=_is_json)
    assert sp.on_disk and list(tmp_path.glob("spool.sqlite.corrupt-*"))
    assert 250 <= sp.salvaged < 300 and sp.salvaged + sp.lost == 300, (sp.salvaged, sp.lost)
    rows = sp.pending(400)
    seqs = [json.loads(r.payload)["seq"] for r in rows]
    assert len(rows) == sp.salvaged and seqs == sorted(seqs) and seqs[0] == 0 and seqs[-1] == 299
    assert any("damaged" in r.getMessage() and "lost" in r.getMessage() for r in caplog.records)
    new_id = sp.append("adv/d1/emotion", _event(300))
    assert new_id > rows[-1].id  # order is kept across the healing
    sp.close()
    again = Spool(path)  # the next start opens the healed file without any error
    assert again.on_disk and len(again) == len(rows) + 1 and again.salvaged == 0
    again.close()


def test_a_spool_with_a_wrong_schema_is_healed(tmp_path: Path) -> None:
    """B2: a `spool` table without its `size` column (before the fix: `no such column: size`)."""
    path = tmp_path / "spool.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('schema', '1')")
        db.execute("CREATE TABLE spool (id INTEGER PRIMARY KEY, topic TEXT, payload BLOB, qos INTEGER, "
                   "retain INTEGER, created REAL)")
        db.executemany("INSERT INTO spool VALUES (?, 'adv/d1/emotion', ?, 1, 0, 0)",
                       [(i, _event(i)) for i in range(1, 6)])
    db.close()
    sp = Spool(path)
    assert sp.on_disk and sp.salvaged == 5 and len(sp) == 5
    assert [json.loads(r.payload)["seq"] for r in sp.pending(10)] == [1, 2, 3, 4, 5]
    sp.close()


def test_poison_rows_are_dead_lettered_and_never_block_the_rest(tmp_path: Path) -> None:
    """B3: a topic that is not UTF-8, a topic with '#', and a QoS of 7 among good rows (before the fix:
    every read raised `Could not decode to UTF-8`, or paho's ValueError killed the publisher)."""
    path = tmp_path / "spool.sqlite"
    _filled(path, 6)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE spool SET topic = CAST(x'6164762fff642f656d6f74696f6e' AS TEXT) WHERE id = 2")
        db.execute("UPDATE spool SET topic = 'adv/d1/emo#tion' WHERE id = 3")
        db.execute("UPDATE spool SET qos = 7 WHERE id = 5")
    db.close()
    sp = Spool(path)
    rows = sp.pending(10)
    assert [r.id for r in rows] == [1, 4, 6] and sp.dead_lettered == 3
    assert len(sp) == 3
    sp.close()
    with sqlite3.connect(path) as db:
        reasons = [r[0] for r in db.execute("SELECT reason FROM dead ORDER BY id")]
    db.close()
    assert len(reasons) == 3 and "UTF-8" in reasons[0] and "topic" in reasons[1] and "qos" in reasons[2]
    again = Spool(path)  # they stay out across restarts
    assert [r.id for r in again.pending(10)] == [1, 4, 6] and again.dead_lettered == 0
    again.close()


def test_bit_rot_inside_a_row_is_caught_by_its_crc(tmp_path: Path) -> None:
    """B5: bytes of stored payloads changed on disk (sqlite has no page checksums): before the fix they
    were replayed as garbage events; now the CRC catches them, also for the retained state (last())."""
    path = tmp_path / "spool.sqlite"
    _filled(path, 10)
    with sqlite3.connect(path) as db:
        for i in (3, 7, 10):
            payload = bytearray(db.execute("SELECT payload FROM spool WHERE id = ?", (i,)).fetchone()[0])
            payload[25] ^= 0x5A
            db.execute("UPDATE spool SET payload = ? WHERE id = ?", (bytes(payload), i))
    db.close()
    sp = Spool(path)
    last = sp.last()
    assert last is not None and last.id == 9  # the damaged newest row is not the state
    assert [r.id for r in sp.pending(20)] == [1, 2, 4, 5, 6, 8, 9] and sp.dead_lettered == 3
    assert all(_is_json(r.payload) for r in sp.pending(20))
    sp.close()


def test_the_file_shrinks_after_draining(tmp_path: Path) -> None:
    """B16: 3,000 events of 1 KB drained; before the fix the file kept every page (it never shrank)."""
    path = tmp_path / "spool.sqlite"
    sp = Spool(path)
    for i in range(3000):
        sp.append("adv/d1/emotion", _event(i, 1000))
    full = path.stat().st_size + Path(f"{path}-wal").stat().st_size
    assert full > 3_000_000
    for r in sp.pending(5000):
        sp.ack(r.id)
    assert len(sp) == 0
    drained = path.stat().st_size + Path(f"{path}-wal").stat().st_size
    assert drained < 200_000, (full, drained)
    sp.close()


def test_every_drop_is_reported_at_close(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """B16: the dropped count said at close, also when the broker never came back."""
    sp = Spool(tmp_path / "spool.sqlite", max_events=3)
    for i in range(5):
        sp.append("adv/d1/emotion", _event(i))
    caplog.set_level(logging.WARNING)
    sp.close()
    assert any("2 dropped (spool full)" in r.getMessage() for r in caplog.records)
