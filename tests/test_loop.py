"""The runtime loop end to end, with real parts: the CLI on the demo clip, a real mosquitto broker
(restarted mid-run), PyAudio on a virtual ALSA microphone, a camera that fails and is restarted."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from edge_mmer.config import ConfigError
from edge_mmer.runtime.chunks import Chunk
from edge_mmer.runtime.events import EmotionEvent, load_schema
from edge_mmer.runtime.loop import RunError, RuntimeLoop
from edge_mmer.runtime.settings import RuntimeSettings, load_settings, with_run_overrides
from edge_mmer.runtime.sinks.base import Sink
from edge_mmer.runtime.sources.base import SourceError
from edge_mmer.runtime.sources.files import MediaFileSource
from edge_mmer.runtime.sources.wav import WavSource
from tests.mosquitto import Mosquitto, Recorder, mosquitto_binary
from tests.runtime_helpers import DEMO_CLIP, demo_av, demo_timeline
from tests.virtual_mic import DEVICE_NAME, PacedVirtualMic, demo_pcm, unavailable_reason

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "edge-mmer-test"
needs_mosquitto = pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto is not installed")


def collapse(labels: list[str]) -> list[str]:
    return [x for i, x in enumerate(labels) if i == 0 or labels[i - 1] != x]


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_mmer.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})


class ListSink(Sink):
    name = "list"

    def __init__(self) -> None:
        self.events: list[EmotionEvent] = []
        self.stats: list[dict] = []
        self.closed = False

    def emit(self, event: EmotionEvent) -> None:
        self.events.append(event)

    def publish_stats(self, stats: dict) -> None:
        self.stats.append(stats)

    def close(self) -> None:
        self.closed = True


def test_default_command_runs_the_demo_clip_and_prints_valid_events() -> None:
    out = cli()  # `edge-mmer` with no arguments: the embedded default
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    schema = load_schema()
    for e in events:
        jsonschema.validate(e, schema)
    assert [e["label"] for e in events] == collapse([x["label"] for x in demo_timeline()])
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert all(e["synthetic_model"] for e in events)
    assert "SYNTHETIC" in out.stderr  # said where it shows
    assert "cold start to first event" in out.stderr


def test_jsonl_sink_and_every_policy_from_a_toml_config(tmp_path: Path) -> None:
    cfg = tmp_path / "unit.toml"
    cfg.write_text(f'[run]\nsink = "jsonl:{tmp_path / "ev.jsonl"}"\ndevice_id = "kiosk-7"\n\n'
                   '[decision]\nemit = "every"\n')
    out = cli("run", "--config", str(cfg))
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    events = [json.loads(x) for x in (tmp_path / "ev.jsonl").read_text().splitlines()]
    assert [e["label"] for e in events] == [x["label"] for x in demo_timeline()]
    assert {e["device_id"] for e in events} == {"kiosk-7"}


def test_bad_settings_name_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[decision]\nalpah = 0.5\n")
    out = cli("run", "--config", str(cfg))
    assert out.returncode == 2 and "decision.alpah" in out.stderr
    cfg.write_text('[vad]\naggressiveness = "high"\n')
    with pytest.raises(ConfigError, match=r"vad\.aggressiveness"):
        load_settings(cfg)
    out = cli("run", "--camera", "97", "--mic", "none")
    assert out.returncode == 1 and "97" in out.stderr
    out = cli("run", "--bundle", str(tmp_path / "nope"))
    assert out.returncode == 1 and "nope" in out.stderr
    out = cli("run", "--sink", "mqtt://:x/")
    assert out.returncode == 1 and "mqtt://" in out.stderr


def _bundle_with_max_utterance(tmp_path: Path, seconds: float) -> Path:
    """A copy of the demo bundle whose audio front end says ``max_utterance_s = seconds`` (resealed)."""
    from edge_mmer.bundle import reseal_manifest

    out = tmp_path / "bundle"
    shutil.copytree(ROOT / "demo" / "bundle", out)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    manifest["config"]["audio"]["max_utterance_s"] = seconds
    (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    reseal_manifest(out)
    return out


def _longest_utterance(settings: RuntimeSettings) -> float:
    sink = ListSink()
    RuntimeLoop(settings, sink=sink, sources=[MediaFileSource(DEMO_CLIP, video=False)]).run()
    spans = [e.utterance[1] - e.utterance[0] for e in sink.events if e.utterance is not None]
    assert spans
    return max(spans)


def test_an_explicit_vad_max_utterance_wins_over_the_bundle(tmp_path: Path) -> None:
    """The bundle's audio front end says 10 s, the TOML says 8.0 (which is also VadSettings' old
    default): the VAD cuts at 8.0. Without the key it cuts at the bundle's 10 s. A long hangover
    makes the demo clip's speech one run that only the length limit cuts."""
    bundle = _bundle_with_max_utterance(tmp_path, 10.0)
    cfg = tmp_path / "run.toml"
    body = '[decision]\nemit = "every"\n[vad]\nhangover_ms = 2000\n'
    cfg.write_text(body + "max_utterance_s = 8.0\n", encoding="utf-8")
    explicit = with_run_overrides(load_settings(cfg), bundle=str(bundle), stats_interval_s=0.0)
    assert _longest_utterance(explicit) == pytest.approx(8.0, abs=0.021)
    cfg.write_text(body, encoding="utf-8")
    from_bundle = with_run_overrides(load_settings(cfg), bundle=str(bundle), stats_interval_s=0.0)
    assert _longest_utterance(from_bundle) == pytest.approx(10.0, abs=0.021)


