"""Security against a real mosquitto: TLS with a test CA and a client certificate, username / password,
and an ACL that limits the device to its own topics; secrets never logged nor on a command line; the
bundle reader never unpickles; the runtime opens no listening socket.

Covered elsewhere (the README's Reliability table lists them): a password in the URL is refused, the
password from a file or the environment is never logged by the sink, a wrong password is reported, a
broker certificate from another CA is refused (tests/test_mqtt.py); pickle-suffixed files in a bundle
are refused by the reader (tests/test_bundle.py); RTSP credentials are hidden (tests/test_sources.py).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pickle
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import pytest

from edge_mmer import bundle as B
from edge_mmer.bundle import BundleError, read_bundle, sha256_file
from edge_mmer.runtime.loop import RunError, RuntimeLoop
from edge_mmer.runtime.settings import RuntimeSettings, with_run_overrides
from edge_mmer.runtime.sinks.mqtt import MqttOptions, MqttSink
from tests.mosquitto import (
    Mosquitto,
    Recorder,
    TlsFiles,
    make_password_file,
    make_tls_files,
    mosquitto_binary,
    wait_until,
)
from tests.runtime_helpers import DEMO_BUNDLE
from tests.test_loop import ListSink
from tests.test_sinks import LABELS, make_event

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "edge-mmer-sec"
DEVICE = "robot-1"
SECRET = "Zx9-s3cr3t-never-log"
WATCH_SECRET = "watcher-pw-4711"
OTHER_SECRET = "other-pw-0815"
needs_mosquitto = pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto is not installed")

ACL = f"""\
# the device: its own topics, and Home Assistant discovery
user robot
topic readwrite {PREFIX}/{DEVICE}/#
topic readwrite homeassistant/#

# a monitoring client: reads everything of the fleet
user watcher
topic read {PREFIX}/#
topic read homeassistant/#
topic readwrite edge-mmer-test/_sync/#

