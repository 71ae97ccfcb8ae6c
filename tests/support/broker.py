"""A real mosquitto broker on a free port, a recording paho subscriber, and a broker locked down like
a production one (TLS with a client certificate, passwords, an ACL).

``Mosquitto(workdir)`` writes its config into ``workdir`` and runs ``mosquitto -c``; ``stop()``
(SIGTERM: a clean shutdown that saves the persistence file), ``kill()`` (SIGKILL), ``pause()`` /
``resume()`` (SIGSTOP / SIGCONT) and ``save()`` (SIGUSR1: write the persistence file now) drive
it, and ``start()`` again reuses the same port. With ``persistence=True`` a subscriber with a
persistent session (``Recorder(clean=False)``) keeps its subscription across restarts, so messages
published while it reconnects are queued for it instead of lost: that is what lets a test check
"every event arrived, in order" across broker restarts without racing the subscriber.

``Recorder`` subscribes (QoS 1), records every message, and offers ``wait_for`` and ``sync``
(a round trip through the broker: once it returns, the broker has processed everything this
subscriber sent before, PUBACKs included).

``secure_broker`` starts the locked-down one (:class:`SecureBroker`): the device ``robot`` may use
``SECURE_PREFIX/SECURE_DEVICE/#`` and ``homeassistant/#`` only, ``watcher`` reads the whole fleet,
``other`` is another unit. The tests' fixtures (``broker``, ``auth_broker``, ``secure_broker`` in
conftest.py) start and kill these; the passwords are here so that a test can check they never leak.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)), None)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(pred: Callable[[], bool], timeout: float, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_tls_files(out: Path) -> TlsFiles | None:
    """A throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate
    (``openssl`` CLI, EC P-256). None when ``openssl`` is not installed."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    out.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=out, check=True, capture_output=True, timeout=60)

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=edge-mmer test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, cn, san, eku in (("server", "localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost", "serverAuth"),
                               ("client", "edge-mmer-client", "subjectAltName=DNS:edge-mmer-client", "clientAuth")):
        run("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}")
        (out / f"{name}.ext").write_text(
            f"{san}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
            f"extendedKeyUsage={eku}\nauthorityKeyIdentifier=keyid,issuer\nsubjectKeyIdentifier=hash\n")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext")
    for key in ("ca.key", "server.key", "client.key"):
        os.chmod(out / key, 0o600)
    return TlsFiles(out / "ca.crt", out / "server.crt", out / "server.key", out / "client.crt", out / "client.key")


def make_password_file(path: Path, users: dict[str, str]) -> Path | None:
    """A mosquitto password file via ``mosquitto_passwd -b``; None when the tool is missing."""
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        return None
    first = True
    for user, password in users.items():
        args = [tool, "-b", *(["-c"] if first else []), str(path), user, password]
        subprocess.run(args, check=True, capture_output=True, timeout=30)
        first = False
    os.chmod(path, 0o644)  # mosquitto may run as another user; the file holds hashes only
    return path