@needs_mosquitto
def test_mqtt_subscriber_receives_every_event_and_availability(tmp_path: Path) -> None:
    with Mosquitto(tmp_path / "broker") as broker:
        broker.start()
        with Recorder(broker.port, [f"{PREFIX}/#"]) as rec:
            rec.start()
            settings = _settings(tmp_path, broker.port)
            summary = RuntimeLoop(settings).run()
            rec.wait_count(f"{PREFIX}/unit1/emotion", summary.events, timeout=10)
            rec.sync()
            events = [json.loads(p) for p in rec.payloads(f"{PREFIX}/unit1/emotion")]
            avail = [p.decode() for p in rec.payloads(f"{PREFIX}/unit1/availability")]
    assert [e["seq"] for e in events] == list(range(1, summary.events + 1))
    assert [e["label"] for e in events] == collapse([x["label"] for x in demo_timeline()])
    assert avail[0] == "online" and avail[-1] == "offline"


@needs_mosquitto
def test_broker_stopped_and_restarted_mid_run_loses_nothing(tmp_path: Path) -> None:
    """Real-time playback; the broker goes away after the 2nd event and comes back 3 s later."""
    with Mosquitto(tmp_path / "broker", persistence=True) as broker:
        broker.start()
        rec = Recorder(broker.port, [f"{PREFIX}/unit1/emotion"], client_id="loop-test", clean=False).start()
        settings = dataclasses.replace(_settings(tmp_path, broker.port), decision=dataclasses.replace(
            RuntimeSettings().decision, emit="every"))
        settings = with_run_overrides(settings, realtime=True)
        loop = RuntimeLoop(settings, max_events=6)
        result: dict = {}
        th = threading.Thread(target=lambda: result.setdefault("summary", loop.run()))
        th.start()
        assert rec.wait_count(f"{PREFIX}/unit1/emotion", 2, timeout=30)
        broker.stop()
        time.sleep(3.0)
        broker.start()
        th.join(timeout=60)
        assert not th.is_alive()
        rec.wait_subscribed(0)
        assert rec.wait_count(f"{PREFIX}/unit1/emotion", 6, timeout=30)
        rec.sync()
        seqs = [json.loads(p)["seq"] for p in rec.payloads(f"{PREFIX}/unit1/emotion")]
        rec.stop()
    assert result["summary"].events == 6
    assert seqs == [1, 2, 3, 4, 5, 6]  # every event, in order, none twice


