"""What the MQTT sink connects with: the broker URL, the device's topics, the credentials and TLS files.

:class:`~edge_mmer.runtime.settings.MqttOptions` (the ``[mqtt]`` section plus the URL and device id
from ``[run]``) is declared with the other settings and checks its own ranges
(:meth:`~edge_mmer.runtime.settings.MqttOptions.validate`). :func:`prepare_connection` does the rest
before anything starts: parses the URL, checks the device id as a topic level, merges the username,
checks that the TLS files exist and are readable, and reads the password. Every problem is a
:class:`SinkError` that names the option; no password is ever shown (:func:`redact_url`, ``_Secret``).

The password never comes from the command line or the URL: ``password_file`` (its first line) or
the environment variable ``password_env`` (default ``EDGE_MMER_MQTT_PASSWORD``).
"""

from __future__ import annotations

import logging
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from edge_mmer.errors import ConfigError
from edge_mmer.runtime.settings import DEFAULT_MQTT_PREFIX, DEFAULT_PASSWORD_ENV, DEVICE_ID_PATTERN, MqttOptions
from edge_mmer.runtime.sinks.base import SinkError
from edge_mmer.runtime.sinks.mqtt.spool import default_spool_path

__all__ = ["DEFAULT_PASSWORD_ENV", "DEFAULT_PREFIX", "PORTS", "BrokerUrl", "Connection", "MqttOptions", "MqttTopics",
           "check_device_id", "parse_broker_url", "prepare_connection", "redact_url", "resolve_password"]

log = logging.getLogger(__name__)

DEFAULT_PREFIX = DEFAULT_MQTT_PREFIX
PORTS = {"mqtt": 1883, "mqtts": 8883}
_TOPIC_BAD = re.compile(r"[+#\x00]")


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
    """The device id is one topic level, part of the client id, of the spool's file name and of the
    Home Assistant ids: only the safe set of :data:`~edge_mmer.runtime.settings.DEVICE_ID_PATTERN`."""
    if not device_id or DEVICE_ID_PATTERN.fullmatch(device_id) is None:
        raise SinkError(f"MQTT device id {ascii(device_id)[:100]} must be 1..64 of A-Z a-z 0-9 . _ - starting with a "
                        "letter or digit (it is one topic level, a file name and a Home Assistant id)")
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


@dataclass(frozen=True)
class Connection:
    """Everything checked and resolved that the client is built from (no password in its repr)."""

    broker: BrokerUrl
    device_id: str
    topics: MqttTopics
    client_id: str
    username: str | None
    password: _Secret | None
    ca_file: str | None
    cert_file: str | None
    key_file: str | None
    spool_path: Path


def prepare_connection(options: MqttOptions) -> Connection:
    """Check ``options`` and resolve what the client needs; :class:`SinkError` names what is wrong."""
    try:
        options.validate()
    except ConfigError as exc:
        raise SinkError(f"MQTT options: {exc}") from exc
    device_id = check_device_id(options.device_id)
    broker = parse_broker_url(options.url)
    username = options.username or None
    if broker.username:
        if username and username != broker.username:
            raise SinkError(f"MQTT username given twice and differently: {username!r} (options) and "
                            f"{broker.username!r} (URL)")
        username = broker.username
    if not broker.tls and (options.ca_file or options.cert_file or options.key_file):
        raise SinkError(f"MQTT ca_file / cert_file / key_file need a TLS URL (mqtts://), got {broker}")
    ca = _check_file("ca_file", options.ca_file)
    cert = _check_file("cert_file", options.cert_file)
    key = _check_file("key_file", options.key_file)
    password = resolve_password(username, options.password_file, options.password_env)
    spool = Path(options.spool_path).expanduser() if options.spool_path else default_spool_path(device_id)
    return Connection(broker=broker, device_id=device_id, topics=MqttTopics.for_device(broker.prefix, device_id),
                      client_id=options.client_id or f"edge-mmer-{device_id}", username=username, password=password,
                      ca_file=ca, cert_file=cert, key_file=key, spool_path=spool)
