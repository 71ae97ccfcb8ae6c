"""The systemd unit that runs the loop for weeks: restarted, watched, and locked down.

:func:`render_unit` writes a ``Type=notify`` service: the loop says ``READY=1`` once its sources
and runners are up and pings ``WATCHDOG=1`` only while the stream moves
(:mod:`~edge_mmer.runtime.service.heartbeat`), so ``WatchdogSec=`` restarts a stalled pipeline, not
just a dead process. ``Restart=always`` with a start-rate limit (``StartLimitBurst=`` in
``StartLimitIntervalSec=``) keeps a unit that cannot start from restarting forever. The hardening
leaves the process what the loop needs and nothing more: no new privileges, the whole file system
read-only (``ProtectSystem=strict``) but for its state folder (the MQTT spool, kept across restarts,
so no event is lost) and, for a JSONL sink, that file's folder; no home folders, a private /tmp, the
``video`` and ``audio`` groups for cameras and microphones, network and unix sockets only.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from edge_mmer.runtime.settings import RuntimeSettings

__all__ = ["DEFAULT_USER", "STATE_DIR", "UnitOptions", "executable", "render_unit"]

DEFAULT_USER = "edge-mmer"
STATE_DIR = "edge-mmer"  # StateDirectory=: /var/lib/edge-mmer, owned by the service's user
DEFAULT_WATCHDOG_S = 30
DEVICE_GROUPS = ("video", "audio")


@dataclass(frozen=True)
class UnitOptions:
    """What the unit is made from; ``config`` is the settings file the service runs with (absolute)."""

    config: Path | None = None
    user: str = DEFAULT_USER
    watchdog_s: int = DEFAULT_WATCHDOG_S
    restart_s: int = 5
    start_burst: int = 5
    start_interval_s: int = 600
    stop_timeout_s: int = 60  # the MQTT sink flushes its spool at a stop (close_timeout_s)
    memory_max: str = "1G"  # a leak ends in a restart, not in the kernel's OOM killer choosing
    exec_path: Path | None = None  # None: this edge-mmer

    def validate(self) -> UnitOptions:
        if self.watchdog_s < 2:
            raise ValueError(f"watchdog must be >= 2 s (the loop pings every half period), got {self.watchdog_s}")
        if not self.user or any(c.isspace() for c in self.user):
            raise ValueError(f"user must be a user name, got {self.user!r}")
        return self


def executable() -> Path:
    """This installation's ``edge-mmer`` script (beside the interpreter in a venv), absolute."""
    beside = Path(sys.executable).parent / "edge-mmer"
    if beside.is_file():
        return beside.absolute()
    found = shutil.which("edge-mmer")
    return Path(found).absolute() if found else beside.absolute()


def _writable_paths(settings: RuntimeSettings) -> list[str]:
    """The folders the loop writes to besides its state folder: a configured spool's, a JSONL sink's."""
    paths = []
    if settings.mqtt.spool_path is not None:
        paths.append(str(Path(settings.mqtt.spool_path).expanduser().absolute().parent))
    sink = settings.run.sink or ""
    if sink.startswith("jsonl:"):
        paths.append(str(Path(sink.removeprefix("jsonl:")).expanduser().absolute().parent))
    return paths


def render_unit(settings: RuntimeSettings, options: UnitOptions) -> str:
    """The unit file's text (``edge-mmer.service``)."""
    options.validate()
    exe = (options.exec_path or executable()).absolute()
    argv = [str(exe), "--log-format", "json", "run"]
    if options.config is not None:
        argv += ["--config", str(options.config.absolute())]
    # the venv itself may live in a home folder: then homes stay readable, never writable
    home = "read-only" if str(exe).startswith(("/home/", "/root/")) else "yes"
    write = " ".join(["/var/lib/" + STATE_DIR, *_writable_paths(settings)])
    lines = [
        "# edge-mmer: the emotion-recognition loop as a service (edge-mmer service unit)",
        "[Unit]",
        "Description=edge-mmer emotion recognition (camera + microphone -> emotion events)",
        "Wants=network-online.target",
        "After=network-online.target sound.target",
        f"StartLimitIntervalSec={options.start_interval_s}",
        f"StartLimitBurst={options.start_burst}",
        "",
        "[Service]",
        "Type=notify",
        "NotifyAccess=main",
        f"ExecStart={shlex.join(argv)}",
        f"User={options.user}",
        f"Group={options.user}",
        f"SupplementaryGroups={' '.join(DEVICE_GROUPS)}",
        f"WatchdogSec={options.watchdog_s}",
        "Restart=always",
        f"RestartSec={options.restart_s}",
        f"TimeoutStopSec={options.stop_timeout_s}",
        f"StateDirectory={STATE_DIR}",
        "Environment=XDG_STATE_HOME=/var/lib",  # the default spool: /var/lib/edge-mmer/spool-<device>.sqlite
        "Environment=PYTHONUNBUFFERED=1",
        f"MemoryMax={options.memory_max}",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        f"ProtectHome={home}",
        "PrivateTmp=yes",
        f"ReadWritePaths={write}",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "RestrictSUIDSGID=yes",
        "RestrictNamespaces=yes",
        "LockPersonality=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        "SystemCallArchitectures=native",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)
