"""The delivery benchmark's own parts, fast: the remuxed clip and the event-by-event comparison.

The benchmark itself (``python -m benchmarks.delivery``, minutes, a real broker) is the measurement;
these only check that what it reports would show a loss, a duplicate, a reordering or a change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import av
from support.paths import DEMO_CLIP

from benchmarks.delivery import analyse, remux_clip


def _event(seq: int, session: str = "s1", label: str = "happy") -> dict[str, Any]:
    return {"seq": seq, "session_id": session, "wall_time": f"t{seq}", "decision_latency_ms": seq * 1.5,
            "label": label}


def _payloads(events: list[dict[str, Any]]) -> list[bytes]:
    return [json.dumps(e).encode() for e in events]


def _facts() -> dict[str, Any]:
    return {"broker_kills": 0, "reconnects": 0, "reconnect_after_broker_up_s": None, "wall_s": 1.0, "rc": 0}


def test_the_remuxed_clip_plays_the_demo_clip_n_times(tmp_path: Path) -> None:
    out = remux_clip(DEMO_CLIP, 3, tmp_path / "long3.mp4")
    with av.open(str(DEMO_CLIP)) as one, av.open(str(out)) as three:
        assert [s.frames * 3 for s in one.streams] == [s.frames for s in three.streams]
        assert three.duration is not None and one.duration is not None
        assert abs(three.duration - 3 * one.duration) < 0.5e6  # the joins: audio priming, a frame


def test_a_clean_delivery_matches_whatever_the_clock_changed() -> None:
    ref = [_event(s) for s in (1, 2, 3)]
    got = [{**_event(s, session="s2"), "wall_time": "later", "decision_latency_ms": 9.0} for s in (1, 2, 3)]
    r = analyse("kill", ref, _payloads(got), **_facts())
    assert (r.received, r.missing, r.duplicates, r.out_of_order, r.content_diffs, r.sessions) == (3, 0, 0, 0, 0, 1)
    assert r.ok


def test_loss_duplicates_reordering_and_changes_are_counted() -> None:
    ref = [_event(s) for s in (1, 2, 3, 4, 5)]
    got = [_event(1), _event(3), _event(2), _event(3), _event(5, label="sad")]
    r = analyse("kill", ref, _payloads(got), **_facts())
    assert (r.received, r.missing, r.duplicates, r.out_of_order, r.content_diffs) == (4, 1, 1, 1, 1)
    assert not r.ok
