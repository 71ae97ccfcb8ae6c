"""``make_sink(spec)``: one string names a sink (what ``--sink`` takes on the command line)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from edge_mmer.runtime.sinks.base import Sink, SinkError
from edge_mmer.runtime.sinks.mqtt import MqttOptions, MqttSink, mqtt_options_from, redact_url

SPEC_FORMS = ("stdout", "jsonl:PATH", "mqtt://HOST[:PORT][/PREFIX]", "mqtts://HOST[:PORT][/PREFIX]")


def make_sink(
    spec: str,
    *,
    device_id: str,
    labels: Sequence[str] = (),
    model_id: str | None = None,
    mqtt: MqttOptions | object | None = None,
    stream: TextIO | None = None,
) -> Sink:
    """Build the sink ``spec`` names.

    ``stdout`` (or ``-``): JSON lines on ``stream`` / stdout. ``jsonl:PATH``: appended to PATH.
    ``mqtt://…`` / ``mqtts://…``: :class:`~.mqtt.MqttSink`; ``mqtt`` is an optional
    :class:`~.mqtt.MqttOptions` template, or a settings section with the same field names (the
    ``[mqtt]`` section of the runtime settings: ``""`` = not set), for everything but the URL and the
    device id (credentials, TLS files, spool, Home Assistant discovery ...). ``labels`` (the model's classes) feed Home
    Assistant discovery.
    """
    text = spec.strip()
    if not text:
        raise SinkError(f"empty sink spec; accepted forms: {', '.join(SPEC_FORMS)}")
    if text in ("stdout", "-"):
        from edge_mmer.runtime.sinks.stdout import StdoutSink

        return StdoutSink(stream)
    if text.startswith("jsonl:"):
        path = text[len("jsonl:"):]
        if path.startswith("//"):
            path = path[2:]
        if not path:
            raise SinkError(f"sink spec {spec!r} has no path; expected jsonl:PATH (e.g. jsonl:events.jsonl)")
        from edge_mmer.runtime.sinks.jsonl import JsonlSink

        return JsonlSink(Path(path))
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme in ("mqtt", "mqtts"):
        try:
            options = mqtt_options_from(mqtt if mqtt is not None else MqttOptions(), url=text, device_id=device_id)
        except (TypeError, ValueError) as exc:
            raise SinkError(f"MQTT options {mqtt!r} cannot be used: {exc}") from exc
        return MqttSink(options, labels=labels, model_id=model_id)
    raise SinkError(f"unknown sink spec {redact_url(spec)!r}; accepted forms: {', '.join(SPEC_FORMS)}")
