"""stdout and JSONL sinks, the spool, the sink factory and Home Assistant discovery payloads.

The MQTT sink against a real broker is in runtime/test_mqtt.py.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
from support.events import LABELS, make_event, make_stats

from edge_mmer.errors import ConfigError
from edge_mmer.runtime.events import load_schema
from edge_mmer.runtime.settings import load_settings
from edge_mmer.runtime.sinks.base import SinkError
from edge_mmer.runtime.sinks.factory import make_sink
from edge_mmer.runtime.sinks.jsonl import JsonlSink
from edge_mmer.runtime.sinks.mqtt import MqttOptions, MqttSink, parse_broker_url
from edge_mmer.runtime.sinks.mqtt import homeassistant as ha
from edge_mmer.runtime.sinks.mqtt.spool import Spool, default_spool_path
from edge_mmer.runtime.sinks.stdout import StdoutSink


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = load_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


# ---- stdout ---------------------------------------------------------------------------------------

def test_stdout_sink_writes_one_valid_json_line_per_event(validator: jsonschema.protocols.Validator) -> None:
    buf = io.StringIO()
    sink = StdoutSink(buf)
    events = [make_event(i, face=i % 2 == 0) for i in range(1, 6)]
    for e in events:
        sink.emit(e)
    sink.publish_stats(make_stats(frames=12))  # never on the event stream
    sink.close()
    lines = buf.getvalue().splitlines()
    assert len(lines) == 5
    for line, e in zip(lines, events, strict=True):
        obj = json.loads(line)
        validator.validate(obj)
        assert obj == e.to_dict()
    assert buf.getvalue().endswith("\n")


def test_stdout_sink_defaults_to_sys_stdout(capsys: pytest.CaptureFixture[str],
                                            validator: jsonschema.protocols.Validator) -> None:
    sink = StdoutSink()
    sink.emit(make_event(1))
    sink.publish_stats(make_stats(frames=1))
    sink.close()
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    validator.validate(json.loads(out[0]))


def test_stdout_sink_broken_pipe_is_a_sink_error() -> None:
    r, w = os.pipe()
    os.close(r)
    stream = os.fdopen(w, "w")
    sink = StdoutSink(stream)
    with pytest.raises(SinkError, match="broken pipe"):
        sink.emit(make_event(1))
    sink.close()
    with pytest.raises(BrokenPipeError):  # the unflushed line is still in the buffer
        stream.close()


# ---- JSONL ----------------------------------------------------------------------------------------

def test_jsonl_sink_appends_valid_lines_and_creates_the_directory(tmp_path: Path,
                                                                  validator: jsonschema.protocols.Validator) -> None:
    path = tmp_path / "logs" / "deep" / "events.jsonl"
    with JsonlSink(path, fsync_every=2) as sink:
        for i in range(1, 4):
            sink.emit(make_event(i))
    with JsonlSink(path) as sink:  # a second run appends
        sink.emit(make_event(4, session_id="session-b"))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["seq"] for x in lines] == [1, 2, 3, 4]
    for line in lines:
        validator.validate(json.loads(line))
    assert json.loads(lines[-1])["session_id"] == "session-b"


@pytest.mark.parametrize("make_bad", [
    lambda tmp: tmp / "a-file" / "events.jsonl",  # parent is a regular file
    lambda tmp: tmp,  # a directory
], ids=["parent-is-a-file", "is-a-directory"])
def test_jsonl_sink_unopenable_path_names_it(tmp_path: Path, make_bad: Callable[[Path], Path]) -> None:
    (tmp_path / "a-file").write_text("x")
    bad = make_bad(tmp_path)
    with pytest.raises(SinkError) as err:
        JsonlSink(bad)
    assert str(bad) in str(err.value)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux) to simulate a full disk")
def test_jsonl_sink_disk_full_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    sink = JsonlSink("/dev/full", fsync_every=0)
    for i in range(1, 4):
        sink.emit(make_event(i))  # ENOSPC: must not raise
    assert sink.write_errors == 3 and sink.emitted == 0
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and "/dev/full" in r.getMessage()]
    assert len(errors) == 1, "one error per burst, naming the file"
    sink.close()


# ---- spool ----------------------------------------------------------------------------------------

def test_spool_is_a_persistent_fifo(tmp_path: Path) -> None:
    path = tmp_path / "s" / "spool.sqlite"
    sp = Spool(path)
    ids = [sp.append("t/e", f"m{i}", 1, False) for i in range(5)]
    assert ids == sorted(ids) and len(sp) == 5
    sp.ack(ids[1])
    sp.ack(999_999)  # unknown: ignored
    assert [r.payload for r in sp.pending(10)] == [b"m0", b"m2", b"m3", b"m4"]
    assert [r.payload for r in sp.pending(2, after_id=ids[2])] == [b"m3", b"m4"]
    sp.close()
    again = Spool(path)  # a restart
    rows = again.pending(10)
    assert [r.payload for r in rows] == [b"m0", b"m2", b"m3", b"m4"]
    assert rows[0].topic == "t/e" and rows[0].qos == 1 and rows[0].retain is False
    new_id = again.append("t/e", "m5")
    assert new_id > max(ids), "ids keep growing after a restart (order is kept)"
    last = again.last()
    assert last is not None and last.payload == b"m5"
    for r in again.pending(10):
        again.ack(r.id)
    assert len(again) == 0 and again.last() is None
    again.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_spool_full_drops_oldest_and_warns_once_per_burst(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    sp = Spool(tmp_path / "spool.sqlite", max_events=5)
    for i in range(12):
        sp.append("t", f"m{i}")
    assert len(sp) == 5 and sp.dropped == 7
    assert [r.payload for r in sp.pending(10)] == [f"m{i}".encode() for i in range(7, 12)]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "OLDEST" in r.getMessage()]
    assert len(warnings) == 1
    for r in sp.pending(3):
        sp.ack(r.id)
    sp.append("t", "fits")  # the burst ends: an info line with the count
    assert any("7 oldest event(s) were dropped" in r.getMessage() for r in caplog.records)
    sp.close()


def test_spool_byte_bound(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sp = Spool(tmp_path / "spool.sqlite", max_bytes=1000)
    for i in range(10):
        sp.append("t", bytes([i]) * 300)
    assert len(sp) == 3 and sp.dropped == 7
    assert [r.payload[0] for r in sp.pending(10)] == [7, 8, 9]
    assert sp.append("t", b"x" * 1001) == 0  # larger than the whole spool: dropped, counted
    assert sp.dropped == 8 and len(sp) == 3
    sp.close()


def test_spool_unwritable_path_falls_back_to_memory(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "not-a-dir").write_text("x")
    bad = tmp_path / "not-a-dir" / "spool.sqlite"
    caplog.set_level(logging.INFO)
    sp = Spool(bad, memory_max_events=3)
    assert not sp.on_disk
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and str(bad) in errors[0] and "memory" in errors[0]
    for i in range(5):
        assert sp.append("t", f"m{i}") > 0  # never raises
    assert [r.payload for r in sp.pending(10)] == [b"m2", b"m3", b"m4"] and sp.dropped == 2
    sp.ack(sp.pending(1)[0].id)
    assert len(sp) == 2
    sp.close()


def test_spool_file_is_locked_to_one_user(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "spool.sqlite"
    first = Spool(path)
    first.append("t", "a")
    caplog.set_level(logging.ERROR)
    second = Spool(path)
    assert not second.on_disk
    assert any("another" in r.getMessage() and str(path) in r.getMessage() for r in caplog.records)
    second.close()
    first.close()
    third = Spool(path)
    assert third.on_disk and len(third) == 1
    third.close()


def test_spool_corrupt_file_is_moved_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "spool.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    caplog.set_level(logging.ERROR)
    sp = Spool(path)
    assert sp.on_disk and len(sp) == 0
    assert list(tmp_path.glob("spool.sqlite.corrupt-*"))
    assert any("not a readable sqlite database" in r.getMessage() for r in caplog.records)
    sp.close()


def test_default_spool_path_uses_xdg_state_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_spool_path("robot_1") == tmp_path / "edge-mmer" / "spool-robot_1.sqlite"
    assert default_spool_path("robot/1") != default_spool_path("robot_1")  # never one spool for two ids
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_spool_path("r").parent == Path.home() / ".local" / "state" / "edge-mmer"


# ---- factory and URLs -----------------------------------------------------------------------------

def test_make_sink_stdout_and_jsonl(tmp_path: Path) -> None:
    buf = io.StringIO()
    for spec in ("stdout", "-", " stdout "):
        assert isinstance(make_sink(spec, device_id="d", stream=buf), StdoutSink)
    sink = make_sink(f"jsonl:{tmp_path / 'x' / 'e.jsonl'}", device_id="d")
    assert isinstance(sink, JsonlSink) and sink.path == tmp_path / "x" / "e.jsonl"
    sink.close()


def test_make_sink_mqtt_uses_the_template_options(tmp_path: Path) -> None:
    template = MqttOptions(spool_path=tmp_path / "spool.sqlite", reconnect_min_s=0.05, reconnect_max_s=0.1,
                           keepalive=10)
    sink = make_sink("mqtt://127.0.0.1:1/robots/", device_id="kiosk-7", labels=LABELS, mqtt=template)
    assert isinstance(sink, MqttSink)
    try:
        assert sink.topics.emotion == "robots/kiosk-7/emotion"
        assert sink.options.keepalive == 10 and sink.spool_path == tmp_path / "spool.sqlite"
        sink.emit(make_event(1, device_id="kiosk-7"))  # port 1: nobody there; spooled, no exception
        assert sink.counters()["spooled"] == 1
    finally:
        sink.close(timeout=0)


def test_make_sink_takes_the_runtime_settings_mqtt_section(tmp_path: Path) -> None:
    """The ``[mqtt]`` section as loaded from TOML is the sink's options: paths are paths, absent is None."""
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'[mqtt]\nspool_path = "{tmp_path / "s.sqlite"}"\npassword_env = "MY_PASSWORD_VAR"\n'
                   "spool_max_events = 7\n", encoding="utf-8")
    section = load_settings(cfg).mqtt
    assert isinstance(section, MqttOptions) and section.spool_path == tmp_path / "s.sqlite"
    assert section.username is None and section.password_file is None and section.ca_file is None
    assert section.password_env == "MY_PASSWORD_VAR" and section.spool_max_events == 7
    sink = make_sink("mqtt://127.0.0.1:1/p", device_id="d", labels=LABELS, mqtt=section)
    assert isinstance(sink, MqttSink) and sink.spool_path == tmp_path / "s.sqlite"
    assert sink.options.url == "mqtt://127.0.0.1:1/p" and sink.options.device_id == "d"
    sink.close(timeout=0)


