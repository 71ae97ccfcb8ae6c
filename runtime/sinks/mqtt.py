"""MQTT sink (paho-mqtt 2.x): events through an on-disk spool, state, availability, stats, HA discovery.

Topics (``PREFIX`` from the URL, ``DEVICE`` = the device id):

* ``PREFIX/DEVICE/emotion``: every event, QoS 1 (default), not retained, oldest first;
* ``PREFIX/DEVICE/state``: the latest event, retained;
* ``PREFIX/DEVICE/availability``: ``online`` (retained) on every (re)connect, ``offline`` (retained)
  at close and as the broker-side last will when the connection dies;
* ``PREFIX/DEVICE/stats``: :meth:`MqttSink.publish_stats`, QoS 0, not retained, only while connected.

Delivery: :meth:`MqttSink.emit` only appends the event to the :class:`~.spool.Spool` (sqlite, on
disk) and returns. One publisher thread hands spooled rows to paho in id order, at most
``inflight`` unacknowledged at a time; a row is deleted from the spool when its PUBACK arrives
(``on_publish``). When the connection drops, paho keeps the unacknowledged window and resends it
first after the reconnect (the publisher sends new rows only once that window is acknowledged, so
nothing overtakes it); when the process dies, the next
sink on the same spool file sends every unacknowledged row again, oldest first. So nothing is lost
while the spool has room, and the order is kept. Duplicates are only possible where QoS 1 itself
allows them: the broker took a message but its PUBACK was lost with the connection (or the process
died between PUBACK and the spool delete); consumers that must be exact can drop a repeated
``(session_id, seq)``.

The password never comes from the command line or the URL: ``password_file`` or the environment
variable ``password_env`` (default ``EDGE_MMER_MQTT_PASSWORD``). It is never logged or shown in a
repr.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import re
import ssl
import stat
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import SplitResult, urlsplit

from edge_mmer.runtime.events import EmotionEvent, utc_now_iso
from edge_mmer.runtime.sinks import homeassistant as ha
from edge_mmer.runtime.sinks.base import Sink, SinkError
from edge_mmer.runtime.sinks.spool import DEFAULT_MAX_BYTES, DEFAULT_MAX_EVENTS, Spool, default_spool_path

if TYPE_CHECKING:
    import paho.mqtt.client as paho_client

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "edge-mmer"
DEFAULT_PASSWORD_ENV = "EDGE_MMER_MQTT_PASSWORD"
PORTS = {"mqtt": 1883, "mqtts": 8883}
STATS_SCHEMA = "edge-mmer/stats/v1"
_EXTRA_INFLIGHT = 16  # room in paho's window for state, availability and discovery messages


@dataclass(frozen=True)
class MqttOptions:
    """Everything the MQTT sink needs. No password field: see ``password_file`` / ``password_env``."""

    device_id: str = ""
    url: str = f"mqtt://localhost:1883/{DEFAULT_PREFIX}"
    username: str | None = None
    password_file: Path | None = None
    password_env: str = DEFAULT_PASSWORD_ENV
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    qos: int = 1
    keepalive: int = 30
    spool_path: Path | None = None  # default: $XDG_STATE_HOME/edge-mmer/spool-<device>.sqlite
    spool_max_events: int = DEFAULT_MAX_EVENTS
    spool_max_bytes: int = DEFAULT_MAX_BYTES
    ha_discovery: bool = False
    ha_prefix: str = ha.DEFAULT_DISCOVERY_PREFIX
    client_id: str | None = None  # default: edge-mmer-<device>
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 30.0
    inflight: int = 32  # events handed to paho and not yet acknowledged
    close_timeout_s: float = 5.0  # how long close() waits for the spool to drain


_PATH_FIELDS = ("password_file", "ca_file", "cert_file", "key_file", "spool_path")
_OPTIONAL_STR_FIELDS = ("username", "client_id")


def mqtt_options_from(source: object, **overrides: Any) -> MqttOptions:
    """:class:`MqttOptions` from a settings section (an object or a mapping with the same field names).

    Fields it lacks keep their defaults; ``""`` means "not set" for paths, ``username`` and
    ``client_id``; unknown fields are ignored (the settings loader validates its own keys).
    """
    if isinstance(source, MqttOptions):
        return dataclasses.replace(source, **overrides)
    get: Callable[[str], Any]
    if isinstance(source, Mapping):
        get = source.get
    else:
        def get(name: str) -> Any:
            return getattr(source, name, None)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(MqttOptions):
        value = get(f.name)
        if value is None:
            continue
        if f.name in _PATH_FIELDS:
            values[f.name] = Path(value).expanduser() if str(value) else None
        elif f.name in _OPTIONAL_STR_FIELDS:
            values[f.name] = str(value) or None
        else:
            values[f.name] = value
    values.update(overrides)
    return MqttOptions(**values)


@dataclass(frozen=True)
class BrokerUrl:
    tls: bool
    host: str
    port: int
    prefix: str
    username: str | None = None

    def __str__(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/{self.prefix}"


@dataclass(frozen=True)
class MqttTopics:
    emotion: str
    state: str
    availability: str
    stats: str

    @classmethod
    def for_device(cls, prefix: str, device_id: str) -> MqttTopics:
        base = f"{prefix}/{device_id}"
        return cls(f"{base}/emotion", f"{base}/state", f"{base}/availability", f"{base}/stats")


@dataclass(frozen=True)
class _Secret:
    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "_Secret('***')"


_TOPIC_BAD = re.compile(r"[+#\x00]")


def redact_url(url: str) -> str:
    """The URL with any password replaced, for error messages."""
    return re.sub(r"(//[^/@:]*):[^/]*@", r"\1:***@", url)


def parse_broker_url(url: str) -> BrokerUrl:
    """``mqtt://HOST[:PORT][/PREFIX]`` or ``mqtts://…``; a password in the URL is refused."""
    forms = "mqtt://HOST[:PORT][/PREFIX] or mqtts://HOST[:PORT][/PREFIX]"
    shown = redact_url(url)
    try:
        parts: SplitResult = urlsplit(url)
    except ValueError as exc:
        raise SinkError(f"MQTT URL {shown!r} cannot be parsed ({exc}); expected {forms}") from exc
    scheme = parts.scheme.lower()
    if scheme not in PORTS:
        raise SinkError(f"MQTT URL {shown!r}: scheme {parts.scheme or '(none)'!r} is not supported; expected {forms}")
    if parts.password is not None:
        raise SinkError(f"MQTT URL {shown!r} contains a password; passwords are never taken from a URL or the "
                        f"command line (they end up in shell history and process lists). Put it in a file "
                        f"(password_file, mode 0600) or in ${DEFAULT_PASSWORD_ENV}, and give only the username")
    if parts.query or parts.fragment:
        raise SinkError(f"MQTT URL {shown!r}: query strings and fragments are not supported; expected {forms}")
    host = parts.hostname
    if not host:
        raise SinkError(f"MQTT URL {shown!r} has no host; expected {forms}")
    try:
        port = parts.port
    except ValueError as exc:
        bad = parts.netloc.rsplit(":", 1)[-1]
        raise SinkError(f"MQTT URL {shown!r}: port {bad!r} is not a number in 1..65535; expected {forms}") from exc
    if port is None:
        if parts.netloc.endswith(":"):
            raise SinkError(f"MQTT URL {shown!r}: empty port after ':'; expected {forms}")
        port = PORTS[scheme]
    if not 1 <= port <= 65535:
        raise SinkError(f"MQTT URL {shown!r}: port {port} is out of 1..65535")
    prefix = parts.path.strip("/") or DEFAULT_PREFIX
    if _TOPIC_BAD.search(prefix) or "//" in prefix:
        raise SinkError(f"MQTT URL {shown!r}: topic prefix {prefix!r} must not contain '+', '#', NUL or empty levels")
    return BrokerUrl(tls=scheme == "mqtts", host=host, port=port, prefix=prefix, username=parts.username or None)


