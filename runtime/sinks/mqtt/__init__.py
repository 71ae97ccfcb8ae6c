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
nothing overtakes it); when the process dies, the next sink on the same spool file sends every
unacknowledged row again, oldest first. So nothing is lost while the spool has room, and the order
is kept. Duplicates are only possible where QoS 1 itself allows them: the broker took a message but
its PUBACK was lost with the connection (or the process died between PUBACK and the spool delete);
consumers that must be exact can drop a repeated ``(session_id, seq)``.

The password never comes from the command line or the URL: ``password_file`` or the environment
variable ``password_env`` (default ``EDGE_MMER_MQTT_PASSWORD``). It is never logged or shown in a
repr.

Modules: :mod:`.options` (URL, topics, credentials, TLS files: everything checked before the sink
starts), :mod:`.sink` (:class:`MqttSink`), :mod:`.spool` (the on-disk FIFO), :mod:`.homeassistant`
(discovery messages). The options themselves are the ``[mqtt]`` settings section,
:class:`~edge_mmer.runtime.settings.MqttOptions`.
"""

from edge_mmer.runtime.events import STATS_SCHEMA_ID as STATS_SCHEMA
from edge_mmer.runtime.settings import MqttOptions
from edge_mmer.runtime.sinks.mqtt import homeassistant
from edge_mmer.runtime.sinks.mqtt.options import (
    DEFAULT_PASSWORD_ENV,
    DEFAULT_PREFIX,
    PORTS,
    BrokerUrl,
    Connection,
    MqttTopics,
    check_device_id,
    parse_broker_url,
    prepare_connection,
    redact_url,
    resolve_password,
)
from edge_mmer.runtime.sinks.mqtt.sink import MqttSink
from edge_mmer.runtime.sinks.mqtt.spool import DEFAULT_MAX_BYTES, DEFAULT_MAX_EVENTS, Spool, default_spool_path

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_EVENTS",
    "DEFAULT_PASSWORD_ENV",
    "DEFAULT_PREFIX",
    "PORTS",
    "STATS_SCHEMA",
    "BrokerUrl",
    "Connection",
    "MqttOptions",
    "MqttSink",
    "MqttTopics",
    "Spool",
    "check_device_id",
    "default_spool_path",
    "homeassistant",
    "parse_broker_url",
    "prepare_connection",
    "redact_url",
    "resolve_password",
]