def test_the_mqtt_section_takes_no_url_or_device_id(tmp_path: Path) -> None:
    """The broker URL and the device id come from ``[run]``; in ``[mqtt]`` they would be ignored."""
    cfg = tmp_path / "run.toml"
    for key, value in (("url", '"mqtt://h/p"'), ("device_id", '"d"'), ("inflight", "8")):
        cfg.write_text(f"[mqtt]\n{key} = {value}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=rf"unknown config key 'mqtt\.{key}'"):
            load_settings(cfg)


@pytest.mark.parametrize(("url", "tls", "host", "port", "prefix"), [
    ("mqtt://broker", False, "broker", 1883, "edge-mmer"),
    ("mqtt://broker:1884/home/robots/", False, "broker", 1884, "home/robots"),
    ("mqtts://10.0.0.2", True, "10.0.0.2", 8883, "edge-mmer"),
    ("MQTT://[::1]:1999/x", False, "::1", 1999, "x"),
])
def test_parse_broker_url(url: str, tls: bool, host: str, port: int, prefix: str) -> None:
    b = parse_broker_url(url)
    assert (b.tls, b.host, b.port, b.prefix) == (tls, host, port, prefix)


@pytest.mark.parametrize(("spec", "message"), [
    ("", "accepted forms"),
    ("kafka://x", "accepted forms"),
    ("jsonl:", "no path"),
    ("mqtt://:x/", "no host"),
    ("mqtt://host:abc/p", "port 'abc'"),
    ("mqtt://host:/p", "empty port"),
    ("mqtt://host:70000", "65535"),
    ("mqtt://host/a/+/b", "prefix"),
    ("mqtt://host/p?x=1", "query"),
    ("mqtt://user:hunter2@host/p", "contains a password"),
])
def test_make_sink_rejects_bad_specs_clearly(spec: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(SinkError) as err:
        make_sink(spec, device_id="d", mqtt=MqttOptions(spool_path=tmp_path / "s.sqlite"))
    assert message in str(err.value)
    assert "hunter2" not in str(err.value)


def test_mqtt_options_are_checked_before_anything_starts(tmp_path: Path) -> None:
    base = MqttOptions(device_id="d", url="mqtt://127.0.0.1:1/p", spool_path=tmp_path / "s.sqlite")
    cases = [
        (replace(base, device_id="a/b"), "one topic level"),
        (replace(base, ca_file=tmp_path / "ca.pem"), "mqtts://"),
        (replace(base, url="mqtts://h:1/p", ca_file=tmp_path / "missing.pem"), "missing.pem"),
        (replace(base, password_file=tmp_path / "pw"), "without a username"),
        (replace(base, username="u", password_file=tmp_path / "pw"), "cannot be read"),
        (replace(base, ha_discovery=True), "labels"),
        (replace(base, url="mqtt://u@h:1/p", username="v"), "username given twice"),
        (replace(base, qos=3), "qos"),
        (replace(base, url="mqtts://h:1/p", ca_file=tmp_path / "junk.pem"), "TLS files cannot be loaded"),
        (replace(base, spool_max_events=0), "max_events"),
    ]
    (tmp_path / "junk.pem").write_text("not a certificate")
    for options, message in cases:
        with pytest.raises(SinkError, match=re.escape(message)):
            MqttSink(options)
    assert not (tmp_path / "s.sqlite").exists(), "no spool is created for a sink that cannot start"


# ---- Home Assistant discovery ---------------------------------------------------------------------

def test_home_assistant_discovery_payloads() -> None:
    msgs = ha.discovery_messages(device_id="robot_1", labels=LABELS, events_topic="p/robot 1/emotion",
                                 state_topic="p/robot 1/state", availability_topic="p/robot 1/availability",
                                 model_id="demo-bundle")
    by_topic = {m.topic: json.loads(m.payload) for m in msgs}
    assert set(by_topic) == {"homeassistant/event/edge_mmer_robot_1/emotion/config",
                             "homeassistant/sensor/edge_mmer_robot_1/emotion/config"}
    assert all(m.retain for m in msgs)
    event = by_topic["homeassistant/event/edge_mmer_robot_1/emotion/config"]
    sensor = by_topic["homeassistant/sensor/edge_mmer_robot_1/emotion/config"]
    assert event["event_types"] == list(LABELS) and event["state_topic"] == "p/robot 1/emotion"
    assert "event_type" in event["value_template"] and "value_json.label" in event["value_template"]
    assert sensor["device_class"] == "enum" and sensor["options"] == list(LABELS)
    assert sensor["state_topic"] == "p/robot 1/state"
    for cfg in (event, sensor):
        assert cfg["availability_topic"] == "p/robot 1/availability"
        assert (cfg["payload_available"], cfg["payload_not_available"]) == ("online", "offline")
        assert cfg["device"]["identifiers"] == ["edge_mmer_robot_1"] and cfg["device"]["model_id"] == "demo-bundle"
    assert event["unique_id"] != sensor["unique_id"]
    assert [m.payload for m in ha.removal_messages("robot_1")] == ["", ""]
    assert ha.node_id("kiosk.1") != ha.node_id("kiosk_1") == "edge_mmer_kiosk_1"  # ids that sanitize alike
    with pytest.raises(ValueError, match="labels"):
        ha.discovery_messages(device_id="d", labels=(), events_topic="a", state_topic="b", availability_topic="c")


def test_home_assistant_sensor_attributes_carry_the_speaker() -> None:
    """The attributes template renders (Jinja, as Home Assistant does) with and without a speaker."""
    jinja2 = pytest.importorskip("jinja2", reason="jinja2 renders the template as Home Assistant would")
    msgs = ha.discovery_messages(device_id="d", labels=LABELS, events_topic="a", state_topic="b",
                                 availability_topic="c")
    sensor = next(json.loads(m.payload) for m in msgs if "/sensor/" in m.topic)
    template = jinja2.Environment().from_string(sensor["json_attributes_template"])
    event = {"confidence": 0.5, "scores": {"happy": 0.5}, "wall_time": "2026-01-01T00:00:00.000Z"}
    assert json.loads(template.render(value_json=event))["speaker"] is None
    who = {"track_id": 2, "box": [1, 2, 3, 4], "speaking_score": 0.7, "attribution": "sync"}
    assert json.loads(template.render(value_json={**event, "speaker": who}))["speaker"] == who


# ---- the statistics message and saying things once -------------------------------------------------

def test_stats_message_wire_shape() -> None:
    msg = make_stats("kiosk-2", events=3).with_sink("mqtt", {"connected": True}, device_id="kiosk-3")
    body = json.loads(msg.to_json())
    assert list(body) == ["schema", "device_id", "wall_time", "uptime_s", "stages", "counters", "sources", "drops",
                          "mqtt"]
    assert body["schema"] == "edge-mmer/stats/v1" and body["device_id"] == "kiosk-3" and body["mqtt"]["connected"]
    assert msg.figures() == {"uptime_s": 1.5, "stages": {"vad": {"count": 3, "p50": 0.4}}, "counters": {"events": 3},
                             "sources": {}, "drops": 0}
    nan = replace(msg, uptime_s=float("nan"))
    assert '"uptime_s":NaN' in nan.to_json()  # a broken figure is sent as such rather than losing the message


def test_log_once_says_a_condition_once_until_reset(caplog: pytest.LogCaptureFixture) -> None:
    from edge_mmer.runtime.logonce import LogOnce

    once = LogOnce(logging.getLogger("edge_mmer.test.once"))
    with caplog.at_level(logging.INFO, logger="edge_mmer.test.once"):
        assert once(logging.WARNING, "down", "broker %s down", "b")
        assert not once(logging.WARNING, "down", "broker %s down", "b")
        once.reset()
        assert once(logging.WARNING, "down", "broker %s down", "b")
    assert [r.getMessage() for r in caplog.records] == ["broker b down", "broker b down"]