def check_device_id(device_id: str) -> str:
    if not device_id or "/" in device_id or _TOPIC_BAD.search(device_id):
        raise SinkError(f"MQTT device id {device_id!r} must be non-empty and contain no '/', '+', '#' or NUL "
                        "(it is one topic level)")
    return device_id


def resolve_password(username: str | None, password_file: Path | None, password_env: str) -> _Secret | None:
    """The password from ``password_file`` (first line) or ``$password_env``; None when there is none."""
    if password_file is not None:
        path = Path(password_file).expanduser()
        if not username:
            raise SinkError(f"MQTT password file {path} given without a username")
        try:
            text = path.read_text(encoding="utf-8")
            mode = path.stat().st_mode
        except OSError as exc:
            raise SinkError(f"MQTT password file {path} cannot be read: {exc.strerror or exc}") from exc
        secret = text.splitlines()[0] if text else ""
        if not secret:
            raise SinkError(f"MQTT password file {path} is empty (expected the password on its first line)")
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("MQTT password file %s is readable by group or others; chmod 600 it", path)
        return _Secret(secret)
    env_value = os.environ.get(password_env) if password_env else None
    if env_value:
        if not username:
            log.debug("$%s is set but no MQTT username is given; connecting without credentials", password_env)
            return None
        return _Secret(env_value)
    return None


