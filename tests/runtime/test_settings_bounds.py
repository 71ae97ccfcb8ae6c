"""Every setting bounded to what its consumer accepts (B4, B9, B6, B13): the values the adversarial run
found accepted — and that then killed paho's network thread, livelocked the pipeline, hung start-up or
flooded the log — stop at load with an error naming the key, the range and the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_mmer.config import ConfigError
from edge_mmer.runtime.settings import RuntimeSettings, load_settings, with_run_overrides
from edge_mmer.runtime.sinks.base import SinkError
from edge_mmer.runtime.sinks.mqtt.options import check_device_id

LONG = "x" * 70_000


@pytest.mark.parametrize(("text", "key", "expected"), [
    ("[mqtt]\nkeepalive = 100000\n", "mqtt.keepalive", "5..65535"),
    ("[mqtt]\nkeepalive = 9223372036854775807\n", "mqtt.keepalive", "5..65535"),
    (f'[mqtt]\nclient_id = "{LONG}"\n', "mqtt.client_id", "65535 bytes"),
    (f'[mqtt]\nusername = "{LONG}"\n', "mqtt.username", "65535 bytes"),
    ('[mqtt]\nusername = "robot\\nINFO forged"\n', "mqtt.username", "no control characters"),
    ('[mqtt]\nha_prefix = "ha/#"\n', "mqtt.ha_prefix", "'+', '#'"),
    ('[mqtt]\nha_prefix = "ha/+/x"\n', "mqtt.ha_prefix", "'+', '#'"),
    ("[mqtt]\nclose_timeout_s = 1e300\n", "mqtt.close_timeout_s", "0..600"),
    ('[mqtt]\npassword_env = "A B"\n', "mqtt.password_env", "environment variable"),
    ("[faces]\nface_only_interval_s = 1e-300\n", "faces.face_only_interval_s", "0 (off) or 0.2..3600"),
    ("[run]\nthreads = 100000\n", "run.threads", "1..256"),
    ("[watchdog]\nstale_timeout_s = 1e-300\n", "watchdog.stale_timeout_s", "0.5..3600"),
    ("[decision]\ninterval_s = 1e-300\n", "decision.interval_s", "0 (off) or 0.1..86400"),
    ("[run]\nstats_interval_s = 1e-300\n", "run.stats_interval_s", "0 (off) or 0.1..86400"),
    ("[queues]\naudio = 1000000000\n", "queues.audio", "1..100000"),
    ('[run]\ndevice_id = "kiosk\\n2026-12-01 INFO connected (forged)"\n', "run.device_id", "A-Z a-z 0-9"),
    ('[run]\ndevice_id = "a/b"\n', "run.device_id", "one topic level"),
    ('[run]\ndevice_id = "kiosk 1"\n', "run.device_id", "A-Z a-z 0-9"),
    (f'[run]\ndevice_id = "{"d" * 70_000}"\n', "run.device_id", "1..64"),
])
def test_out_of_range_settings_name_the_key_the_range_and_the_value(tmp_path: Path, text: str, key: str,
                                                                    expected: str) -> None:
    cfg = tmp_path / "unit.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    message = str(info.value)
    assert f"'{key}'" in message and expected in message and "got" in message and str(cfg) in message, message
    assert len(message) < 600, "a huge value is cut in the message"


def test_the_boundaries_themselves_are_accepted(tmp_path: Path) -> None:
    cfg = tmp_path / "unit.toml"
    cfg.write_text('[mqtt]\nkeepalive = 65535\nha_prefix = "home/assistant"\nclose_timeout_s = 0\n'
                   '[faces]\nface_only_interval_s = 0\n[run]\nthreads = 0\ndevice_id = "kiosk-1.hall_2"\n')
    s = load_settings(cfg)
    assert s.mqtt.keepalive == 65535 and s.run.device_id == "kiosk-1.hall_2"


def test_a_device_id_from_argv_that_is_not_utf8_is_refused_cleanly() -> None:
    """B13: ``--device-id $'kiosk\\xff'`` arrives as a surrogate escape; before the fix the sink raised a
    UnicodeEncodeError traceback."""
    with pytest.raises(ConfigError, match=r"run\.device_id"):
        with_run_overrides(RuntimeSettings(), device_id="kiosk\udcff")
    with pytest.raises(SinkError, match="device id"):
        check_device_id("kiosk\udcff")
    with pytest.raises(SinkError, match="device id"):
        check_device_id("kiosk\n2026 INFO forged")
