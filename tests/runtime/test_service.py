"""``edge-mmer service unit`` / ``install``: systemd's own ``systemd-analyze verify`` accepts the unit;
it is a notify service with a watchdog, restarts under a rate limit and the hardening; ``install``
writes it where it is told. And ``--log-format json``: one JSON object a line, with the fields."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

import pytest

from edge_mmer.cli import main, with_default_command
from edge_mmer.cli.logs import JsonFormatter

HARDENING = ("Type=notify", "NotifyAccess=main", "WatchdogSec=", "Restart=always", "StartLimitBurst=",
             "StartLimitIntervalSec=", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=", "PrivateTmp=yes",
             "ReadWritePaths=/var/lib/edge-mmer", "SupplementaryGroups=video audio", "StateDirectory=edge-mmer")


def unit_text(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["service", "unit", *args]) == 0
    return capsys.readouterr().out


def test_the_unit_is_a_hardened_notify_service(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "unit.toml"
    config.write_text(f'[run]\nsink = "jsonl:{tmp_path / "out" / "events.jsonl"}"\n', encoding="utf-8")
    text = unit_text(capsys, "--config", str(config), "--user", "robot", "--watchdog", "20")
    for key in HARDENING:
        assert key in text, key
    assert "User=robot" in text and "WatchdogSec=20" in text
    assert f"--log-format json run --config {config}" in text
    assert f"ReadWritePaths=/var/lib/edge-mmer {tmp_path / 'out'}" in text  # the JSONL sink's folder


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd; scripts/setup.sh does)")
    unit = tmp_path / "edge-mmer.service"
    unit.write_text(unit_text(capsys), encoding="utf-8")
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False)
    # it exits 0 on keys it ignores; those are printed, so a clean run prints nothing about the unit
    complaints = [line for line in done.stderr.splitlines() if unit.name in line]
    assert done.returncode == 0 and complaints == [], done.stderr


def test_install_writes_the_unit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["service", "install", "--unit-dir", str(tmp_path), "--no-create-user"]) == 0
    unit = tmp_path / "edge-mmer.service"
    assert "Type=notify" in unit.read_text(encoding="utf-8") and oct(unit.stat().st_mode & 0o777) == "0o644"
    assert "systemctl daemon-reload" in capsys.readouterr().out


def test_a_too_short_watchdog_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["service", "unit", "--watchdog", "1"]) == 2
    assert "watchdog must be >= 2" in capsys.readouterr().err


def test_json_logs_are_one_object_a_line_with_the_fields() -> None:
    record = logging.LogRecord("edge_mmer.runtime.loop", logging.INFO, __file__, 1, "stats: %d events\nmore", (7,),
                               None)
    record.fields = {"events": 7, "queue_drops": 0, "source_restarts": 1, "level": "shadowed"}
    line = JsonFormatter().format(record)
    assert "\n" not in line
    body = json.loads(line)
    assert body["message"] == "stats: 7 events\nmore" and body["events"] == 7 and body["source_restarts"] == 1
    assert body["level"] == "INFO" and body["field_level"] == "shadowed" and body["ts"].endswith("Z")


def test_log_format_before_the_subcommand_keeps_the_default_command() -> None:
    assert with_default_command(["--log-format", "json", "--camera", "x"]) == ["--log-format", "json", "run",
                                                                                 "--camera", "x"]
    assert with_default_command(["--log-format=json", "doctor"]) == ["--log-format=json", "doctor"]


def test_the_command_line_logs_json_lines_with_the_stats_fields() -> None:
    from support.cli import run_cli

    done = run_cli("--log-format", "json", "run", "--stats-interval", "0.5", "--max-events", "2", timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # every line is one JSON object
    stats = [x for x in lines if x["message"].startswith("stats:")]
    assert stats and {"events", "queue_drops", "source_restarts", "counters"} <= set(stats[-1])