class Mosquitto:
    """A mosquitto process bound to 127.0.0.1 on a fixed free port (kept across restarts)."""

    def __init__(
        self,
        workdir: Path,
        *,
        persistence: bool = False,
        password_file: Path | None = None,
        tls: TlsFiles | None = None,
        port: int | None = None,
    ) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise FileNotFoundError("mosquitto is not installed (apt-get install mosquitto)")
        self.binary = binary
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.tls_port = free_port() if tls is not None else None
        self.persistence = persistence
        self.db_path = self.workdir / "mosquitto.db"
        self.log_path = self.workdir / "mosquitto.log"
        self.conf_path = self.workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'false' if password_file else 'true'}",
            f"persistence {'true' if persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            "persistence_file mosquitto.db",
            "autosave_interval 0",
            "max_queued_messages 100000",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            f"user {getpass.getuser()}",
        ]
        if password_file is not None:
            lines.append(f"password_file {password_file}")
        if tls is not None:
            lines += [f"listener {self.tls_port} 127.0.0.1", f"cafile {tls.ca}", f"certfile {tls.server_cert}",
                      f"keyfile {tls.server_key}", "require_certificate true"]
        self.conf_path.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # ---- process control -----------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Mosquitto:
        if self.running:
            return self
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in _reap
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf_path)], stdout=log, stderr=subprocess.STDOUT)
        self._log = log
        ports = [p for p in (self.port, self.tls_port) if p is not None]
        deadline = time.monotonic() + timeout
        pending = list(ports)
        while pending:
            if self.proc.poll() is not None:
                self._reap()
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", pending[0]), timeout=0.2):
                    pending.pop(0)
            except OSError:
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(f"mosquitto did not listen on {pending[0]} within {timeout} s:\n"
                                       f"{self.log_text()[-3000:]}") from None
                time.sleep(0.01)
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _signal(self, sig: int) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError("mosquitto is not running")
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: a clean shutdown (saves the persistence file when persistence is on)."""
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self._reap()

    def kill(self) -> None:
        """SIGKILL: the broker dies at once; nothing is saved, unread socket data is lost."""
        if self.running:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(10)
        self._reap()

    def pause(self) -> None:
        """SIGSTOP: the broker stops reading; clients' messages wait unread in its sockets."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def save(self, timeout: float = 5.0) -> None:
        """SIGUSR1: write the persistence file now; returns once it has been rewritten."""
        if not self.persistence:
            raise RuntimeError("save() needs persistence=True")
        before = self.db_path.stat().st_mtime_ns if self.db_path.exists() else None
        self._signal(signal.SIGUSR1)
        ok = wait_until(lambda: self.db_path.exists() and self.db_path.stat().st_mtime_ns != before, timeout)
        if not ok:
            raise RuntimeError(f"mosquitto did not rewrite {self.db_path} within {timeout} s")
        time.sleep(0.05)  # mosquitto writes a temporary file and renames it; let the rename land

    def restart(self) -> Mosquitto:
        self.stop()
        return self.start()

    def _reap(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    dup: bool


class Recorder:
    """A paho subscriber that records everything on ``topics`` (QoS 1)."""

    def __init__(
        self,
        port: int,
        topics: Iterable[str],
        *,
        client_id: str | None = None,
        clean: bool = True,
        username: str | None = None,
        password: str | None = None,
        tls: TlsFiles | None = None,
    ) -> None:
        self.port = port
        self.topics = list(topics)
        self.client_id = client_id or f"recorder-{uuid.uuid4().hex[:8]}"
        self.sync_topic = f"edge-mmer-test/_sync/{self.client_id}"
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                  clean_session=clean, protocol=mqtt.MQTTv311)
        if username:
            self.client.username_pw_set(username, password)
        if tls is not None:
            self.client.tls_set(ca_certs=str(tls.ca), certfile=str(tls.client_cert), keyfile=str(tls.client_key),
                                cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.reconnect_delay_set(min_delay=cast(int, 0.02), max_delay=cast(int, 0.1))
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self.subscriptions = 0  # SUBACKs received (one per (re)connect)

    def start(self, timeout: float = 10.0) -> Recorder:
        before = self.subscriptions
        self.client.connect_async("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        if not wait_until(lambda: self.subscriptions > before, timeout):
            raise TimeoutError(f"recorder {self.client_id} did not subscribe on port {self.port} within {timeout} s")
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Recorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if not reason_code.is_failure:
            client.subscribe([(t, 1) for t in [*self.topics, self.sync_topic]])

    def _on_subscribe(self, client: Any, userdata: Any, mid: Any, reason_codes: Any, properties: Any) -> None:
        self.subscriptions += 1

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self._lock:
            self._messages.append(Received(message.topic, bytes(message.payload), bool(message.retain),
                                           bool(message.dup)))

    # ---- reading -------------------------------------------------------------------------------

    def messages(self, topic: str | None = None) -> list[Received]:
        with self._lock:
            return [m for m in self._messages if topic is None or m.topic == topic]

    def payloads(self, topic: str) -> list[bytes]:
        return [m.payload for m in self.messages(topic)]

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()

    def wait_for(self, pred: Callable[[Recorder], bool], timeout: float = 10.0) -> bool:
        return wait_until(lambda: pred(self), timeout)

    def wait_count(self, topic: str, n: int, timeout: float = 10.0) -> bool:
        return wait_until(lambda: len(self.messages(topic)) >= n, timeout)

    def sync(self, timeout: float = 10.0) -> None:
        """A round trip through the broker: afterwards it has processed all our earlier packets."""
        token = uuid.uuid4().hex.encode()
        self.client.publish(self.sync_topic, token, qos=1)
        if not wait_until(lambda: token in self.payloads(self.sync_topic), timeout):
            raise TimeoutError(f"recorder {self.client_id}: no sync round trip within {timeout} s")

    def wait_subscribed(self, after: int, timeout: float = 10.0) -> None:
        """Wait for a SUBACK beyond ``after`` (i.e. the recorder reconnected and subscribed again)."""
        if not wait_until(lambda: self.subscriptions > after, timeout):
            raise TimeoutError(f"recorder {self.client_id} did not resubscribe within {timeout} s")


# ---- the locked-down broker ---------------------------------------------------------------------

DEVICE_PASSWORD = "Zx9-s3cr3t-never-log"
"""The device's (user ``robot``) password on ``auth_broker`` and ``secure_broker``."""
WATCHER_PASSWORD = "watcher-pw-4711"
OTHER_PASSWORD = "other-pw-0815"
SECURE_PREFIX = "edge-mmer-sec"
SECURE_DEVICE = "robot-1"

ACL = f"""\
# the device: its own topics, and Home Assistant discovery
user robot
topic readwrite {SECURE_PREFIX}/{SECURE_DEVICE}/#
topic readwrite homeassistant/#

# a monitoring client: reads everything of the fleet
user watcher
topic read {SECURE_PREFIX}/#
topic read homeassistant/#
topic readwrite edge-mmer-test/_sync/#

# another unit of the fleet
user other
topic readwrite {SECURE_PREFIX}/other-unit/#
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
        return Recorder(self.broker.port, topics, username="watcher", password=WATCHER_PASSWORD).start()


def auth_broker(workdir: Path) -> Mosquitto:
    """A broker (not started) that wants a password: user ``robot``, :data:`DEVICE_PASSWORD`."""
    workdir.mkdir(parents=True, exist_ok=True)
    hashes = make_password_file(workdir / "passwd", {"robot": DEVICE_PASSWORD})
    if hashes is None:
        raise FileNotFoundError("mosquitto_passwd is not installed (apt-get install mosquitto)")
    return Mosquitto(workdir / "broker", password_file=hashes)


@contextmanager
def secure_broker(workdir: Path, tls: TlsFiles) -> Iterator[SecureBroker]:
    """The locked-down broker, started: a plain listener (password and ACL, for the test's own
    clients) and a TLS one that wants a client certificate (for the device); killed on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    users = {"robot": DEVICE_PASSWORD, "watcher": WATCHER_PASSWORD, "other": OTHER_PASSWORD}
    hashes = make_password_file(workdir / "passwd", users)
    if hashes is None:
        raise FileNotFoundError("mosquitto_passwd is not installed (apt-get install mosquitto)")
    (workdir / "acl").write_text(ACL)
    broker = Mosquitto(workdir / "broker", password_file=hashes, tls=tls)
    # Mosquitto writes the listeners and the password file; add the ACL, and debug logging so the
    # broker says what it denied
    broker.conf_path.write_text(broker.conf_path.read_text() + f"acl_file {workdir / 'acl'}\nlog_type debug\n")
    broker.start()
    pw = workdir / "device-password"
    pw.write_text(DEVICE_PASSWORD + "\n")
    pw.chmod(0o600)
    try:
        yield SecureBroker(broker, tls, pw)
    finally:
        broker.kill()
