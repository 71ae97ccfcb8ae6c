"""The MQTT sink under the adversarial run's faults, against a real mosquitto on loopback: poison rows in
the spool (B3), a second runtime with the same device id (B8), a broker that drops the connection right
after CONNECT (B6), TLS against a plain port (B10), a Home Assistant 'online' flood (B14), and the
sink's own threads dying (supervision: restarted, or the sink fails loudly)."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import sqlite3
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from support.broker import Mosquitto, Recorder, TlsFiles, wait_until
from support.events import LABELS, make_event

from edge_mmer.runtime.sinks.base import SinkError
from edge_mmer.runtime.sinks.mqtt import MqttOptions, MqttSink
from edge_mmer.runtime.sinks.mqtt.spool import Spool

DEVICE = "robot-1"
PREFIX = "test"
EMOTION = f"{PREFIX}/{DEVICE}/emotion"


def options(port: int, tmp_path: Path, **kw: Any) -> MqttOptions:
    base = MqttOptions(device_id=DEVICE, url=f"mqtt://127.0.0.1:{port}/{PREFIX}", spool_path=tmp_path / "spool.sqlite",
                       reconnect_min_s=0.05, reconnect_max_s=0.25, close_timeout_s=5.0)
    return replace(base, **kw)


def seqs(rec: Recorder) -> list[int]:
    return [json.loads(p)["seq"] for p in rec.payloads(EMOTION)]


def test_poison_rows_never_stop_delivery(broker: Mosquitto, tmp_path: Path) -> None:
    """B3: before the fix one row with a non-UTF-8 topic stopped all delivery for good (and a '#' or a
    QoS of 7 killed the publisher thread). Now the 3 poison rows are dead-lettered and counted, the 5
    good old rows and the new events are delivered in order."""
    spool = Spool(tmp_path / "spool.sqlite")
    for i in range(1, 9):
        spool.append(EMOTION, make_event(i, device_id=DEVICE).to_json(), 1, False)
    spool.close()
    with sqlite3.connect(tmp_path / "spool.sqlite") as db:
        db.execute("UPDATE spool SET topic = CAST(x'746573742fff2f656d6f74696f6e' AS TEXT) WHERE id = 2")
        db.execute(f"UPDATE spool SET topic = '{PREFIX}/{DEVICE}/emo#tion' WHERE id = 4")
        db.execute("UPDATE spool SET qos = 7 WHERE id = 6")
    db.close()
    rec = Recorder(broker.port, [EMOTION]).start()
    sink = MqttSink(options(broker.port, tmp_path))
    for i in range(9, 12):
        sink.emit(make_event(i, device_id=DEVICE))
    assert rec.wait_count(EMOTION, 8), seqs(rec)
    assert seqs(rec) == [1, 3, 5, 7, 8, 9, 10, 11]
    assert wait_until(lambda: sink.counters()["published"] == 8, 5)
    counters = sink.counters()
    assert counters["dead_lettered"] == 3 and counters["published"] == 8 and counters["spooled"] == 0
    sink.close()
    rec.stop()


def test_a_second_runtime_with_the_same_device_id_refuses_to_start(broker: Mosquitto, tmp_path: Path) -> None:
    """B8: before the fix the second ran on a memory spool and both fought over one client id (23
    takeovers in 17 s). The policy now: the second refuses to start, saying why."""
    first = MqttSink(options(broker.port, tmp_path))
    try:
        with pytest.raises(SinkError, match="in use by another runtime: one runtime per device id"):
            MqttSink(options(broker.port, tmp_path))
        first.emit(make_event(1, device_id=DEVICE))
        assert first.flush(5)
    finally:
        first.close()


class _DropsAfterConnect:
    """A 'broker' that accepts TCP, reads the CONNECT and closes (what mosquitto does on a protocol error)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = int(self.sock.getsockname()[1])
        self.connects = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                with contextlib.suppress(OSError):
                    conn.recv(4096)
                self.connects += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def test_a_broker_that_drops_the_connect_is_reported_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """B6: before the fix nothing at all was logged (the TCP connect succeeded, CONNACK never came)."""
    caplog.set_level(logging.WARNING)
    fake = _DropsAfterConnect()
    try:
        sink = MqttSink(options(fake.port, tmp_path))
        sink.emit(make_event(1, device_id=DEVICE))
        assert wait_until(lambda: fake.connects >= 3, 10)
        sink.close(timeout=0)
    finally:
        fake.close()
    said = [r.getMessage() for r in caplog.records if "before accepting it" in r.getMessage()]
    assert len(said) == 1, said  # once per outage, not once per retry


