"""``make_sink(spec)``: one string names a sink (what ``--sink`` takes on the command line).

Each form has one builder in :data:`SINK_BUILDERS`, keyed by the spec's scheme: ``stdout`` (or
``-``), ``jsonl:PATH``, ``mqtt://…`` and ``mqtts://…``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from edge_mmer.runtime.settings import MqttOptions
from edge_mmer.runtime.sinks.base import Sink, SinkError
from edge_mmer.runtime.sinks.jsonl import JsonlSink
from edge_mmer.runtime.sinks.mqtt import MqttSink
from edge_mmer.runtime.sinks.mqtt.options import redact_url
from edge_mmer.runtime.sinks.stdout import StdoutSink

__all__ = ["SINK_BUILDERS", "SPEC_FORMS", "SinkContext", "make_sink"]

SPEC_FORMS = ("stdout", "jsonl:PATH", "mqtt://HOST[:PORT][/PREFIX]", "mqtts://HOST[:PORT][/PREFIX]")


@dataclass(frozen=True)
class SinkContext:
    """What a sink may need besides its spec."""

    device_id: str
    labels: Sequence[str] = ()
    model_id: str | None = None
    mqtt: MqttOptions | None = None
    stream: TextIO | None = None


def _stdout(spec: str, ctx: SinkContext) -> Sink:
    return StdoutSink(ctx.stream)


def _jsonl(spec: str, ctx: SinkContext) -> Sink:
    path = spec[len("jsonl:"):]
    if path.startswith("//"):
        path = path[2:]
    if not path:
        raise SinkError(f"sink spec {spec!r} has no path; expected jsonl:PATH (e.g. jsonl:events.jsonl)")

    return JsonlSink(Path(path))


def _mqtt(spec: str, ctx: SinkContext) -> Sink:
    options = dataclasses.replace(ctx.mqtt or MqttOptions(), url=spec, device_id=ctx.device_id)
    return MqttSink(options, labels=ctx.labels, model_id=ctx.model_id)


SINK_BUILDERS: dict[str, Callable[[str, SinkContext], Sink]] = {
    "stdout": _stdout,
    "jsonl": _jsonl,
    "mqtt": _mqtt,
    "mqtts": _mqtt,
}
"""Spec scheme -> builder (``stdout`` and ``-`` are the scheme ``stdout``; ``jsonl:PATH`` is ``jsonl``)."""


def _scheme(text: str) -> str:
    if text in ("stdout", "-"):
        return "stdout"
    if text.startswith("jsonl:"):
        return "jsonl"
    return text.split("://", 1)[0].lower() if "://" in text else ""


def make_sink(
    spec: str,
    *,
    device_id: str,
    labels: Sequence[str] = (),
    model_id: str | None = None,
    mqtt: MqttOptions | None = None,
    stream: TextIO | None = None,
) -> Sink:
    """Build the sink ``spec`` names.

    ``stdout`` (or ``-``): JSON lines on ``stream`` / stdout. ``jsonl:PATH``: appended to PATH.
    ``mqtt://…`` / ``mqtts://…``: :class:`~edge_mmer.runtime.sinks.mqtt.MqttSink`; ``mqtt`` is the
    ``[mqtt]`` settings section (:class:`~edge_mmer.runtime.settings.MqttOptions`: credentials, TLS
    files, spool, Home Assistant discovery ...), completed with the URL and ``device_id``.
    ``labels`` (the model's classes) feed Home Assistant discovery.
    """
    text = spec.strip()
    if not text:
        raise SinkError(f"empty sink spec; accepted forms: {', '.join(SPEC_FORMS)}")
    builder = SINK_BUILDERS.get(_scheme(text))
    if builder is None:
        raise SinkError(f"unknown sink spec {redact_url(spec)!r}; accepted forms: {', '.join(SPEC_FORMS)}")
    return builder(text, SinkContext(device_id=device_id, labels=labels, model_id=model_id, mqtt=mqtt, stream=stream))
