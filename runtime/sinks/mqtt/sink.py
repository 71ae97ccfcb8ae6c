"""The MQTT sink itself: events through the on-disk spool, one publisher thread, paho's callbacks.

See :mod:`edge_mmer.runtime.sinks.mqtt` for the topics and the delivery guarantees; the options are
checked and resolved by :func:`~.options.prepare_connection` before anything starts, and the paho
client is set up in :meth:`MqttSink._make_client`.
"""

from __future__ import annotations

import json
import logging
import queue
import ssl
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import edge_mmer.runtime.sinks.mqtt.homeassistant as ha
from edge_mmer.runtime.events import EmotionEvent, StatsMessage
from edge_mmer.runtime.logonce import LogOnce
from edge_mmer.runtime.settings import MqttOptions
from edge_mmer.runtime.sinks.base import Sink, SinkError
from edge_mmer.runtime.sinks.mqtt.options import Connection, prepare_connection
from edge_mmer.runtime.sinks.mqtt.spool import Spool

if TYPE_CHECKING:
    import paho.mqtt.client as paho_client

__all__ = ["MqttSink"]

log = logging.getLogger(__name__)

_EXTRA_INFLIGHT = 16  # room in paho's window for state, availability and discovery messages
MAX_THREAD_RESTARTS = 5  # a publisher or network thread that dies more often than this a minute ends the sink
HA_ANNOUNCE_MIN_S = 10.0  # Home Assistant 'online' floods are answered at most this often


def _is_event_payload(payload: bytes) -> bool:
    """What the sink spools: a JSON object (a row that is not one is dead-lettered, never published)."""
    try:
        return isinstance(json.loads(payload), dict)
    except (ValueError, UnicodeDecodeError):
        return False


def _import_paho() -> Any:
    try:
        import paho.mqtt.client as mqtt
    except ImportError as exc:
        raise SinkError("the MQTT sink needs paho-mqtt 2.x: pip install 'edge-mmer[mqtt]'") from exc
    if not hasattr(mqtt, "CallbackAPIVersion"):
        raise SinkError("the MQTT sink needs paho-mqtt >= 2.0 (found an older one): pip install 'edge-mmer[mqtt]'")
    return mqtt


