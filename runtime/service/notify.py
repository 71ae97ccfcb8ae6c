"""The client side of the systemd notify protocol (``sd_notify(3)``), without libsystemd.

A service of ``Type=notify`` finds a datagram socket's address in ``$NOTIFY_SOCKET`` (a path, or an
abstract address written with a leading ``@``) and sends it newline-separated ``KEY=VALUE``
assignments: ``READY=1``, ``WATCHDOG=1``, ``STATUS=...``, ``STOPPING=1``. ``$WATCHDOG_USEC`` (with
``$WATCHDOG_PID`` naming the process meant) says how often the service manager expects
``WATCHDOG=1``. This is the whole protocol the runtime needs, so it is a few lines over a socket
rather than a dependency.

A notifier never raises into the loop: with no socket it does nothing, and a send that fails (the
manager went away, a full socket buffer) is logged once and dropped — telling systemd is never worth
stopping the stream for.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)

__all__ = ["Notifier", "watchdog_interval_s"]

MAX_STATUS_CHARS = 200  # systemctl status shows one line; keep the datagram small


def _address(raw: str) -> str | bytes | None:
    """``$NOTIFY_SOCKET`` as an ``AF_UNIX`` address: a path, or ``@name`` -> the abstract ``\\0name``."""
    if raw.startswith("/"):
        return raw
    if raw.startswith("@") and len(raw) > 1:
        return b"\0" + raw[1:].encode()
    return None  # e.g. vsock:… (a VM's manager): not spoken here


def watchdog_interval_s(environ: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """The watchdog period the service manager asked for (``$WATCHDOG_USEC``), in seconds; None when
    there is none, or when ``$WATCHDOG_PID`` names another process (``sd_watchdog_enabled(3)``)."""
    env = os.environ if environ is None else environ
    usec, owner = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
    if not usec:
        return None
    try:
        value = int(usec)
        if owner and int(owner) != (os.getpid() if pid is None else pid):
            return None
    except ValueError:
        log.warning("ignoring a malformed WATCHDOG_USEC=%r / WATCHDOG_PID=%r", usec, owner)
        return None
    return value / 1e6 if value > 0 else None


class Notifier:
    """Sends notify messages to one socket address; does nothing when ``address`` is None."""

    def __init__(self, address: str | bytes | None) -> None:
        self.address = address
        self.sent = 0
        self._failed = False
        self._sock: socket.socket | None = None
        if address is not None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)  # a full receive buffer drops the message, never stalls the loop

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """The notifier for ``$NOTIFY_SOCKET`` (a disabled one when it is unset or not a unix socket)."""
        raw = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
        address = _address(raw) if raw else None
        if raw and address is None:
            log.warning("NOTIFY_SOCKET=%r is not a unix socket address: not notifying the service manager", raw)
        return cls(address)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, **fields: str | int) -> bool:
        """``send(READY=1, STATUS="...")``: one datagram; True when it was sent."""
        if self._sock is None or self.address is None:
            return False
        lines = []
        for key, value in fields.items():
            text = str(value).replace("\n", " ")
            lines.append(f"{key}={text[:MAX_STATUS_CHARS] if key == 'STATUS' else text}")
        try:
            self._sock.sendto("\n".join(lines).encode("utf-8", "replace"), self.address)
        except OSError as exc:
            if not self._failed:
                log.warning("cannot notify the service manager at %r: %s (further failures are not logged)",
                            self.address, exc)
                self._failed = True
            return False
        self.sent += 1
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