def _settings(tmp_path: Path, port: int) -> RuntimeSettings:
    s = with_run_overrides(RuntimeSettings(), sink=f"mqtt://127.0.0.1:{port}/{PREFIX}", device_id="unit1",
                           stats_interval_s=0.0)
    return dataclasses.replace(s, mqtt=dataclasses.replace(s.mqtt, spool_path=str(tmp_path / "spool.sqlite")))


@pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))
def test_loop_emits_events_from_a_pyaudio_microphone(tmp_path: Path) -> None:
    """PyAudio capture from a virtual ALSA microphone fed with the demo clip's audio at real time."""
    with PacedVirtualMic(tmp_path, demo_pcm()) as mic:
        out = cli("run", "--camera", "none", "--mic", DEVICE_NAME, "--max-events", "3", env=mic.env, timeout=120)
    assert out.returncode == 0, out.stderr
    events = [json.loads(x) for x in out.stdout.splitlines()]
    assert len(events) == 3
    tl = demo_timeline()
    for e in events:
        assert e["trigger"] == "utterance" and e["channels"]["face"] is None and e["channels"]["speech"] is not None
        length = e["utterance"]["end_s"] - e["utterance"]["start_s"]
        spans = [x["end_s"] - x["start_s"] for x in tl]
        assert min(spans) - 0.2 < length < max(spans) + 1
    assert "microphone" in out.stderr or DEVICE_NAME in out.stderr


class FlakyCamera(MediaFileSource):
    """The demo clip's video, paced like a camera, that fails once after 20 frames (a loose cable)."""

    live = True

    def __init__(self) -> None:
        super().__init__(DEMO_CLIP, realtime=True, audio=False)
        self.name = "flaky camera"
        self.opens = 0

    def open(self) -> None:
        self.opens += 1
        super().open()

    def chunks(self) -> Iterator[Chunk]:
        for i, chunk in enumerate(super().chunks()):
            if self.opens == 1 and i == 20:
                raise SourceError("flaky camera: read failed (device unplugged?)")
            yield chunk


def test_camera_failure_is_restarted_while_speech_events_continue(tmp_path: Path) -> None:
    audio, _ = demo_av()
    wav = tmp_path / "speech.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(audio[: 16000 * 10].tobytes())
    camera = FlakyCamera()
    sink = ListSink()
    base = RuntimeSettings()
    settings = dataclasses.replace(with_run_overrides(base, realtime=True, stats_interval_s=0.0),
                                   watchdog=dataclasses.replace(base.watchdog, backoff_initial_s=0.2),
                                   decision=dataclasses.replace(base.decision, emit="every"))
    # a live camera never ends by itself: stop after the three sentences of the 10 s of speech
    summary = RuntimeLoop(settings, sink=sink, max_events=3, sources=[camera, WavSource(wav, realtime=True)]).run()
    assert camera.opens >= 2
    assert summary.stats["sources"]["flaky camera"]["restarts"] >= 1
    assert len(sink.events) >= 3  # the speech kept coming
    assert all(e.channels["speech"] is not None for e in sink.events)
    assert sink.closed


def test_sigterm_finishes_the_utterance_and_exits_cleanly(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "edge_mmer.cli", "run", "--realtime", "--sink",
                             f"jsonl:{tmp_path / 'ev.jsonl'}"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        # the 2nd sentence runs from 3.8 s to 6.3 s of the clip: stop in its middle
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            path = tmp_path / "ev.jsonl"
            if path.exists() and path.read_text().count("\n") >= 1:
                break
            time.sleep(0.05)
        time.sleep(1.5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stop request" in err
    events = [json.loads(x) for x in (tmp_path / "ev.jsonl").read_text().splitlines()]
    assert len(events) == 2  # the utterance in progress was finished and emitted
    assert events[1]["utterance"]["end_s"] < 6.3


def test_missing_demo_bundle_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_MMER_DEMO_DIR", str(tmp_path))
    with pytest.raises(RunError, match="demo bundle"):
        RuntimeLoop(RuntimeSettings()).run()
