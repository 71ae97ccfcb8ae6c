"""``edge-mmer run`` end to end, as a user runs it: the CLI in a subprocess on the demo clip, a TOML
config, bad settings, PyAudio on a virtual ALSA microphone, SIGTERM mid-utterance. (The loop in
process, with a real broker and failing sources: runtime/test_loop.py.)"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import jsonschema
import pytest
from support.cli import CliChildFactory, run_cli
from support.demo import demo_timeline
from support.virtual_mic import DEVICE_NAME, PacedVirtualMic, demo_pcm

from edge_mmer.config import ConfigError
from edge_mmer.runtime.events import load_schema
from edge_mmer.runtime.settings import load_settings


def collapse(labels: list[str]) -> list[str]:
    return [x for i, x in enumerate(labels) if i == 0 or labels[i - 1] != x]


def test_default_command_runs_the_demo_clip_and_prints_valid_events() -> None:
    out = run_cli(timeout=240)  # `edge-mmer` with no arguments: the embedded default
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    schema = load_schema()
    for e in events:
        jsonschema.validate(e, schema)
    assert [e["label"] for e in events] == collapse([x["label"] for x in demo_timeline()])
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert all(e["synthetic_model"] for e in events)
    assert "SYNTHETIC" in out.stderr  # said where it shows
    assert "cold start to first event" in out.stderr


def test_jsonl_sink_and_every_policy_from_a_toml_config(tmp_path: Path) -> None:
    cfg = tmp_path / "unit.toml"
    cfg.write_text(f'[run]\nsink = "jsonl:{tmp_path / "ev.jsonl"}"\ndevice_id = "kiosk-7"\n\n'
                   '[decision]\nemit = "every"\n')
    out = run_cli("run", "--config", str(cfg), timeout=240)
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    events = [json.loads(x) for x in (tmp_path / "ev.jsonl").read_text().splitlines()]
    assert [e["label"] for e in events] == [x["label"] for x in demo_timeline()]
    assert {e["device_id"] for e in events} == {"kiosk-7"}


def test_bad_settings_name_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[decision]\nalpah = 0.5\n")
    out = run_cli("run", "--config", str(cfg), timeout=240)
    assert out.returncode == 2 and "decision.alpah" in out.stderr
    cfg.write_text('[vad]\naggressiveness = "high"\n')
    with pytest.raises(ConfigError, match=r"vad\.aggressiveness"):
        load_settings(cfg)
    out = run_cli("run", "--camera", "97", "--mic", "none", timeout=240)
    assert out.returncode == 1 and "97" in out.stderr
    out = run_cli("run", "--bundle", str(tmp_path / "nope"), timeout=240)
    assert out.returncode == 1 and "nope" in out.stderr
    out = run_cli("run", "--sink", "mqtt://:x/", timeout=240)
    assert out.returncode == 1 and "mqtt://" in out.stderr


@pytest.mark.needs_virtual_mic
def test_loop_emits_events_from_a_pyaudio_microphone(tmp_path: Path) -> None:
    """PyAudio capture from a virtual ALSA microphone fed with the demo clip's audio at real time."""
    with PacedVirtualMic(tmp_path, demo_pcm()) as mic:
        out = run_cli("run", "--camera", "none", "--mic", DEVICE_NAME, "--max-events", "3", env=mic.env, timeout=120)
    assert out.returncode == 0, out.stderr
    events = [json.loads(x) for x in out.stdout.splitlines()]
    assert len(events) == 3
    tl = demo_timeline()
    for e in events:
        assert e["trigger"] == "utterance" and e["channels"]["face"] is None and e["channels"]["speech"] is not None
        length = e["utterance"]["end_s"] - e["utterance"]["start_s"]
        spans = [x["end_s"] - x["start_s"] for x in tl]
        assert min(spans) - 0.2 < length < max(spans) + 1
    assert "microphone" in out.stderr or DEVICE_NAME in out.stderr


def test_sigterm_finishes_the_utterance_and_exits_cleanly(tmp_path: Path, cli_child: CliChildFactory) -> None:
    events_file = tmp_path / "ev.jsonl"
    child = cli_child(None, "--realtime", "--sink", f"jsonl:{events_file}")
    # the 2nd sentence runs from 3.8 s to 6.3 s of the clip: stop in its middle
    assert child.wait_for(lambda: events_file.exists() and events_file.read_text().count("\n") >= 1), child.tail()
    time.sleep(1.5)
    child.stop(signal.SIGTERM)
    assert child.returncode == 0, child.stderr
    assert "stop request" in child.stderr
    events = [json.loads(x) for x in events_file.read_text().splitlines()]
    assert len(events) == 2  # the utterance in progress was finished and emitted
    assert events[1]["utterance"]["end_s"] < 6.3
