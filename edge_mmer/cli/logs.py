"""The command line's logging: plain text for people, or one JSON object per line for machines.

``--log-format json`` writes every record to stderr as one line of JSON: ``ts`` (UTC, ISO 8601 with
milliseconds), ``level``, ``logger``, ``message``, ``exc`` (a traceback, when there is one), and the
record's own fields. A module gives fields with ``log.info(..., extra={LOG_FIELDS: {...}})``
(:data:`edge_mmer.vocab.LOG_FIELDS`): the
runtime loop's periodic statistics carry the event counters, queue drops and source restarts that
way, so a log shipper (journald, Fluent Bit, Vector) reads numbers instead of parsing a sentence.
Text mode shows the same records as sentences and ignores the fields.

Under systemd, stderr goes to the journal line by line: ``journalctl -u edge-mmer -o cat`` gives the
JSON back, one object per line.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import sys
from typing import Any

from edge_mmer.vocab import LOG_FIELDS

__all__ = ["FIELDS", "LOG_FORMATS", "JsonFormatter", "setup_logging"]

LOG_FORMATS = ("text", "json")
FIELDS = LOG_FIELDS  # the ``extra`` key whose mapping a JSON line carries as its own keys
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_BASE_KEYS = ("ts", "level", "logger", "message", "exc")


class JsonFormatter(logging.Formatter):
    """One compact JSON object per record (never more than one line: newlines are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": _dt.datetime.fromtimestamp(record.created, _dt.timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            body["exc"] = record.exc_text
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                body[key if key not in _BASE_KEYS else f"field_{key}"] = value
        return json.dumps(body, separators=(",", ":"), default=str)


def setup_logging(verbose: int, quiet: bool, log_format: str = "text") -> None:
    """The one logging set-up of the command line: level from ``-v`` / ``-q``, format from ``--log-format``."""
    level = logging.WARNING if quiet else logging.DEBUG if verbose > 1 else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    if root.handlers:  # what basicConfig does: a caller that set up logging itself keeps it
        return
    root.addHandler(handler)
    root.setLevel(level)