class MqttSink(Sink):
    """See the module docstring. Starts even when the broker is down (events spool meanwhile)."""

    name = "mqtt"

    def __init__(self, options: MqttOptions, *, labels: Sequence[str] = (), model_id: str | None = None) -> None:
        conn = prepare_connection(options)  # every check, before anything starts
        self.labels = tuple(labels)
        if options.ha_discovery and not self.labels:
            raise SinkError("MQTT Home Assistant discovery needs the model's labels; none were given")
        self.options = options
        self.model_id = model_id
        self.device_id = conn.device_id
        self.broker = conn.broker
        self.username = conn.username
        self.topics = conn.topics
        self.client_id = conn.client_id
        self.spool_path = conn.spool_path
        self._discovery = (ha.discovery_messages(device_id=self.device_id, labels=self.labels,
                                                 events_topic=self.topics.emotion, state_topic=self.topics.state,
                                                 availability_topic=self.topics.availability,
                                                 discovery_prefix=options.ha_prefix, model_id=model_id)
                           if options.ha_discovery else [])
        self._mqtt = _import_paho()
        self._client = self._make_client(conn)
        try:
            self._spool = Spool(self.spool_path, max_events=options.spool_max_events,
                                max_bytes=options.spool_max_bytes, payload_ok=_is_event_payload)
        except ValueError as exc:
            raise SinkError(f"MQTT {exc}") from exc
        if self.spool_path is not None and self._spool.locked:
            self._spool.close()
            raise SinkError(f"MQTT spool {self.spool_path} is in use by another runtime: one runtime per device id "
                            f"(a second one would take over the broker connection of the first, client id "
                            f"{self.client_id!r}); give this one another --device-id or stop the other")

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
        self._once = LogOnce(log)  # an outage or a refusal is said once, until the next connection
        self._disconnected_at: float | None = None
        self.published = 0  # events acknowledged by the broker
        self.reconnects = 0
        self.emitted = 0
        self.thread_restarts = 0  # publisher or paho network threads that died and were restarted
        self._deaths: deque[float] = deque()
        self._failure: SinkError | None = None
        self._network_started = False
        self._announce_due = False
        self._announced_at = -1e9
        self.status_messages = 0  # Home Assistant 'online' messages received

        self._publisher = threading.Thread(target=self._run_publisher, name=f"mqtt-publisher-{self.device_id}",
                                           daemon=True)
        self._publisher.start()
        log.info("mqtt sink: %s as %r, events on %s (QoS %d), spool %s", self.broker, self.client_id,
                 self.topics.emotion, options.qos, self.spool_path)
        self._client.connect_async(self.broker.host, self.broker.port, keepalive=options.keepalive)
        self._client.loop_start()
        self._network_started = True

    def _make_client(self, conn: Connection) -> paho_client.Client:
        """The paho client: credentials, TLS, last will, reconnect backoff, in-flight window, callbacks."""
        mqtt, options = self._mqtt, self.options
        client: paho_client.Client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                                                 client_id=conn.client_id, clean_session=True,
                                                 protocol=mqtt.MQTTv311)
        client.enable_logger(logging.getLogger(f"{__name__}.paho"))
        if conn.username:
            client.username_pw_set(conn.username, None if conn.password is None else conn.password.value)
        if conn.broker.tls:
            try:
                client.tls_set(ca_certs=conn.ca_file, certfile=conn.cert_file, keyfile=conn.key_file,
                               cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
            except (ssl.SSLError, OSError, ValueError) as exc:
                raise SinkError(f"MQTT TLS files cannot be loaded (ca_file={conn.ca_file}, cert_file={conn.cert_file}, "
                                f"key_file={conn.key_file}): {exc}") from exc
        client.will_set(conn.topics.availability, "offline", qos=1, retain=True)
        # paho accepts float delays (it compares times); the stub says int
        client.reconnect_delay_set(min_delay=cast(int, options.reconnect_min_s),
                                   max_delay=cast(int, options.reconnect_max_s))
        client.max_inflight_messages_set(options.inflight + _EXTRA_INFLIGHT)
        client.max_queued_messages_set(0)  # what paho holds is bounded by the publisher, not by dropping
        client.suppress_exceptions = True  # a bug in a callback is logged by paho, not the end of its thread
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    # ---- the Sink API --------------------------------------------------------------------------

    @property
    def failure(self) -> SinkError | None:
        """Set when the sink cannot go on (its threads keep dying): the runtime stops with it."""
        return self._failure

    def emit(self, event: EmotionEvent) -> None:
        """Spool the event (never waits for the network); raises only when the sink has failed."""
        if self._failure is not None:
            raise self._failure
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

    def publish_stats(self, stats: StatsMessage) -> None:
        """Runtime stats plus the sink's counters on ``PREFIX/DEVICE/stats`` (QoS 0; dropped while offline)."""
        if self._closed or not self._connected.is_set():
            log.debug("mqtt sink not connected; stats not published")
            return
        payload = stats.with_sink("mqtt", self.counters(), device_id=self.device_id).to_json()
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
            "dead_lettered": self._spool.dead_lettered,
            "spool_salvaged": self._spool.salvaged,
            "spool_lost": self._spool.lost,
            "thread_restarts": self.thread_restarts,
        }

    def flush(self, timeout: float) -> bool:
        """Wait until every spooled event is acknowledged; False if ``timeout`` ran out first."""
        deadline = time.monotonic() + max(0.0, timeout)
        while len(self._spool) > 0 or self._inflight:
            if time.monotonic() >= deadline or self._failure is not None:
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
        """The publisher loop, restarted when it raises; too many deaths a minute end the sink."""
        while not self._stop.is_set():
            try:
                self._publish_loop()
                return
            except Exception as exc:  # a bug here must not pass silently: the events would just pile up
                log.exception("mqtt sink: the publisher thread failed; restarting it (events keep spooling to %s)",
                              self.spool_path)
                if not self._thread_died(f"the publisher thread failed ({type(exc).__name__}: {exc})"):
                    return
                self._stop.wait(0.2)

    def _publish_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=0.5)
            self._wake.clear()
            self._apply_acks()
            self._check_network_thread()
            if self._stop.is_set() or not self._connected.is_set():
                continue
            self._publish_state()
            self._publish_announce()
            self._publish_rows()

    def _thread_died(self, what: str) -> bool:
        """Count a thread's death; False (and the sink failed) past MAX_THREAD_RESTARTS a minute."""
        now = time.monotonic()
        self._deaths.append(now)
        while self._deaths and now - self._deaths[0] > 60.0:
            self._deaths.popleft()
        self.thread_restarts += 1
        if len(self._deaths) > MAX_THREAD_RESTARTS:
            self._failure = SinkError(f"MQTT sink stopped: {what}, {len(self._deaths)} times within a minute; "
                                      f"unsent events stay in {self.spool_path}")
            log.error("%s", self._failure)
            return False
        return True

    def _check_network_thread(self) -> None:
        """paho's network thread died (an exception in it ends it for good): start a new one."""
        thread = getattr(self._client, "_thread", None)  # paho sets it to None when the thread ends
        if not self._network_started or self._closed or self._stop.is_set() or (thread is not None
                                                                                 and thread.is_alive()):
            return
        if not self._client.is_connected():
            self._connected.clear()  # the new thread reconnects, and on_connect sets it again
        if not self._thread_died("paho's network thread died"):
            return
        log.error("mqtt sink: paho's network thread died (see the error above); starting a new one")
        self._client._thread = None  # (paho clears it itself; loop_start() refuses while it is set)
        self._client.loop_start()

    def _publish_announce(self) -> None:
        """Home Assistant asked (possibly thousands of times): announce once, at most every HA_ANNOUNCE_MIN_S."""
        if not self._announce_due or time.monotonic() - self._announced_at < HA_ANNOUNCE_MIN_S:
            return
        self._announce_due = False
        self._announced_at = time.monotonic()
        log.info("mqtt sink: Home Assistant came online; announcing the entities again (%d status message(s) so "
                 "far)", self.status_messages)
        self._announce(self._client)

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
            try:
                info = self._client.publish(row.topic, row.payload, qos=row.qos, retain=row.retain)
            except ValueError as exc:  # paho refuses the row itself: it must not stop the rows after it
                self._spool.quarantine(row.id, f"paho refused it: {exc}")
                self._cursor = row.id
                continue
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
            hint = " (check the username and the password file / variable)" if (
                "authori" in text.lower() or "password" in text.lower()) else ""
            self._once(logging.ERROR, f"refused: {text}", "mqtt sink: %s refused the connection: %s%s; retrying with "
                       "backoff, events spool to %s", self.broker, text, hint, self.spool_path)
            return
        self._once.reset()
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
        exc = sys.exc_info()[1]  # paho calls this inside its ``except OSError``: the reason, once per outage
        reason = "" if exc is None else f" ({type(exc).__name__}: {exc})"
        tls = " — a TLS refusal (certificate, host name or a plain port?)" if isinstance(exc, ssl.SSLError) else ""
        self._once(logging.WARNING, "unreachable", "mqtt sink: cannot reach %s%s%s; retrying every %g–%g s, events "
                   "spool to %s meanwhile", self.broker, reason, tls, self.options.reconnect_min_s,
                   self.options.reconnect_max_s, self.spool_path)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        was_connected = self._connected.is_set()
        self._resync.set()
        self._connected.clear()
        if self._closed:
            return
        if not was_connected:  # dropped before or right after CONNECT: a protocol refusal, said once per outage
            self._once(logging.WARNING, "dropped-at-connect", "mqtt sink: %s closed the connection before accepting "
                       "it (%s); a protocol refusal (client id, credentials or packet limits?); retrying, events "
                       "spool to %s meanwhile", self.broker, reason_code, self.spool_path)
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
            self.status_messages += 1
            self._announce_due = True  # the publisher thread answers, debounced (a flood is one announce)
            self._wake.set()

    def _announce(self, client: Any) -> None:
        for msg in self._discovery:
            client.publish(msg.topic, msg.payload, qos=1, retain=msg.retain)

    def __repr__(self) -> str:
        return (f"MqttSink(broker={self.broker!s}, device_id={self.device_id!r}, username={self.username!r}, "
                f"spool={self.spool_path!s})")