# another unit of the fleet
user other
topic readwrite {PREFIX}/other-unit/#
"""


@dataclass
class SecureBroker:
    broker: Mosquitto
    tls: TlsFiles
    password_file: Path  # the device's password, first line (what [mqtt] password_file points at)

    @property
    def tls_port(self) -> int:
        assert self.broker.tls_port is not None
        return self.broker.tls_port

    def denied_publishes(self) -> list[str]:
        return [line for line in self.broker.log_text().splitlines() if "Denied PUBLISH" in line]

    def watcher(self, topics: list[str]) -> Recorder:
        return Recorder(self.broker.port, topics, username="watcher", password=WATCH_SECRET).start()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    tls = make_tls_files(tmp_path_factory.mktemp("tls"))
    if tls is None:
        pytest.skip("the openssl CLI is needed to make test certificates")
    return tls


@pytest.fixture
def secure(tmp_path: Path, tls_files: TlsFiles) -> Iterator[SecureBroker]:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto is not installed")
    hashes = make_password_file(tmp_path / "passwd", {"robot": SECRET, "watcher": WATCH_SECRET, "other": OTHER_SECRET})
    if hashes is None:
        pytest.skip("mosquitto_passwd is not installed")
    (tmp_path / "acl").write_text(ACL)
    broker = Mosquitto(tmp_path / "broker", password_file=hashes, tls=tls_files)
    # the helper writes the listeners (plain for the test's own clients, TLS + client certificate for the
    # device) and the password file; add the ACL, and debug logging so the broker says what it denied
    broker.conf_path.write_text(broker.conf_path.read_text() + f"acl_file {tmp_path / 'acl'}\nlog_type debug\n")
    broker.start()
    pw = tmp_path / "device-password"
    pw.write_text(SECRET + "\n")
    pw.chmod(0o600)
    yield SecureBroker(broker, tls_files, pw)
    broker.kill()


def device_options(s: SecureBroker, tmp_path: Path, **kw: Any) -> MqttOptions:
    base = MqttOptions(device_id=DEVICE, url=f"mqtts://127.0.0.1:{s.tls_port}/{PREFIX}", username="robot",
                       password_file=s.password_file, ca_file=s.tls.ca, cert_file=s.tls.client_cert,
                       key_file=s.tls.client_key, spool_path=tmp_path / f"spool-{kw.get('device_id', DEVICE)}.sqlite",
                       reconnect_min_s=0.05, reconnect_max_s=0.25)
    return dataclasses.replace(base, **kw)


def seqs(rec: Recorder, topic: str) -> list[int]:
    return [json.loads(p)["seq"] for p in rec.payloads(topic)]


# ---------------------------------------------------------------------------- TLS, password, ACL


def test_device_publishes_its_events_over_tls_with_a_client_certificate_and_password(
        secure: SecureBroker, tmp_path: Path) -> None:
    rec = secure.watcher([f"{PREFIX}/#", "homeassistant/#"])
    sink = MqttSink(device_options(secure, tmp_path, ha_discovery=True), labels=LABELS, model_id="demo")
    for i in range(1, 4):
        sink.emit(make_event(i, device_id=DEVICE))
    assert rec.wait_count(f"{PREFIX}/{DEVICE}/emotion", 3), rec.messages()
    assert sink.flush(5.0)
    sink.close()
    rec.sync()
    assert seqs(rec, f"{PREFIX}/{DEVICE}/emotion") == [1, 2, 3]
    assert rec.payloads(f"{PREFIX}/{DEVICE}/availability")[-1] == b"offline"
    assert any(m.topic.startswith("homeassistant/") for m in rec.messages()), "discovery is inside the ACL"
    assert secure.denied_publishes() == []
    rec.stop()


def test_without_a_client_certificate_or_without_credentials_nothing_connects(secure: SecureBroker,
                                                                              tmp_path: Path) -> None:
    no_cert = MqttSink(device_options(secure, tmp_path, cert_file=None, key_file=None, device_id="nocert"))
    anonymous = MqttSink(device_options(secure, tmp_path, username=None, password_file=None, device_id="anon"))
    for sink in (no_cert, anonymous):
        sink.emit(make_event(1))
    assert not wait_until(lambda: no_cert.counters()["connected"] or anonymous.counters()["connected"], 1.5)
    for sink in (no_cert, anonymous):
        assert sink.counters()["spooled"] == 1, "kept for later, not lost"
        sink.close(timeout=0)


def test_acl_refuses_a_publish_outside_the_device_topics(secure: SecureBroker, tmp_path: Path) -> None:
    """The device's credentials used with another device id: every publish (events, state, availability)
    falls outside the ACL. Under MQTT 3.1.1 the broker acknowledges and drops them (the protocol has no
    way to say 'refused'); the broker logs the denial and no subscriber ever sees them."""
    rec = secure.watcher([f"{PREFIX}/#"])
    intruder = MqttSink(device_options(secure, tmp_path, device_id="robot-2"))
    for i in range(1, 4):
        intruder.emit(make_event(i, device_id="robot-2"))
    assert intruder.flush(5.0), "acknowledged by the broker (3.1.1), yet ..."
    intruder.close()
    rec.sync()
    assert [m.topic for m in rec.messages() if "/robot-2/" in m.topic] == [], "... never delivered"
    denied = secure.denied_publishes()
    assert any(f"'{PREFIX}/robot-2/emotion'" in line for line in denied), secure.broker.log_text()[-2000:]
    assert any(f"'{PREFIX}/robot-2/availability'" in line for line in denied)
    rec.stop()


def test_acl_refuses_a_subscription_to_another_unit(secure: SecureBroker) -> None:
    """Logged in as the device, a client subscribing to another unit's topics (and to '#') gets nothing
    of that unit (mosquitto checks read access per message)."""
    got: list[str] = []
    spy = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id="spy", protocol=mqtt.MQTTv311)
    spy.username_pw_set("robot", SECRET)
    spy.tls_set(ca_certs=str(secure.tls.ca), certfile=str(secure.tls.client_cert), keyfile=str(secure.tls.client_key),
                cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    subscribed: list[int] = []
    spy.on_subscribe = lambda c, u, mid, rcs, p: subscribed.append(mid)
    spy.on_message = lambda c, u, m: got.append(m.topic)
    spy.connect("127.0.0.1", secure.tls_port)
    spy.loop_start()
    try:
        spy.subscribe([(f"{PREFIX}/other-unit/#", 1), ("#", 1), (f"{PREFIX}/{DEVICE}/#", 1)])
        assert wait_until(lambda: bool(subscribed), 5)
        other = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id="other",
                            protocol=mqtt.MQTTv311)
        other.username_pw_set("other", OTHER_SECRET)
        other.connect("127.0.0.1", secure.broker.port)
        other.loop_start()
        other.publish(f"{PREFIX}/other-unit/emotion", b"not for robot-1", qos=1).wait_for_publish(5)
        other.disconnect()
        other.loop_stop()
        own = spy.publish(f"{PREFIX}/{DEVICE}/emotion", b"own", qos=1)  # the control: its own topic arrives
        own.wait_for_publish(5)
        assert wait_until(lambda: f"{PREFIX}/{DEVICE}/emotion" in got, 5)
        time.sleep(0.2)
    finally:
        spy.disconnect()
        spy.loop_stop()
    assert not [t for t in got if "other-unit" in t]


# ------------------------------------------------------------------------------ secrets, processes


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def test_secrets_never_in_the_cli_logs_its_command_line_or_ps(secure: SecureBroker, tmp_path: Path) -> None:
    """``edge-mmer -vv run`` (debug logging, paho's included) over TLS with the password in a file:
    the password appears neither on stderr, nor in /proc/PID/cmdline, nor in ``ps`` output."""
    cfg = tmp_path / "unit.toml"
    cfg.write_text(f'[run]\nsink = "mqtts://127.0.0.1:{secure.tls_port}/{PREFIX}"\ndevice_id = "{DEVICE}"\n'
                   f'stats_interval_s = 1.0\n\n[mqtt]\nusername = "robot"\npassword_file = "{secure.password_file}"\n'
                   f'ca_file = "{secure.tls.ca}"\ncert_file = "{secure.tls.client_cert}"\n'
                   f'key_file = "{secure.tls.client_key}"\nspool_path = "{tmp_path / "spool.sqlite"}"\n')
    rec = secure.watcher([f"{PREFIX}/{DEVICE}/emotion"])
    env = {k: v for k, v in os.environ.items() if k != "EDGE_MMER_MQTT_PASSWORD"}
    proc = subprocess.Popen([sys.executable, "-m", "edge_mmer.cli", "-vv", "run", "--config", str(cfg), "--realtime"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert rec.wait_count(f"{PREFIX}/{DEVICE}/emotion", 1, timeout=60), "authenticated and delivering"
        cmdline = _cmdline(proc.pid)
        ps = shutil.which("ps")
        ps_out = subprocess.run([ps, "-eo", "pid,args", "ww"], capture_output=True, text=True).stdout if ps else ""
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    rec.stop()
    assert proc.returncode == 0, err[-3000:]
    assert "DEBUG" in err and "paho" in err, "debug logging, paho's included, was on"
    assert "--config" in cmdline
    if ps:
        assert re.search(rf"^\s*{proc.pid}\s.*edge_mmer\.cli", ps_out, re.M), "ps shows the process"
    for text in (err, cmdline, ps_out):
        assert SECRET not in text
    key_body = secure.tls.client_key.read_text().splitlines()[1]
    assert key_body not in err, "nor the private key"


def test_a_password_on_the_command_line_is_refused_without_echoing_it(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "edge_mmer.cli", "run", "--sink",
                          f"mqtt://robot:{SECRET}@127.0.0.1:1883/{PREFIX}"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 1 and "contains a password" in out.stderr
    assert SECRET not in out.stderr and SECRET not in out.stdout


@needs_mosquitto
def test_the_whole_loop_never_logs_the_password_from_the_environment(secure: SecureBroker, tmp_path: Path,
                                                                       monkeypatch, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("EDGE_MMER_MQTT_PASSWORD", SECRET)
    s = with_run_overrides(RuntimeSettings(), sink=f"mqtts://127.0.0.1:{secure.tls_port}/{PREFIX}", device_id=DEVICE,
                           stats_interval_s=0.5)
    s = dataclasses.replace(s, mqtt=dataclasses.replace(
        s.mqtt, username="robot", ca_file=str(secure.tls.ca), cert_file=str(secure.tls.client_cert),
        key_file=str(secure.tls.client_key), spool_path=str(tmp_path / "spool.sqlite")))
    rec = secure.watcher([f"{PREFIX}/{DEVICE}/#"])
    summary = RuntimeLoop(s).run()
    assert rec.wait_count(f"{PREFIX}/{DEVICE}/emotion", summary.events)
    rec.stop()
    assert summary.events >= 1
    for text in (caplog.text, repr(s), repr(summary), json.dumps(summary.stats, default=str)):
        assert SECRET not in text


# ---------------------------------------------------------------------------------------- pickles


class _Trap:
    """Unpickling this creates ``marker`` (what a malicious pickle would do instead)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def _trap_bundle(tmp_path: Path, marker: Path, stray_pkl: bool) -> Path:
    b = tmp_path / "bundle"
    shutil.copytree(DEMO_BUNDLE, b)
    # an .npz listed in the manifest (with a correct sha256) whose array is a pickled object
    np.savez(b / "extras.npz", payload=np.array([_Trap(marker)], dtype=object))
    manifest = json.loads((b / "manifest.json").read_bytes())
    manifest["files"]["extras.npz"] = {"sha256": sha256_file(b / "extras.npz"),
                                       "bytes": (b / "extras.npz").stat().st_size}
    (b / "manifest.json").write_bytes(B._seal(manifest))
    if stray_pkl:
        (b / "svm" / "fused.pkl").write_bytes(pickle.dumps(_Trap(marker)))
    return b


def test_the_traps_are_live(tmp_path: Path) -> None:
    """Control: loading the trap with pickle enabled does create the marker."""
    marker = tmp_path / "pwned"
    b = _trap_bundle(tmp_path, marker, stray_pkl=True)
    pickle.loads((b / "svm" / "fused.pkl").read_bytes()).close()
    assert marker.exists()
    marker.unlink()
    with np.load(b / "extras.npz", allow_pickle=True) as z:
        z["payload"][0].close()
    assert marker.exists()


def test_the_runtime_never_unpickles_anything_in_a_bundle(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    b = _trap_bundle(tmp_path, marker, stray_pkl=True)
    with pytest.raises(BundleError, match=r"'svm/fused.pkl': refusing pickle"):
        read_bundle(b)
    with pytest.raises(RunError, match=r"'svm/fused.pkl': refusing pickle"):
        RuntimeLoop(with_run_overrides(RuntimeSettings(), bundle=str(b), stats_interval_s=0.0), sink=ListSink()).run()
    out = subprocess.run([sys.executable, "-m", "edge_mmer.cli", "bundle", "verify", str(b)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "fused.pkl" in out.stdout + out.stderr
    (b / "svm" / "fused.pkl").unlink()
    # the listed pickle-bearing .npz is verified (hash) but never loaded: the loop runs and nothing is unpickled
    sink = ListSink()
    summary = RuntimeLoop(with_run_overrides(RuntimeSettings(), bundle=str(b),
                                             camera=str(ROOT / "demo" / "demo_clip.mp4"),
                                             stats_interval_s=0.0), sink=sink).run()
    assert summary.events == len(sink.events) >= 1
    assert not marker.exists(), "something unpickled a bundle file"


# ------------------------------------------------------------------------------- no listening socket


def _socket_inodes(pid: int) -> set[str]:
    out = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        m = re.fullmatch(r"socket:\[(\d+)\]", target)
        if m:
            out.add(m.group(1))
    return out


def _sockets_of(pid: int) -> dict[str, list[tuple[str, str]]]:
    """The process's sockets per table (tcp, tcp6, udp, udp6, unix): (state or flags, local address)."""
    inodes = _socket_inodes(pid)
    found: dict[str, list[tuple[str, str]]] = {}
    for table in ("tcp", "tcp6", "udp", "udp6", "unix"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            cols = line.split()
            if table == "unix":
                if len(cols) >= 7 and cols[6] in inodes:
                    found.setdefault(table, []).append((cols[3], " ".join(cols[7:])))  # flags, path
            elif len(cols) >= 10 and cols[9] in inodes:
                found.setdefault(table, []).append((cols[3], cols[1]))  # state, local address
    return found


@needs_mosquitto
def test_the_runtime_opens_no_listening_socket(tmp_path: Path) -> None:
    """``edge-mmer run`` with the MQTT sink: its only sockets are outgoing connections (TCP state
    ESTABLISHED etc.); none in LISTEN, no UDP socket, no listening unix socket."""
    with Mosquitto(tmp_path / "broker") as broker:
        rec = Recorder(broker.port, [f"{PREFIX}/#"]).start()
        proc = subprocess.Popen([sys.executable, "-m", "edge_mmer.cli", "run", "--realtime", "--sink",
                                 f"mqtt://127.0.0.1:{broker.port}/{PREFIX}", "--device-id", DEVICE, "--config",
                                 str(_spool_toml(tmp_path))], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        samples: list[dict[str, list[tuple[str, str]]]] = []
        try:
            assert rec.wait_count(f"{PREFIX}/{DEVICE}/availability", 1, timeout=60)
            deadline = time.monotonic() + 4.0
            while time.monotonic() < deadline:
                samples.append(_sockets_of(proc.pid))
                time.sleep(0.2)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        rec.stop()
    assert proc.returncode == 0, err[-2000:]
    established = [a for snap in samples for s, a in snap.get("tcp", []) if s == "01"]
    assert established, f"the method sees the MQTT connection: {samples[:2]}"
    listening = [(t, s, a) for snap in samples for t in ("tcp", "tcp6") for s, a in snap.get(t, []) if s == "0A"]
    udp = [(t, s, a) for snap in samples for t in ("udp", "udp6") for s, a in snap.get(t, [])]
    unix_listen = [(s, a) for snap in samples for s, a in snap.get("unix", []) if int(s, 16) & 0x00010000]
    assert listening == [] and udp == [] and unix_listen == []


def _spool_toml(tmp_path: Path) -> Path:
    cfg = tmp_path / "spool.toml"
    cfg.write_text(f'[mqtt]\nspool_path = "{tmp_path / "spool.sqlite"}"\n')
    return cfg
