"""Home Assistant MQTT discovery: pure functions that build the config messages.

Two entities per device, grouped under one HA device:

* an ``event`` entity on the events topic (``PREFIX/DEVICE/emotion``), ``event_types`` = the model's
  labels; its ``value_template`` turns our event into the ``{"event_type": ...}`` JSON HA expects;
* an enum ``sensor`` on the retained state topic (``PREFIX/DEVICE/state``), ``options`` = the labels,
  with confidence, scores and the speaker (track id, box, speaking score) as attributes.

Both use the availability topic (``online`` / ``offline``). Config messages are published retained
on every (re)connect and again whenever ``homeassistant/status`` says ``online`` (HA restarted).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edge_mmer import __version__
from edge_mmer.runtime.settings import DEFAULT_DISCOVERY_PREFIX

__all__ = ["DEFAULT_DISCOVERY_PREFIX", "DiscoveryMessage", "device_block", "discovery_messages", "node_id",
           "removal_messages", "status_topic"]


@dataclass(frozen=True)
class DiscoveryMessage:
    topic: str
    payload: str  # JSON
    retain: bool = True


def node_id(device_id: str) -> str:
    """HA's ``node_id``/``object_id`` allow ``[a-zA-Z0-9_-]`` only; an id that had to be changed gets a
    short hash of the original, so two devices never share one (``kiosk.1`` / ``kiosk_1``)."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", device_id) or "device"
    if safe != device_id:
        safe += "_" + hashlib.sha256(device_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return "edge_mmer_" + safe


def status_topic(discovery_prefix: str = DEFAULT_DISCOVERY_PREFIX) -> str:
    """Where HA announces itself (``online`` after it starts)."""
    return f"{discovery_prefix}/status"


def device_block(device_id: str, model_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {
        "identifiers": [node_id(device_id)],
        "name": f"edge-mmer {device_id}",
        "manufacturer": "edge-mmer",
        "model": "emotion recognition (speech + face)",
        "sw_version": __version__,
    }
    if model_id:
        block["model_id"] = model_id
    return block


def discovery_messages(
    *,
    device_id: str,
    labels: Sequence[str],
    events_topic: str,
    state_topic: str,
    availability_topic: str,
    discovery_prefix: str = DEFAULT_DISCOVERY_PREFIX,
    model_id: str | None = None,
) -> list[DiscoveryMessage]:
    """The retained config messages for the event entity and the enum sensor."""
    if not labels:
        raise ValueError("Home Assistant discovery needs the model's labels (event_types / options); got none")
    if len(set(labels)) != len(labels):
        raise ValueError(f"Home Assistant discovery: labels must be unique, got {list(labels)}")
    node = node_id(device_id)
    common: dict[str, Any] = {
        "availability_topic": availability_topic,
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": device_block(device_id, model_id),
        "origin": {"name": "edge-mmer", "sw_version": __version__},
    }
    event_cfg = {
        "name": "Emotion event",
        "unique_id": f"{node}_emotion_event",
        "state_topic": events_topic,
        "event_types": list(labels),
        "value_template": ('{"event_type": {{ value_json.label | tojson }}, '
                           '"confidence": {{ value_json.confidence }}, "seq": {{ value_json.seq }}, '
                           '"trigger": {{ value_json.trigger | tojson }}}'),
        "qos": 1,
        **common,
    }
    sensor_cfg = {
        "name": "Emotion",
        "unique_id": f"{node}_emotion",
        "state_topic": state_topic,
        "device_class": "enum",
        "options": list(labels),
        "value_template": "{{ value_json.label }}",
        "json_attributes_topic": state_topic,
        "json_attributes_template": ('{"confidence": {{ value_json.confidence }}, '
                                     '"scores": {{ value_json.scores | tojson }}, '
                                     '"wall_time": {{ value_json.wall_time | tojson }}, '
                                     '"speaker": {{ value_json.speaker | default(none) | tojson }}}'),
        "qos": 1,
        **common,
    }
    return [
        DiscoveryMessage(f"{discovery_prefix}/event/{node}/emotion/config",
                         json.dumps(event_cfg, separators=(",", ":"))),
        DiscoveryMessage(f"{discovery_prefix}/sensor/{node}/emotion/config",
                         json.dumps(sensor_cfg, separators=(",", ":"))),
    ]


def removal_messages(device_id: str, discovery_prefix: str = DEFAULT_DISCOVERY_PREFIX) -> list[DiscoveryMessage]:
    """Empty retained configs: publishing them removes the entities from HA."""
    node = node_id(device_id)
    return [DiscoveryMessage(f"{discovery_prefix}/{component}/{node}/emotion/config", "")
            for component in ("event", "sensor")]
