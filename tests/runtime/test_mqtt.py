"""The MQTT sink against a real mosquitto (the ``broker`` fixtures, tests/support/broker.py): delivery,
order, outages, spool, credentials, TLS and Home Assistant discovery. Subscribers that must not miss
anything across broker restarts use a persistent session on a broker with persistence on (see
tests/support/broker.py)."""

from __future__ import annotations

import json
import logging
import signal
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from support.broker import DEVICE_PASSWORD as SECRET
from support.broker import Mosquitto, Recorder, TlsFiles, make_tls_files, wait_until
from support.cli import Child, spawn
from support.events import LABELS, make_event, make_stats
from support.paths import TESTS

from edge_mmer.runtime.events import load_schema
from edge_mmer.runtime.sinks.base import SinkError
from edge_mmer.runtime.sinks.mqtt import MqttOptions, MqttSink

DEVICE = "robot-1"
PREFIX = "test"
EMOTION = f"{PREFIX}/{DEVICE}/emotion"
STATE = f"{PREFIX}/{DEVICE}/state"
AVAIL = f"{PREFIX}/{DEVICE}/availability"
STATS = f"{PREFIX}/{DEVICE}/stats"


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = load_schema()
    return jsonschema.validators.validator_for(schema)(schema)


def options(broker: Mosquitto, tmp_path: Path, **kw: Any) -> MqttOptions:
    base = MqttOptions(device_id=DEVICE, url=f"mqtt://127.0.0.1:{broker.port}/{PREFIX}",
                       spool_path=tmp_path / "spool.sqlite", reconnect_min_s=0.05, reconnect_max_s=0.25,
                       close_timeout_s=5.0)
    return replace(base, **kw)


def seqs(rec: Recorder, topic: str = EMOTION) -> list[int]:
    return [json.loads(p)["seq"] for p in rec.payloads(topic)]


def persistent_recorder(broker: Mosquitto, topics: list[str], name: str = "rec") -> Recorder:
    """A subscriber whose session survives broker restarts (broker persistence + clean=False)."""
    return Recorder(broker.port, topics, client_id=f"{name}-{broker.port}", clean=False).start()


# ---- the basics -----------------------------------------------------------------------------------

def test_events_state_availability_and_stats(broker: Mosquitto, tmp_path: Path,
                                             validator: jsonschema.protocols.Validator) -> None:
    rec = Recorder(broker.port, [f"{PREFIX}/#"]).start()
    sink = MqttSink(options(broker, tmp_path), labels=LABELS)
    assert rec.wait_for(lambda r: b"online" in r.payloads(AVAIL)), "online published at connect"
    events = [make_event(i, face=i % 3 != 0) for i in range(1, 31)]
    for e in events:
        sink.emit(e)
    assert rec.wait_count(EMOTION, 30)
    got = rec.messages(EMOTION)
    assert [json.loads(m.payload)["seq"] for m in got] == list(range(1, 31)), "every event, in order"
    for m, e in zip(got, events, strict=True):
        obj = json.loads(m.payload)
        validator.validate(obj)
        assert obj == e.to_dict()
    assert sink.flush(5.0)
    sink.publish_stats(make_stats(DEVICE, frames=145))
    assert rec.wait_count(STATS, 1)
    stats = json.loads(rec.payloads(STATS)[-1])
    assert stats["schema"] == "edge-mmer/stats/v1" and stats["device_id"] == DEVICE
    assert stats["counters"] == {"frames": 145} and stats["stages"]["vad"]["p50"] == 0.4
    assert stats["mqtt"]["published"] == 30 and stats["mqtt"]["spooled"] == 0
    sink.close()
    assert rec.wait_for(lambda r: r.payloads(AVAIL)[-1:] == [b"offline"]), "offline published at close"
    rec.stop()
    # what a newcomer sees: the retained state is the last event, availability is offline
    late = Recorder(broker.port, [STATE, AVAIL]).start()
    assert late.wait_count(STATE, 1) and late.wait_count(AVAIL, 1)
    state = late.messages(STATE)[0]
    assert state.retain and json.loads(state.payload) == events[-1].to_dict()
    avail = late.messages(AVAIL)[0]
    assert avail.retain and avail.payload == b"offline"
    late.stop()


