"""Where things are: the repository, the demo bundle and clip, the recorded fixtures."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
DEMO_DIR = ROOT / "demo"
DEMO_BUNDLE = DEMO_DIR / "bundle"
DEMO_CLIP = DEMO_DIR / "demo_clip.mp4"
DEMO_LABELS = DEMO_DIR / "demo_clip.labels.json"
JETSON_FIXTURES = TESTS / "fixtures" / "jetson"
"""Recorded output of the Jetson tools (tegrastats, nvpmodel, jetson_clocks, /etc/nv_tegra_release)."""

PACKAGE_DIRS = {"edge_mmer.runtime": "runtime", "edge_mmer.convert": "convert", "edge_mmer.calibration": "calibration",
                "edge_mmer": "edge_mmer", "benchmarks": "benchmarks"}
"""Where each import prefix lives on disk, relative to :data:`ROOT` (pyproject.toml's package-dir, plus
the benchmarks)."""
