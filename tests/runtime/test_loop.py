"""The runtime loop in process, with real parts: the bundle's settings against the file's, a real
mosquitto broker (restarted mid-run), a camera that fails and is restarted. (The CLI in a subprocess:
system/test_end_to_end.py.)"""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.broker import Mosquitto, Recorder
from support.demo import DEMO_BUNDLE, DEMO_CLIP, demo_av, demo_timeline
from support.events import ListSink

from edge_mmer.errors import RunError
from edge_mmer.runtime.chunks import Chunk
from edge_mmer.runtime.loop import RunSummary, RuntimeLoop
from edge_mmer.runtime.settings import RuntimeSettings, load_settings, with_run_overrides
from edge_mmer.runtime.sinks.base import SinkError
from edge_mmer.runtime.sources.base import SourceError
from edge_mmer.runtime.sources.files import MediaFileSource
from edge_mmer.runtime.sources.wav import WavSource

PREFIX = "edge-mmer-test"


def collapse(labels: list[str]) -> list[str]:
    return [x for i, x in enumerate(labels) if i == 0 or labels[i - 1] != x]


def _bundle_with_max_utterance(tmp_path: Path, seconds: float) -> Path:
    """A copy of the demo bundle whose audio front end says ``max_utterance_s = seconds`` (resealed)."""
    from edge_mmer.bundle import reseal_manifest

    out = tmp_path / "bundle"
    shutil.copytree(DEMO_BUNDLE, out)
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


def test_mqtt_subscriber_receives_every_event_and_availability(tmp_path: Path, broker: Mosquitto) -> None:
    with Recorder(broker.port, [f"{PREFIX}/#"]) as rec:
        settings = _settings(tmp_path, broker.port)
        summary = RuntimeLoop(settings).run()
        rec.wait_count(f"{PREFIX}/unit1/emotion", summary.events, timeout=10)
        rec.sync()
        events = [json.loads(p) for p in rec.payloads(f"{PREFIX}/unit1/emotion")]
        avail = [p.decode() for p in rec.payloads(f"{PREFIX}/unit1/availability")]
    assert [e["seq"] for e in events] == list(range(1, summary.events + 1))
    assert [e["label"] for e in events] == collapse([x["label"] for x in demo_timeline()])
    assert avail[0] == "online" and avail[-1] == "offline"


def test_broker_stopped_and_restarted_mid_run_loses_nothing(tmp_path: Path, broker: Mosquitto) -> None:
    """Real-time playback; the broker goes away after the 2nd event and comes back 3 s later."""
    rec = Recorder(broker.port, [f"{PREFIX}/unit1/emotion"], client_id="loop-test", clean=False).start()
    settings = dataclasses.replace(_settings(tmp_path, broker.port), decision=dataclasses.replace(
        RuntimeSettings().decision, emit="every"))
    settings = with_run_overrides(settings, realtime=True)
    loop = RuntimeLoop(settings, max_events=6)
    result: dict[str, RunSummary] = {}
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
    return dataclasses.replace(s, mqtt=dataclasses.replace(s.mqtt, spool_path=tmp_path / "spool.sqlite"))


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


def test_missing_demo_bundle_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_MMER_DEMO_DIR", str(tmp_path))
    with pytest.raises(RunError, match="demo bundle"):
        RuntimeLoop(RuntimeSettings()).run()


class FailingSink(ListSink):
    """A sink whose threads died for good after its first event (``failure`` set, emit still quiet):
    the loop must notice between events, not run on as a zombie."""

    @property
    def failure(self) -> SinkError | None:
        return SinkError("MQTT sink stopped: the publisher thread failed 6 times within a minute") if self.events \
            else None


def test_the_run_stops_with_an_error_when_the_sink_has_failed() -> None:
    sink = FailingSink()
    settings = with_run_overrides(RuntimeSettings(), stats_interval_s=0.0)
    with pytest.raises(RunError, match="publisher thread failed"):
        RuntimeLoop(settings, sink=sink, sources=[MediaFileSource(DEMO_CLIP, video=False)]).run()
    assert len(sink.events) == 1 and sink.closed