def test_broker_down_at_start_events_spool_until_it_comes_up(broker: Mosquitto, tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    rec = persistent_recorder(broker, [EMOTION, AVAIL])
    broker.stop()
    sink = MqttSink(options(broker, tmp_path))  # must not raise with the broker down
    for i in range(1, 11):
        sink.emit(make_event(i))
    assert sink.counters()["connected"] is False and sink.counters()["spooled"] == 10
    assert wait_until(lambda: any("cannot reach" in r.getMessage() for r in caplog.records), 5)
    broker.start()
    assert rec.wait_count(EMOTION, 10), f"got {seqs(rec)}"
    for i in range(11, 16):
        sink.emit(make_event(i))
    assert rec.wait_count(EMOTION, 15)
    assert seqs(rec) == list(range(1, 16))
    assert sink.flush(5.0) and sink.counters()["published"] == 15
    assert rec.payloads(AVAIL)[-1:] == [b"online"]
    rec.stop()
    # a broker that comes back with nothing retained (its database lost): on the reconnect the sink
    # announces itself again and restores the retained state
    broker.stop()
    broker.db_path.unlink()
    broker.start()
    fresh = Recorder(broker.port, [AVAIL, STATE]).start()
    assert fresh.wait_count(AVAIL, 1) and fresh.wait_count(STATE, 1)
    assert fresh.payloads(AVAIL)[-1] == b"online"
    assert json.loads(fresh.payloads(STATE)[-1])["seq"] == 15
    sink.close()
    fresh.stop()


def test_qos0_events_are_sent_and_leave_the_spool(broker: Mosquitto, tmp_path: Path) -> None:
    rec = Recorder(broker.port, [EMOTION]).start()
    sink = MqttSink(options(broker, tmp_path, qos=0))
    for i in range(1, 11):
        sink.emit(make_event(i))
    assert rec.wait_count(EMOTION, 10) and seqs(rec) == list(range(1, 11))
    assert sink.flush(5.0) and sink.counters()["published"] == 10
    sink.close()
    rec.stop()


def test_broker_restarts_mid_run_every_event_once_in_order(broker: Mosquitto, tmp_path: Path) -> None:
    rec = persistent_recorder(broker, [EMOTION])
    sink = MqttSink(options(broker, tmp_path))
    seq = 0

    def emit(n: int) -> None:
        nonlocal seq
        for _ in range(n):
            seq += 1
            sink.emit(make_event(seq))

    def quiesce() -> None:
        assert rec.wait_count(EMOTION, seq), f"expected {seq}, got {seqs(rec)[-5:]}"
        rec.sync()  # the broker has processed the recorder's PUBACKs: nothing in flight to it

    emit(10)
    quiesce()
    # outage 1: the broker freezes with events unread in its socket, then dies (SIGKILL): those events
    # were never acknowledged and must be resent after the reconnect, ahead of newer ones
    broker.save()
    broker.pause()
    emit(8)
    assert wait_until(lambda: sink.counters()["inflight"] == 8, 5), sink.counters()
    broker.kill()
    emit(7)  # while the broker is down
    broker.start()
    emit(5)  # while the sink reconnects
    quiesce()
    # outage 2: a clean broker shutdown (SIGTERM), events while down and during the reconnect
    broker.stop()
    emit(6)
    broker.start()
    emit(4)
    quiesce()
    # outage 3: stopped and started again straight away
    broker.stop()
    broker.start()
    emit(5)
    quiesce()
    got = seqs(rec)
    assert got == list(range(1, seq + 1)), f"missing {sorted(set(range(1, seq + 1)) - set(got))}, got {got}"
    assert sink.flush(5.0)
    c = sink.counters()
    assert c["published"] == seq and c["spooled"] == 0 and c["reconnects"] == 3
    sink.close()
    rec.stop()


CHILD = textwrap.dedent("""
    import json, logging, os, sys, time
    sys.path.insert(0, sys.argv[1])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    from pathlib import Path
    from edge_mmer.runtime.sinks.mqtt import MqttOptions, MqttSink
    from support.events import make_event
    spec = json.loads(sys.argv[2])
    if spec.get("fsize"):
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (spec["fsize"], spec["fsize"]))
    sink = MqttSink(MqttOptions(device_id="robot-1", url=spec["url"], spool_path=Path(spec["spool"]),
                                reconnect_min_s=0.05, reconnect_max_s=0.25))
    if spec.get("wait_connected"):
        deadline = time.monotonic() + 10
        while not sink.counters()["connected"] and time.monotonic() < deadline:
            time.sleep(0.01)
    if spec.get("wait_stdin"):
        print(json.dumps(sink.counters()), flush=True)
        sys.stdin.readline()
    for i in range(1, spec["n"] + 1):
        sink.emit(make_event(i, model_id=spec.get("model_id", "demo")))
    if spec.get("wait_inflight"):
        deadline = time.monotonic() + 10
        while sink.counters()["inflight"] < spec["n"] and time.monotonic() < deadline:
            time.sleep(0.01)
    if spec.get("close"):
        ok = sink.flush(20)
        counters = sink.counters()
        sink.close()
        print(json.dumps({"flushed": ok, **counters}), flush=True)
    else:
        print(json.dumps(sink.counters()), flush=True)
        time.sleep(60)  # the test SIGKILLs us
""")


@contextmanager
def sink_child(spec: dict[str, Any]) -> Iterator[Child]:
    """A process with an MqttSink, as ``CHILD`` sets it up; SIGKILLed on leaving the block if still there."""
    # cwd: not the repository root, whose edge_mmer/ folder would shadow the installed package mapping
    with spawn([sys.executable, "-c", CHILD, str(TESTS), json.dumps(spec)], cwd=TESTS, stdin=True) as child:
        yield child


def test_sigkill_with_broker_down_the_next_start_sends_the_spool(broker: Mosquitto, tmp_path: Path) -> None:
    rec = persistent_recorder(broker, [EMOTION])
    broker.stop()
    spool = tmp_path / "spool.sqlite"
    with sink_child({"url": f"mqtt://127.0.0.1:{broker.port}/{PREFIX}", "spool": str(spool), "n": 12}) as child:
        line = child.read_line()
        assert line, child.tail()
        assert json.loads(line)["spooled"] == 12
        child.kill()  # no close, no flush: the process is just gone
    broker.start()
    sink = MqttSink(options(broker, tmp_path))  # same spool file
    assert rec.wait_count(EMOTION, 12), f"got {seqs(rec)}"
    assert seqs(rec) == list(range(1, 13))
    assert sink.flush(5.0)
    sink.close()
    rec.stop()


def test_sigkill_with_events_in_flight_they_are_sent_again(broker: Mosquitto, tmp_path: Path) -> None:
    """Handed to paho but never acknowledged (the broker is frozen), then the process dies: an event
    leaves the spool only on its PUBACK, so the next start sends it."""
    rec = persistent_recorder(broker, [EMOTION])
    rec.sync()
    broker.save()  # the recorder's session survives the SIGKILL below
    with sink_child({"url": f"mqtt://127.0.0.1:{broker.port}/{PREFIX}", "spool": str(tmp_path / "spool.sqlite"),
                     "n": 6, "wait_connected": True, "wait_stdin": True, "wait_inflight": True}) as child:
        ready = child.read_line()
        assert ready and json.loads(ready)["connected"] is True, child.tail()
        broker.pause()
        child.write("go\n")
        counters = json.loads(child.read_line())
        assert counters["inflight"] == 6 and counters["spooled"] == 6, counters
        child.kill()
    broker.kill()  # what it had not read yet is gone with it
    broker.start()
    assert seqs(rec) == []
    sink = MqttSink(options(broker, tmp_path))
    assert rec.wait_count(EMOTION, 6), f"got {seqs(rec)}"
    assert sink.flush(5.0)
    assert seqs(rec) == [1, 2, 3, 4, 5, 6]
    sink.close()
    rec.stop()


def test_last_will_marks_a_killed_sink_offline(broker: Mosquitto, tmp_path: Path) -> None:
    rec = Recorder(broker.port, [AVAIL]).start()
    with sink_child({"url": f"mqtt://127.0.0.1:{broker.port}/{PREFIX}", "spool": str(tmp_path / "s.sqlite"),
                     "n": 1, "wait_connected": True}) as child:
        assert json.loads(child.read_line())["connected"] is True
        assert rec.wait_for(lambda r: r.payloads(AVAIL)[-1:] == [b"online"])
        child.kill()
    assert rec.wait_for(lambda r: r.payloads(AVAIL)[-1:] == [b"offline"]), "the broker sends the will"
    rec.stop()
    late = Recorder(broker.port, [AVAIL]).start()
    assert late.wait_count(AVAIL, 1) and late.messages(AVAIL)[0].retain
    assert late.payloads(AVAIL) == [b"offline"]
    late.stop()


def test_spool_at_its_bound_drops_the_oldest(broker: Mosquitto, tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    rec = persistent_recorder(broker, [EMOTION])
    broker.stop()
    sink = MqttSink(options(broker, tmp_path, spool_max_events=10))
    for i in range(1, 26):
        sink.emit(make_event(i))
    c = sink.counters()
    assert c["dropped"] == 15 and c["spooled"] == 10
    assert len([r for r in caplog.records if "is full" in r.getMessage()]) == 1, "one warning per burst"
    broker.start()
    assert rec.wait_count(EMOTION, 10)
    assert sink.flush(5.0)
    assert seqs(rec) == list(range(16, 26)), "the newest 10 survive, in order"
    sink.publish_stats(make_stats(DEVICE))
    sink.close()
    rec.stop()


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE / SIGXFSZ (POSIX)")
def test_disk_full_spool_is_logged_and_events_still_flow(broker: Mosquitto, tmp_path: Path) -> None:
    """RLIMIT_FSIZE in a child process: the spool's writes fail part-way (as on a full disk)."""
    rec = Recorder(broker.port, [EMOTION]).start()
    spool = tmp_path / "full" / "spool.sqlite"
    with sink_child({"url": f"mqtt://127.0.0.1:{broker.port}/{PREFIX}", "spool": str(spool), "n": 150,
                     "fsize": 48 * 1024, "close": True, "wait_connected": True, "model_id": "m" * 600}) as child:
        child.finish(timeout=60)
    out, err = child.stdout, child.stderr
    assert child.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["flushed"] is True and result["published"] == 150
    assert result["spool_write_errors"] > 0, "the size limit was hit"
    assert f"spool {spool} cannot be written" in err, err[-2000:]
    assert rec.wait_count(EMOTION, 150)
    assert seqs(rec) == list(range(1, 151))
    rec.stop()


def test_unwritable_spool_path_sink_keeps_running(broker: Mosquitto, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    (tmp_path / "file").write_text("not a directory")
    bad = tmp_path / "file" / "spool.sqlite"
    rec = Recorder(broker.port, [EMOTION]).start()
    sink = MqttSink(options(broker, tmp_path, spool_path=bad))
    assert any(str(bad) in r.getMessage() and "cannot be opened" in r.getMessage() for r in caplog.records)
    for i in range(1, 6):
        sink.emit(make_event(i))  # does not raise
    assert rec.wait_count(EMOTION, 5) and seqs(rec) == [1, 2, 3, 4, 5]
    sink.close()
    rec.stop()


# ---- credentials and TLS --------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["env", "file"])
def test_password_from_env_or_file_and_never_logged(auth_broker: Mosquitto, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
                                                    source: str) -> None:
    caplog.set_level(logging.DEBUG)  # paho's own log included
    rec = Recorder(auth_broker.port, [EMOTION], username="robot", password=SECRET).start()
    if source == "env":
        monkeypatch.setenv("EDGE_MMER_MQTT_PASSWORD", SECRET)
        opts = options(auth_broker, tmp_path, username="robot")
    else:
        monkeypatch.delenv("EDGE_MMER_MQTT_PASSWORD", raising=False)
        pw = tmp_path / "mqtt-password"
        pw.write_text(SECRET + "\n")
        pw.chmod(0o600)
        opts = options(auth_broker, tmp_path, username="robot", password_file=pw)
    sink = MqttSink(opts)
    sink.emit(make_event(1))
    assert rec.wait_count(EMOTION, 1)
    sink.close()
    rec.stop()
    for text in (caplog.text, repr(sink), repr(opts), str(sink.counters())):
        assert SECRET not in text


def test_wrong_password_is_reported_and_the_sink_keeps_spooling(auth_broker: Mosquitto, tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("EDGE_MMER_MQTT_PASSWORD", "wrong-" + SECRET)
    sink = MqttSink(options(auth_broker, tmp_path, username="robot"))
    sink.emit(make_event(1))
    assert wait_until(lambda: any("refused the connection" in r.getMessage() for r in caplog.records), 5)
    assert sink.counters()["connected"] is False and sink.counters()["spooled"] == 1
    sink.close(timeout=0)
    assert SECRET not in caplog.text


def test_password_in_url_is_refused_without_echoing_it(tmp_path: Path) -> None:
    with pytest.raises(SinkError, match="password") as err:
        MqttSink(MqttOptions(device_id=DEVICE, url=f"mqtt://robot:{SECRET}@127.0.0.1:1883/p",
                             spool_path=tmp_path / "s.sqlite"))
    assert SECRET not in str(err.value)
    assert not (tmp_path / "s.sqlite").exists()


@pytest.mark.needs_mosquitto
def test_tls_with_client_certificate(tmp_path: Path, tls_files: TlsFiles) -> None:
    tls = tls_files
    broker = Mosquitto(tmp_path / "tls-broker", tls=tls).start()
    try:
        rec = Recorder(broker.port, [EMOTION]).start()  # the plain listener, for the test only
        assert broker.tls_port is not None
        sink = MqttSink(MqttOptions(device_id=DEVICE, url=f"mqtts://127.0.0.1:{broker.tls_port}/{PREFIX}",
                                    ca_file=tls.ca, cert_file=tls.client_cert, key_file=tls.client_key,
                                    spool_path=tmp_path / "spool.sqlite", reconnect_min_s=0.05,
                                    reconnect_max_s=0.25))
        for i in range(1, 4):
            sink.emit(make_event(i))
        assert rec.wait_count(EMOTION, 3) and seqs(rec) == [1, 2, 3]
        sink.close()
        # a broker certificate from another CA is refused: nothing is sent, nothing raises
        other = make_tls_files(tmp_path / "other-ca")
        assert other is not None
        bad = MqttSink(MqttOptions(device_id=DEVICE, url=f"mqtts://127.0.0.1:{broker.tls_port}/{PREFIX}",
                                   ca_file=other.ca, cert_file=tls.client_cert, key_file=tls.client_key,
                                   spool_path=tmp_path / "spool2.sqlite", reconnect_min_s=0.05,
                                   reconnect_max_s=0.25))
        bad.emit(make_event(4))
        assert not wait_until(lambda: bad.counters()["connected"], 0.5)
        bad.close(timeout=0)
        assert seqs(rec) == [1, 2, 3]
        rec.stop()
    finally:
        broker.kill()


# ---- Home Assistant -------------------------------------------------------------------------------

def test_home_assistant_discovery_published_and_reannounced(broker: Mosquitto, tmp_path: Path) -> None:
    event_topic = "homeassistant/event/edge_mmer_robot-1/emotion/config"
    sensor_topic = "homeassistant/sensor/edge_mmer_robot-1/emotion/config"
    first = Recorder(broker.port, ["homeassistant/+/+/+/config"]).start()
    sink = MqttSink(options(broker, tmp_path, ha_discovery=True), labels=LABELS, model_id="demo")
    assert first.wait_count(event_topic, 1) and first.wait_count(sensor_topic, 1)
    first.stop()
    ha = Recorder(broker.port, ["homeassistant/+/+/+/config"]).start()  # a newcomer: gets them retained
    assert ha.wait_count(event_topic, 1) and ha.wait_count(sensor_topic, 1)
    assert all(m.retain for m in ha.messages()), "discovery configs are retained"
    event_cfg = json.loads(ha.payloads(event_topic)[0])
    sensor_cfg = json.loads(ha.payloads(sensor_topic)[0])
    assert event_cfg["event_types"] == list(LABELS) and event_cfg["state_topic"] == EMOTION
    assert sensor_cfg["options"] == list(LABELS) and sensor_cfg["state_topic"] == STATE
    assert sensor_cfg["device_class"] == "enum"
    assert event_cfg["availability_topic"] == AVAIL == sensor_cfg["availability_topic"]
    ha.clear()
    ha.client.publish("homeassistant/status", "online", qos=1)  # Home Assistant restarted
    assert ha.wait_count(event_topic, 1) and ha.wait_count(sensor_topic, 1)
    assert not any(m.retain for m in ha.messages()), "a live re-announcement"
    sink.close()
    ha.stop()


def test_close_with_zero_timeout_keeps_unsent_events_for_the_next_start(broker: Mosquitto, tmp_path: Path) -> None:
    rec = persistent_recorder(broker, [EMOTION])
    broker.stop()
    sink = MqttSink(options(broker, tmp_path))
    for i in range(1, 6):
        sink.emit(make_event(i))
    sink.close(timeout=0)
    broker.start()
    again = MqttSink(options(broker, tmp_path))
    assert rec.wait_count(EMOTION, 5) and seqs(rec) == [1, 2, 3, 4, 5]
    again.close()
    rec.stop()
