"""``edge-mmer doctor`` on this machine: the demo bundle passes (no camera or microphone asked for:
absent, not failed); a tampered bundle, an unreachable broker and a broker that refuses the
credentials fail, naming the cause and what to do. Real parts: the demo bundle's files, a real
mosquitto, a closed port."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from support.broker import DEVICE_PASSWORD, Mosquitto, free_port
from support.demo import DEMO_BUNDLE

from edge_mmer.cli import main
from edge_mmer.runtime.service.report import FAIL, WARN, Check, render_table


def doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["doctor", "--json", "--broker-timeout", "3", *args])
    report = json.loads(capsys.readouterr().out)
    return code, report


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"]}


def mqtt_config(tmp_path: Path, port: int, extra: str = "") -> Path:
    path = tmp_path / "unit.toml"
    path.write_text(f'[run]\nsink = "mqtt://127.0.0.1:{port}/edge-mmer-test"\ndevice_id = "doctor-unit"\n'
                    f'[mqtt]\nspool_path = "{tmp_path / "state" / "spool.sqlite"}"\n{extra}', encoding="utf-8")
    return path


def test_the_demo_bundle_passes_with_devices_absent_not_failed(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = doctor(capsys)
    checks = by_name(report)
    assert code == 0 and report["ok"] is True and report["failed"] == []
    assert checks["camera"]["status"] == "absent" and checks["microphone"]["status"] == "absent"
    assert checks["bundle"]["status"] == "warn" and checks["bundle"]["data"]["synthetic"] is True
    assert checks["runners"]["status"] == "ok" and checks["onnxruntime"]["status"] == "ok"
    assert {"versions", "jetson", "tensorrt", "spool", "mqtt broker"} <= set(checks)


def test_a_tampered_bundle_fails_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(DEMO_BUNDLE, bundle)
    target = next(p for p in sorted((bundle / "onnx").glob("*.onnx")))
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    code, report = doctor(capsys, "--bundle", str(bundle))
    row = by_name(report)["bundle"]
    assert code == 1 and report["failed"] == ["bundle"]
    assert row["status"] == "fail" and target.name in row["detail"] and "bundle verify" in row["fix"]


def test_an_unreachable_broker_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = doctor(capsys, "--config", str(mqtt_config(tmp_path, free_port())))
    row = by_name(report)["mqtt broker"]
    assert code == 1 and report["failed"] == ["mqtt broker"]
    assert "refused" in row["detail"].lower() and "start the broker" in row["fix"]
    assert by_name(report)["spool"]["status"] == "ok"  # made at the first run under tmp_path


@pytest.mark.needs_mosquitto
def test_a_running_broker_passes(tmp_path: Path, broker: Mosquitto, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = doctor(capsys, "--config", str(mqtt_config(tmp_path, broker.port)))
    assert code == 0, report["failed"]
    assert by_name(report)["mqtt broker"]["status"] == "ok"


@pytest.mark.needs_mosquitto
def test_wrong_credentials_fail(tmp_path: Path, auth_broker: Mosquitto, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_MMER_MQTT_PASSWORD", DEVICE_PASSWORD + "-wrong")
    code, report = doctor(capsys, "--config", str(mqtt_config(tmp_path, auth_broker.port, 'username = "robot"\n')))
    row = by_name(report)["mqtt broker"]
    assert code == 1 and row["status"] == "fail" and "refused" in row["detail"]
    assert DEVICE_PASSWORD not in json.dumps(report)


def test_the_table_says_what_to_do_under_each_failure() -> None:
    text = render_table([Check("bundle", FAIL, "broken", fix="copy it again"), Check("jetson", WARN, "x", fix="pin"),
                         Check("camera", "absent", "not asked for")])
    assert "FAIL    bundle  broken\n                -> copy it again" in text
    assert text.endswith("1 check(s) failed: bundle")


def test_configured_sources_are_opened_and_a_missing_microphone_fails(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from support.demo import DEMO_CLIP

    config = tmp_path / "unit.toml"
    config.write_text(f'[run]\ncamera = "{DEMO_CLIP}"\nmic = "no-such-microphone-xyz"\n', encoding="utf-8")
    code, report = doctor(capsys, "--config", str(config))
    checks = by_name(report)
    assert code == 1 and report["failed"] == ["microphone"]
    assert checks["camera"]["status"] == "ok" and "chunks" in checks["camera"]["detail"]
    assert "no-such-microphone-xyz" in checks["microphone"]["detail"] and "[run] mic" in checks["microphone"]["fix"]