@pytest.mark.needs_mosquitto
def test_a_tls_refusal_says_why(tmp_path: Path, tls_files: TlsFiles, caplog: pytest.LogCaptureFixture) -> None:
    """B10: before the fix only 'cannot reach ...' (even at -vv), for a certificate from an unknown CA
    and for TLS against a plain port alike; now the reason is in the line, once per outage."""
    broker = Mosquitto(tmp_path / "tls-broker", tls=tls_files).start()
    try:
        assert broker.tls_port is not None
        for n, port in enumerate((broker.tls_port, broker.port)):  # no ca_file: the test CA is unknown
            caplog.clear()
            caplog.set_level(logging.WARNING)
            sink = MqttSink(options(port, tmp_path, url=f"mqtts://127.0.0.1:{port}/{PREFIX}",
                                    spool_path=tmp_path / f"spool{n}.sqlite"))
            try:
                assert wait_until(lambda: any("cannot reach" in r.getMessage() for r in caplog.records), 10)
                wait_until(lambda: False, 0.5)  # a few retries: still one line
            finally:
                sink.close(timeout=0)
            lines = [r.getMessage() for r in caplog.records if "cannot reach" in r.getMessage()]
            assert len(lines) == 1, lines
            if port == broker.tls_port:
                assert "SSLCertVerificationError" in lines[0] and "TLS refusal" in lines[0], lines[0]
            else:
                assert "Error" in lines[0], lines[0]  # the plain listener resets the TLS hello
    finally:
        broker.kill()


def test_a_home_assistant_status_flood_is_debounced(broker: Mosquitto, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """B14: before the fix each 'online' gave 2 retained publishes and an INFO line (20,000 -> 40,004)."""
    caplog.set_level(logging.INFO)
    configs = "homeassistant/+/+/+/config"
    rec = Recorder(broker.port, [configs, "homeassistant/status"]).start()
    sink = MqttSink(options(broker.port, tmp_path, ha_discovery=True), labels=LABELS, model_id="demo")
    try:
        assert wait_until(lambda: len(rec.messages()) >= 2, 10)
        for _ in range(500):
            rec.client.publish("homeassistant/status", "online", qos=0)
        assert wait_until(lambda: sink.status_messages >= 500, 10), sink.status_messages
        assert wait_until(lambda: len([m for m in rec.messages() if m.topic.endswith("/config")]) >= 4, 5)
    finally:
        sink.close()
        rec.stop()
    announced = [m for m in rec.messages() if m.topic.endswith("/config")]
    assert len(announced) <= 6, len(announced)  # at connect, the first 'online', at most one coalesced more
    lines = [r for r in caplog.records if "Home Assistant came online" in r.getMessage()]
    assert len(lines) <= 2


class _PublisherBug(MqttSink):
    """A sink whose publisher hits a bug: ``fail`` times in a row (a seam for the supervision test)."""

    fail = 1

    def _publish_state(self) -> None:
        if self.fail > 0:
            self.fail -= 1
            raise RuntimeError("injected publisher bug")
        super()._publish_state()


def test_a_publisher_that_dies_is_restarted(broker: Mosquitto, tmp_path: Path) -> None:
    rec = Recorder(broker.port, [EMOTION]).start()
    sink = _PublisherBug(options(broker.port, tmp_path))
    for i in range(1, 4):
        sink.emit(make_event(i, device_id=DEVICE))
    assert rec.wait_count(EMOTION, 3)
    assert sink.thread_restarts == 1 and sink.failure is None
    sink.close()
    rec.stop()


def test_a_publisher_that_keeps_dying_fails_the_sink_loudly(broker: Mosquitto, tmp_path: Path) -> None:
    """Never a silent zombie: past 5 deaths a minute the sink fails, emit raises, and the run stops."""
    _PublisherBug.fail = 100
    try:
        sink = _PublisherBug(options(broker.port, tmp_path))
        sink.emit(make_event(1, device_id=DEVICE))
        assert wait_until(lambda: sink.failure is not None, 10)
        with pytest.raises(SinkError, match="publisher thread failed"):
            sink.emit(make_event(2, device_id=DEVICE))
        sink.close(timeout=0)
    finally:
        _PublisherBug.fail = 1


def test_a_dead_network_thread_is_replaced(broker: Mosquitto, tmp_path: Path) -> None:
    """paho's network thread ends (an exception in it ends it for good; here it is told to end): the
    publisher sees it dead, starts a new one, and delivery goes on."""
    rec = Recorder(broker.port, [EMOTION]).start()
    sink = MqttSink(options(broker.port, tmp_path))
    sink.emit(make_event(1, device_id=DEVICE))
    assert rec.wait_count(EMOTION, 1)
    old = sink._client._thread
    assert old is not None
    sink._client._thread_terminate = True  # the thread leaves its loop as if it had crashed
    old.join(5)
    assert not old.is_alive()
    assert wait_until(lambda: sink.thread_restarts >= 1, 5)
    sink.emit(make_event(2, device_id=DEVICE))
    assert rec.wait_count(EMOTION, 2, timeout=15), seqs(rec)
    assert wait_until(lambda: sink.counters()["published"] == 2, 5)  # its PUBACK is read: the new thread runs
    sink.close()
    rec.stop()