def _import_paho() -> Any:
    try:
        import paho.mqtt.client as mqtt
    except ImportError as exc:
        raise SinkError("the MQTT sink needs paho-mqtt 2.x: pip install 'edge-mmer[mqtt]'") from exc
    if not hasattr(mqtt, "CallbackAPIVersion"):
        raise SinkError("the MQTT sink needs paho-mqtt >= 2.0 (found an older one): pip install 'edge-mmer[mqtt]'")
    return mqtt


def _check_file(what: str, path: Path | None) -> str | None:
    if path is None:
        return None
    p = Path(path).expanduser()
    if not p.is_file():
        raise SinkError(f"MQTT {what} {p} does not exist or is not a file")
    try:
        with open(p, "rb"):
            pass
    except OSError as exc:
        raise SinkError(f"MQTT {what} {p} cannot be read: {exc.strerror or exc}") from exc
    return str(p)


class MqttSink(Sink):
    """See the module docstring. Starts even when the broker is down (events spool meanwhile)."""

    name = "mqtt"

    def __init__(self, options: MqttOptions, *, labels: Sequence[str] = (), model_id: str | None = None) -> None:
        self.options = options
        self.device_id = check_device_id(options.device_id)
        self.broker = parse_broker_url(options.url)
        if options.qos not in (0, 1, 2):
            raise SinkError(f"MQTT qos must be 0, 1 or 2, got {options.qos}")
        if options.inflight < 1:
            raise SinkError(f"MQTT inflight must be >= 1, got {options.inflight}")
        if not 0 < options.reconnect_min_s <= options.reconnect_max_s:
            raise SinkError(f"MQTT reconnect delays must satisfy 0 < min <= max, got "
                            f"{options.reconnect_min_s} and {options.reconnect_max_s}")
        if options.keepalive < 5:
            raise SinkError(f"MQTT keepalive must be >= 5 s, got {options.keepalive}")
        username = options.username
        if self.broker.username:
            if username and username != self.broker.username:
                raise SinkError(f"MQTT username given twice and differently: {username!r} (options) and "
                                f"{self.broker.username!r} (URL)")
            username = self.broker.username
        self.username = username
        if not self.broker.tls and (options.ca_file or options.cert_file or options.key_file):
            raise SinkError(f"MQTT ca_file / cert_file / key_file need a TLS URL (mqtts://), got {self.broker}")
        if options.key_file and not options.cert_file:
            raise SinkError("MQTT key_file given without cert_file")
        ca = _check_file("ca_file", options.ca_file)
        cert = _check_file("cert_file", options.cert_file)
        key = _check_file("key_file", options.key_file)
        password = resolve_password(username, options.password_file, options.password_env)
        self.labels = tuple(labels)
        self.model_id = model_id
        if options.ha_discovery and not self.labels:
            raise SinkError("MQTT Home Assistant discovery needs the model's labels; none were given")
        self.topics = MqttTopics.for_device(self.broker.prefix, self.device_id)
        self._discovery = (ha.discovery_messages(device_id=self.device_id, labels=self.labels,
                                                 events_topic=self.topics.emotion, state_topic=self.topics.state,
                                                 availability_topic=self.topics.availability,
                                                 discovery_prefix=options.ha_prefix, model_id=model_id)
                           if options.ha_discovery else [])
        mqtt = _import_paho()
        self._mqtt = mqtt

        self.client_id = options.client_id or f"edge-mmer-{self.device_id}"
        client: paho_client.Client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                                                 client_id=self.client_id, clean_session=True,
                                                 protocol=mqtt.MQTTv311)
        self._client = client
        client.enable_logger(logging.getLogger(f"{__name__}.paho"))
        if username:
            client.username_pw_set(username, None if password is None else password.value)
        if self.broker.tls:
            try:
                client.tls_set(ca_certs=ca, certfile=cert, keyfile=key, cert_reqs=ssl.CERT_REQUIRED,
                               tls_version=ssl.PROTOCOL_TLS_CLIENT)
            except (ssl.SSLError, OSError, ValueError) as exc:
                raise SinkError(f"MQTT TLS files cannot be loaded (ca_file={ca}, cert_file={cert}, key_file={key}): "
                                f"{exc}") from exc
        client.will_set(self.topics.availability, "offline", qos=1, retain=True)
        # paho accepts float delays (it compares times); the stub says int
        client.reconnect_delay_set(min_delay=cast(int, options.reconnect_min_s),
                                   max_delay=cast(int, options.reconnect_max_s))
        client.max_inflight_messages_set(options.inflight + _EXTRA_INFLIGHT)
        client.max_queued_messages_set(0)  # what paho holds is bounded by the publisher, not by dropping
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message

        self.spool_path = Path(options.spool_path).expanduser() if options.spool_path else default_spool_path(self.device_id)
        try:
            self._spool = Spool(self.spool_path, max_events=options.spool_max_events,
                                max_bytes=options.spool_max_bytes)
        except ValueError as exc:
            raise SinkError(f"MQTT {exc}") from exc

        # state shared with paho's thread and the publisher thread
        self._connected = threading.Event()
        self._wake = threading.Event()
        self._acks: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._inflight: dict[int, int] = {}  # paho mid -> spool row id (publisher thread only)
        self._cursor = 0  # highest spool row id handed to paho (publisher thread only)
        # Set when the link drops: paho resends the unacknowledged window after the reconnect, and
        # new rows wait until that window is acknowledged (otherwise one could overtake it).
        self._resync = threading.Event()
        self._state_lock = threading.Lock()
        last = self._spool.last()
        self._latest_state: bytes | None = last.payload if last is not None else None
        self._state_dirty = False
        self._stop = threading.Event()
        self._closed = False
        self._ever_connected = False
        self._outage_logged = False
        self._refusal_logged: str | None = None
        self._disconnected_at: float | None = None
        self.published = 0  # events acknowledged by the broker
        self.reconnects = 0
        self.emitted = 0

        self._publisher = threading.Thread(target=self._run_publisher, name=f"mqtt-publisher-{self.device_id}",
                                           daemon=True)
        self._publisher.start()
        log.info("mqtt sink: %s as %r, events on %s (QoS %d), spool %s", self.broker, self.client_id,
                 self.topics.emotion, options.qos, self.spool_path)
        client.connect_async(self.broker.host, self.broker.port, keepalive=options.keepalive)
        client.loop_start()

    # ---- the Sink API --------------------------------------------------------------------------

    def emit(self, event: EmotionEvent) -> None:
        """Spool the event (never raises, never waits for the network)."""
        if self._closed:
            log.warning("mqtt sink is closed; event seq=%d not sent", event.seq)
            return
        payload = event.to_json().encode("utf-8")
        self._spool.append(self.topics.emotion, payload, self.options.qos, False)
        with self._state_lock:
            self._latest_state = payload
            self._state_dirty = True
        self.emitted += 1
        self._wake.set()

    def publish_stats(self, stats: dict[str, Any]) -> None:
        """Runtime stats plus the sink's counters on ``PREFIX/DEVICE/stats`` (QoS 0; dropped while offline)."""
        if self._closed or not self._connected.is_set():
            log.debug("mqtt sink not connected; stats not published")
            return
        body = {"schema": STATS_SCHEMA, "device_id": self.device_id, "wall_time": utc_now_iso(), **stats,
                "mqtt": self.counters()}
        try:
            payload = json.dumps(body, separators=(",", ":"), default=str, allow_nan=False)
        except ValueError:
            payload = json.dumps(body, separators=(",", ":"), default=str)  # NaN as a JS literal beats no stats
        self._client.publish(self.topics.stats, payload, qos=0, retain=False)

    def counters(self) -> dict[str, Any]:
        """The sink's own numbers (also inside every stats message)."""
        return {
            "connected": self._connected.is_set(),
            "emitted": self.emitted,
            "published": self.published,
            "spooled": len(self._spool),
            "inflight": len(self._inflight),
            "dropped": self._spool.dropped,
            "spool_write_errors": self._spool.write_errors,
            "spool_in_memory": self._spool.in_memory,
            "reconnects": self.reconnects,
        }

    def flush(self, timeout: float) -> bool:
        """Wait until every spooled event is acknowledged; False if ``timeout`` ran out first."""
        deadline = time.monotonic() + max(0.0, timeout)
        while len(self._spool) > 0 or self._inflight:
            if time.monotonic() >= deadline:
                return False
            self._wake.set()
            time.sleep(0.01)
        return True

    def close(self, timeout: float | None = None) -> None:
        """Flush within ``timeout`` (default ``close_timeout_s``), publish ``offline``, disconnect.

        What the broker has not acknowledged stays in the spool file for the next start.
        """
        if self._closed:
            return
        timeout = self.options.close_timeout_s if timeout is None else timeout
        drained = self.flush(timeout) if timeout > 0 else (len(self._spool) == 0)
        self._closed = True
        if self._connected.is_set():
            try:
                info = self._client.publish(self.topics.availability, "offline", qos=1, retain=True)
                info.wait_for_publish(timeout=max(0.5, min(2.0, timeout)))
            except (RuntimeError, ValueError) as exc:
                log.warning("mqtt sink: 'offline' not confirmed by the broker: %s", exc)
        self._stop.set()
        self._wake.set()
        self._publisher.join(timeout=5.0)
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()
        self._apply_acks()  # PUBACKs that arrived after the publisher stopped
        left = len(self._spool)
        self._spool.close()
        if left:
            log.warning("mqtt sink closed with %d event(s) not acknowledged by %s; they stay in %s and are sent by "
                        "the next start%s", left, self.broker, self.spool_path,
                        "" if drained or timeout <= 0 else f" (flush timed out after {timeout:g} s)")
        else:
            log.info("mqtt sink closed: %d event(s) delivered to %s", self.published, self.broker)

    # ---- the publisher thread ------------------------------------------------------------------

    def _apply_acks(self) -> None:
        while True:
            try:
                mid = self._acks.get_nowait()
            except queue.Empty:
                return
            row_id = self._inflight.pop(mid, None)
            if row_id is not None:
                self._spool.ack(row_id)
                self.published += 1

    def _run_publisher(self) -> None:
        try:
            while not self._stop.is_set():
                self._wake.wait(timeout=0.5)
                self._wake.clear()
                self._apply_acks()
                if self._stop.is_set() or not self._connected.is_set():
                    continue
                self._publish_state()
                self._publish_rows()
        except Exception:  # a bug here must not pass silently: the events would just pile up
            log.exception("mqtt sink: the publisher thread failed; events keep spooling to %s", self.spool_path)

    def _publish_state(self) -> None:
        with self._state_lock:
            payload = self._latest_state if self._state_dirty else None
            self._state_dirty = False
        if payload is not None:
            self._client.publish(self.topics.state, payload, qos=1, retain=True)

    def _publish_rows(self) -> None:
        if self._resync.is_set():
            if self._inflight:
                return
            self._resync.clear()
        room = self.options.inflight - len(self._inflight)
        if room <= 0:
            return
        for row in self._spool.pending(room, after_id=self._cursor):
            if not self._connected.is_set():
                return
            info = self._client.publish(row.topic, row.payload, qos=row.qos, retain=row.retain)
            if row.qos == 0:
                if info.rc != self._mqtt.MQTT_ERR_SUCCESS:
                    return  # not taken (the link just dropped): offered again after the reconnect
                # at most once: handed to the socket counts as delivered (there is no PUBACK to wait for)
                self._spool.ack(row.id)
                self.published += 1
                self._cursor = row.id
                continue
            if info.rc == self._mqtt.MQTT_ERR_QUEUE_SIZE:
                return  # not taken; offered again later
            # QoS >= 1: paho holds the message (also on MQTT_ERR_NO_CONN) and resends it after a reconnect
            self._inflight[info.mid] = row.id
            self._cursor = row.id

    # ---- paho callbacks (paho's network thread) ------------------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            text = str(reason_code)
            if self._refusal_logged != text:
                self._refusal_logged = text
                hint = " (check the username and the password file / variable)" if (
                    "authori" in text.lower() or "password" in text.lower()) else ""
                log.error("mqtt sink: %s refused the connection: %s%s; retrying with backoff, events spool to %s",
                          self.broker, text, hint, self.spool_path)
            return
        self._refusal_logged = None
        self._outage_logged = False
        if self._ever_connected:
            self.reconnects += 1
            away = "" if self._disconnected_at is None else f" after {time.monotonic() - self._disconnected_at:.1f} s"
            log.info("mqtt sink: reconnected to %s%s; %d event(s) waiting in the spool", self.broker, away,
                     len(self._spool))
        else:
            log.info("mqtt sink: connected to %s", self.broker)
        self._ever_connected = True
        client.publish(self.topics.availability, "online", qos=1, retain=True)
        if self._discovery:
            client.subscribe(ha.status_topic(self.options.ha_prefix), qos=1)
            self._announce(client)
        with self._state_lock:
            self._state_dirty = self._latest_state is not None  # a restarted broker may have lost it
        self._connected.set()
        self._wake.set()

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        if not self._outage_logged:
            self._outage_logged = True
            log.warning("mqtt sink: cannot reach %s; retrying every %g–%g s, events spool to %s meanwhile",
                        self.broker, self.options.reconnect_min_s, self.options.reconnect_max_s, self.spool_path)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        was_connected = self._connected.is_set()
        self._resync.set()
        self._connected.clear()
        if self._closed or not was_connected:
            return
        self._disconnected_at = time.monotonic()
        log.warning("mqtt sink: lost the connection to %s (%s); reconnecting, events spool meanwhile",
                    self.broker, reason_code)

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:
        if getattr(reason_code, "is_failure", False):
            log.warning("mqtt sink: the broker refused message %d: %s", mid, reason_code)
        self._acks.put(mid)
        self._wake.set()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        if (self._discovery and message.topic == ha.status_topic(self.options.ha_prefix)
                and message.payload.strip() == b"online"):
            log.info("mqtt sink: Home Assistant came online; announcing the entities again")
            self._announce(client)

    def _announce(self, client: Any) -> None:
        for msg in self._discovery:
            client.publish(msg.topic, msg.payload, qos=1, retain=msg.retain)

    def __repr__(self) -> str:
        return (f"MqttSink(broker={self.broker!s}, device_id={self.device_id!r}, username={self.username!r}, "
                f"spool={self.spool_path!s})")
