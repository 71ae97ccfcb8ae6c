"""The committed demo bundle and clip: present, verified, labelled synthetic, and as good as docs/status.md says."""

from __future__ import annotations

import json
import re

import pytest
from support.paths import DEMO_BUNDLE, DEMO_CLIP, ROOT

from edge_mmer.bundle import read_bundle
from edge_mmer.decision import DecisionHead

BUNDLE = DEMO_BUNDLE
CLIP = DEMO_CLIP
STATUS = ROOT / "docs" / "status.md"  # the results table of the demo bundle


def test_demo_bundle_verifies_and_is_labelled_synthetic() -> None:
    bundle = read_bundle(BUNDLE)
    assert bundle.synthetic and bundle.manifest["provenance"]["dataset"]["synthetic"] is True
    assert sum(p.stat().st_size for p in BUNDLE.rglob("*") if p.is_file()) < 10 * 1024 * 1024
    head = DecisionHead.from_bundle(bundle)
    assert head.method == bundle.metrics["fuzzy_integral"]


def test_demo_bundle_meets_the_accuracy_bar() -> None:
    acc = read_bundle(BUNDLE).metrics["test_accuracy"]
    assert acc["final"] >= 0.90
    assert acc["final"] > acc["speech"] and acc["final"] > acc["face"]


def test_status_page_quotes_the_demo_bundle_figures() -> None:
    metrics = read_bundle(BUNDLE).metrics
    status = STATUS.read_text(encoding="utf-8")
    row = re.search(r"^\| all emotions \|(.+)\|\s*$", status, re.MULTILINE)
    assert row, f"{STATUS.relative_to(ROOT)} has no 'all emotions' row in its accuracy table"
    quoted = [float(v) for v in re.findall(r"\d+\.\d", row.group(1))][:4]
    measured = [round(100 * metrics["test_accuracy"][c], 1) for c in ("speech", "face", "fused", "final")]
    assert quoted == measured
    no_chi = re.search(r"^\| without chi-square \|(.+)\|\s*$", status, re.MULTILINE)
    assert no_chi, f"{STATUS.relative_to(ROOT)} has no chi-square ablation row"
    quoted = [float(v) for v in re.findall(r"\d+\.\d", no_chi.group(1))][:4]
    ablation = metrics["without_chi_square"]["test_accuracy"]
    assert quoted == [round(100 * ablation[c], 1) for c in ("speech", "face", "fused", "final")]


def test_demo_clip_has_video_audio_and_ground_truth() -> None:
    av = pytest.importorskip("av", reason="PyAV (the 'train' or 'capture' extra) decodes the demo clip")
    with av.open(str(CLIP)) as container:
        assert container.streams.video and container.streams.audio
        frames = sum(1 for _ in container.decode(video=0))
    with av.open(str(CLIP)) as container:
        audio = container.streams.audio[0]
        samples = sum(f.samples for f in container.decode(audio=0))
        rate = audio.rate
    duration = samples / rate
    assert 20.0 <= duration <= 32.0 and frames >= 15 * 20
    truth = json.loads(CLIP.with_suffix(".labels.json").read_text())
    assert truth["synthetic"] is True
    segments = truth["timeline"]
    assert len(segments) >= 6 and len({s["label"] for s in segments}) >= 4
    assert all(0 <= s["start_s"] < s["end_s"] <= duration + 0.5 for s in segments)
