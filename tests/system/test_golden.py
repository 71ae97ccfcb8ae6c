"""Behaviour kept across refactors: the demo events, ``bundle show``, every subcommand's options.

The golden files in ``tests/golden/`` were recorded from the product itself (``EDGE_MMER_RECORD_GOLDEN=1
pytest tests/system/test_golden.py`` rewrites them); a change to any of these outputs is a change of behaviour
and must be deliberate.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
RECORD = os.environ.get("EDGE_MMER_RECORD_GOLDEN") == "1"

COMMANDS = (
    (),
    ("run",),
    ("profile",),
    ("synth",),
    ("train",),
    ("evaluate",),
    ("bundle",),
    ("bundle", "verify"),
    ("bundle", "show"),
    ("convert",),
    ("calibrate",),
    ("calibrate", "build"),
    ("calibrate", "record"),
    ("doctor",),
    ("service",),
    ("service", "unit"),
    ("service", "install"),
)
# fields that legitimately differ between runs: the wall clock, measured latency, the random session id
VARYING = ("wall_time", "decision_latency_ms", "session_id")


def _golden(name: str, value: str) -> str:
    path = GOLDEN / name
    if RECORD:
        path.write_text(value, encoding="utf-8")
    return path.read_text(encoding="utf-8")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_mmer.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, check=False)


@pytest.mark.parametrize("emit", ["change", "every"])
def test_demo_events_are_kept(emit: str, tmp_path: Path) -> None:
    """`edge-mmer run` on the demo: the same events (labels exact, scores to 1e-6); with
    ``emit = "every"`` every decision is an event, so every decision is compared."""
    config = tmp_path / "run.toml"
    config.write_text(f'[decision]\nemit = "{emit}"\n', encoding="utf-8")
    out = _cli("-q", "run", "--device-id", "golden", "--config", str(config))
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    for ev in events:
        for key in VARYING:
            ev.pop(key)
    want = json.loads(_golden(f"demo_events_{emit}.json", json.dumps(events, indent=1) + "\n"))
    assert len(events) == len(want) > 0

    def close(a: object, b: object, where: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            assert a.keys() == b.keys(), where
            for k in a:
                close(a[k], b[k], f"{where}.{k}")
        elif isinstance(a, float) or isinstance(b, float):
            assert a == pytest.approx(b, abs=1e-6), where
        else:
            assert a == b, where

    for i, (got, exp) in enumerate(zip(events, want, strict=True)):
        close(got, exp, f"event[{i}]")


def test_bundle_show_is_kept() -> None:
    out = _cli("bundle", "show", "demo/bundle")
    assert out.returncode == 0, out.stderr
    assert out.stdout == _golden("bundle_show.txt", out.stdout)


def _options(args: tuple[str, ...]) -> list[str]:
    from edge_mmer.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), pytest.raises(SystemExit) as exit_info:
        main([*args, "--help"])
    assert exit_info.value.code == 0
    options: set[str] = set()
    for line in buf.getvalue().splitlines():  # argparse lists each option as "  -x, --long METAVAR   help"
        m = re.match(r"^ {2}(-\S.*?)(?: {2,}|$)", line)
        commands = re.match(r"^ {2}\{([\w,-]+)\}", line)  # the subcommands
        if commands:
            options.update(commands.group(1).split(","))
        if m:
            options.update(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", m.group(1)))
    return sorted(options)


def test_every_subcommand_keeps_its_options() -> None:
    got = {" ".join(args) or "edge-mmer": _options(args) for args in COMMANDS}
    want = json.loads(_golden("help_options.json", json.dumps(got, indent=1) + "\n"))
    for command, options in want.items():
        missing = sorted(set(options) - set(got[command]))
        assert not missing, f"{command}: options gone: {missing}"
