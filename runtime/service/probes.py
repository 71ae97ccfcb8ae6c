"""The doctor's checks of what lies outside the bundle: cameras, microphones, the broker, the spool.

Each function returns :class:`~.report.Check` rows and never raises for what it finds (a missing
device, a refused connection): that is the finding. A camera or microphone the settings do not ask
for is reported ``absent`` (found devices listed), not failed: a unit that runs on a file, or on
audio only, is fine without one. A configured one is opened and read for about a second.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from edge_mmer.errors import EdgeMmerError
from edge_mmer.runtime.settings import RuntimeSettings

from .report import ABSENT, FAIL, OK, WARN, Check

log = logging.getLogger(__name__)

__all__ = ["check_broker", "check_sources", "check_spool", "spool_path"]

OPEN_FOR_S = 1.0
MIN_FREE_MIB = 100  # below this the spool (which holds events while the broker is away) is at risk


def _cameras_found() -> list[str]:
    return sorted(str(p) for p in Path("/dev").glob("video*"))


def _mics_found() -> tuple[list[str], str | None]:
    try:
        from edge_mmer.runtime.sources.microphone import list_input_devices, quiet_audio_libraries

        quiet_audio_libraries()
        return [f"{i}: {name}" for i, name in list_input_devices()], None
    except Exception as exc:  # PyAudio missing or PortAudio failing: a finding, not a crash
        return [], f"cannot list microphones: {exc}"


def _read_for(camera: str | None, mic: str | None, seconds: float) -> tuple[int, str | None]:
    """Open the configured source and count its chunks for ``seconds``; (chunks, error or None)."""
    from edge_mmer.runtime.sources.factory import build_sources

    result: dict[str, object] = {"chunks": 0}

    def read() -> None:
        try:
            for src in build_sources(camera, mic, realtime=True):
                src.open()
                try:
                    until = time.monotonic() + seconds
                    for _chunk in src.chunks():
                        result["chunks"] = int(str(result["chunks"])) + 1
                        if time.monotonic() >= until:
                            break
                finally:
                    src.close()
        except (EdgeMmerError, OSError, ValueError) as exc:
            result["error"] = str(exc)

    thread = threading.Thread(target=read, name="doctor-source", daemon=True)
    thread.start()
    thread.join(seconds + 5.0)
    if thread.is_alive():
        return int(str(result["chunks"])), f"no answer within {seconds + 5.0:.0f} s (a driver that hangs?)"
    error = result.get("error")
    return int(str(result["chunks"])), None if error is None else str(error)


def _source_check(role: str, configured: str | None, found: list[str], note: str | None) -> Check:
    listing = ", ".join(found) if found else "none found"
    if not configured or configured == "none":
        detail = f"not asked for by the settings; found: {listing}"
        return Check(role, ABSENT, detail + (f" ({note})" if note else ""))
    camera, mic = (configured, "none") if role == "camera" else ("none", configured)
    chunks, error = _read_for(camera, mic, OPEN_FOR_S)
    if error is not None:
        return Check(role, FAIL, f"{configured!r} cannot be read: {error}; found: {listing}",
                     fix=f"check the device is plugged in and this user is in the '{_group(role)}' group, or set "
                         f"[run] {'camera' if role == 'camera' else 'mic'} to one of the devices found")
    if chunks == 0:
        return Check(role, FAIL, f"{configured!r} opened but gave nothing in {OPEN_FOR_S:g} s; found: {listing}",
                     fix=f"check that no other process holds the {role}")
    return Check(role, OK, f"{configured!r} read for {OPEN_FOR_S:g} s ({chunks} chunks); found: {listing}")


def _group(role: str) -> str:
    return "video" if role == "camera" else "audio"


def check_sources(settings: RuntimeSettings) -> list[Check]:
    """The cameras and microphones found, and the configured ones opened for about a second."""
    mics, note = _mics_found()
    return [_source_check("camera", settings.run.camera, _cameras_found(), None),
            _source_check("microphone", settings.run.mic, mics, note)]


def _is_mqtt(settings: RuntimeSettings) -> bool:
    return (settings.run.sink or "").startswith(("mqtt://", "mqtts://"))


def spool_path(settings: RuntimeSettings) -> Path | None:
    """Where the MQTT sink spools (None: the sink is not MQTT, or its options are wrong)."""
    if not _is_mqtt(settings):
        return None
    import dataclasses

    from edge_mmer.runtime.sinks.mqtt.options import prepare_connection

    options = dataclasses.replace(settings.mqtt, url=settings.run.sink or "", device_id=settings.device_id)
    try:
        return prepare_connection(options).spool_path
    except EdgeMmerError:
        return None


def check_broker(settings: RuntimeSettings, timeout_s: float = 5.0) -> Check:
    """Connect to the configured broker with its credentials and TLS, and wait for its answer."""
    if not _is_mqtt(settings):
        return Check("mqtt broker", ABSENT, f"the sink is {settings.run.sink or 'stdout'}: no broker to reach")
    import dataclasses

    from edge_mmer.runtime.sinks.mqtt.options import prepare_connection, redact_url

    options = dataclasses.replace(settings.mqtt, url=settings.run.sink or "", device_id=settings.device_id)
    url = redact_url(options.url)
    try:
        conn = prepare_connection(options)
    except EdgeMmerError as exc:
        return Check("mqtt broker", FAIL, str(exc), fix="correct the [mqtt] section of the settings file")
    answer = _connect(conn, options.keepalive, timeout_s)
    if answer is None:
        who = f" as {conn.username!r}" if conn.username else ""
        tls = " over TLS" if conn.broker.tls else ""
        return Check("mqtt broker", OK, f"{url} accepted the connection{who}{tls}")
    return Check("mqtt broker", FAIL, f"{url}: {answer}",
                 fix="start the broker or correct [run] sink; check the firewall, the username, the password file "
                     "and the TLS files ([mqtt])")


def _connect(conn: object, keepalive: int, timeout_s: float) -> str | None:
    """One MQTT connection attempt; None when the broker said yes, else what went wrong."""
    import ssl

    from edge_mmer.runtime.sinks.mqtt.options import Connection
    from edge_mmer.runtime.sinks.mqtt.sink import _import_paho

    assert isinstance(conn, Connection)
    mqtt = _import_paho()
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                         client_id=f"{conn.client_id}-doctor", clean_session=True, protocol=mqtt.MQTTv311)
    if conn.username:
        client.username_pw_set(conn.username, None if conn.password is None else conn.password.value)
    answered = threading.Event()
    outcome: list[str | None] = []

    def on_connect(client: object, userdata: object, flags: object, reason_code: object, props: object) -> None:
        failed = bool(getattr(reason_code, "is_failure", False))
        outcome.append(f"the broker refused the connection: {reason_code}" if failed else None)
        answered.set()

    client.on_connect = on_connect
    try:
        if conn.broker.tls:
            client.tls_set(ca_certs=conn.ca_file, certfile=conn.cert_file, keyfile=conn.key_file,
                           cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.connect(conn.broker.host, conn.broker.port, keepalive=keepalive)
        client.loop_start()
        if not answered.wait(timeout_s):
            return f"no answer to CONNECT within {timeout_s:g} s"
        return outcome[0] if outcome else None
    except (OSError, ssl.SSLError, ValueError) as exc:
        return f"cannot connect to {conn.broker.host}:{conn.broker.port}: {exc}"
    finally:
        with contextlib.suppress(Exception):
            client.disconnect()
            client.loop_stop()


def check_spool(settings: RuntimeSettings) -> Check:
    """The spool's directory exists or can be made, is writable, and has room."""
    path = spool_path(settings)
    if path is None:
        return Check("spool", ABSENT, "no MQTT sink (or its options are wrong, see mqtt broker): nothing is spooled")
    folder = path.parent
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        return Check("spool", FAIL, f"{folder} is not writable for this user (nearest existing: {existing})",
                     fix="set [mqtt] spool_path to a writable place (under a service: its StateDirectory) or "
                         "give this user the folder")
    if existing == folder:
        try:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-"):
                pass
        except OSError as exc:
            return Check("spool", FAIL, f"cannot write in {folder}: {exc}", fix="check the mount (read-only?)")
    free_mib = shutil.disk_usage(existing).free / 2**20
    made = "" if existing == folder else f" (made at first run under {existing})"
    if free_mib < MIN_FREE_MIB:
        return Check("spool", WARN, f"{path}{made}: only {free_mib:.0f} MiB free",
                     fix=f"free some space: an outage of the broker fills the spool (keep >= {MIN_FREE_MIB} MiB)")
    return Check("spool", OK, f"{path}{made}: writable, {free_mib / 1024:.1f} GiB free")
