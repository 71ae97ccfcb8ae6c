"""The runtime's side of the package never imports torch (a robot carries onnxruntime, not torch)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TORCH_FREE = [
    "edge_mmer",
    "edge_mmer.config",
    "edge_mmer.features.audio",
    "edge_mmer.features.face",
    "edge_mmer.selection",
    "edge_mmer.svm",
    "edge_mmer.fuzzy",
    "edge_mmer.bundle",
    "edge_mmer.decision",
    "edge_mmer.evaluate",
    "edge_mmer.datasets.synthetic",
    "edge_mmer.cli",
    "edge_mmer.cli.args",
    "edge_mmer.cli.run",
    "edge_mmer.cli.profile",
    "edge_mmer.cli.synth",
    "edge_mmer.cli.train",
    "edge_mmer.cli.evaluate",
    "edge_mmer.cli.bundle",
    "edge_mmer.cli.convert",
    "edge_mmer.cli.calibrate",
    "edge_mmer.runtime",
    "edge_mmer.bundle.shapes",
    "edge_mmer.bundle.plans",
    "edge_mmer.convert.tensorrt_build",
    "edge_mmer.convert.tensorrt_plans",
    "edge_mmer.convert.tensorrt_preflight",
    "edge_mmer.convert.compare",
    "edge_mmer.convert.drift",
    "edge_mmer.calibration",
    "edge_mmer.calibration.reader",
    "edge_mmer.calibration.from_dataset",
    "edge_mmer.calibration.tap",
    "edge_mmer.calibration.inputs",
    "edge_mmer.convert.quantize",
    "edge_mmer.runtime.pipeline",
    "edge_mmer.runtime.loop",
    "edge_mmer.runtime.runners.select",
    "edge_mmer.runtime.runners.load",
    "edge_mmer.runtime.api",
    "edge_mmer.runtime.runners.tensorrt_runner",
    "edge_mmer.runtime.sources.factory",
    "edge_mmer.runtime.watchdog",
    "edge_mmer.runtime.sinks.factory",
    "edge_mmer.runtime.sinks.mqtt",
    "edge_mmer.runtime.sinks.mqtt.sink",
    "edge_mmer.calibration.record",
    "edge_mmer.runtime.profiling.profiler",
    "edge_mmer.runtime.service.doctor",
    "edge_mmer.runtime.service.install",
]


#: Torch-free, but part of the conversion tools (they import onnx: the 'convert' extra, which the device
#: install leaves out): they run with the conversion tests.
NEEDS_CONVERT = {"edge_mmer.calibration.reader"}


@pytest.mark.parametrize("module", [pytest.param(m, marks=pytest.mark.needs_convert) if m in NEEDS_CONVERT else m
                                    for m in TORCH_FREE])
def test_module_imports_without_torch(module: str) -> None:
    code = (f"import sys, {module}; heavy = [m for m in ('torch', 'timm', 'torchvision') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", f"importing {module} pulled in {out.stdout.strip()}"


def test_loading_settings_imports_neither_the_pipeline_nor_opencv(tmp_path: Path) -> None:
    """The settings module is a leaf: reading a settings file (and the public package) stays cheap."""
    cfg = tmp_path / "run.toml"
    cfg.write_text('[vad]\nmax_utterance_s = 6.0\n[mqtt]\nqos = 0\n', encoding="utf-8")
    code = ("import sys, edge_mmer.runtime; from edge_mmer.runtime import load_settings; "
            "s = load_settings(sys.argv[1]); "
            "print(s.vad.max_utterance_s, [m for m in ('cv2', 'onnxruntime', 'torch', 'edge_mmer.runtime.pipeline', "
            "'edge_mmer.runtime.loop') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code, str(cfg)], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "6.0 []", out.stdout + out.stderr


def test_bundle_cli_runs_without_torch(tmp_path: Path) -> None:
    code = (
        "import sys; from edge_mmer.cli import main; rc = main(['bundle', 'verify', sys.argv[1]]); "
        "print('torch' in sys.modules, rc)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().startswith("False"), out.stdout + out.stderr


def test_the_runtime_loop_runs_without_torch() -> None:
    """The whole loop (demo bundle on the demo clip) in a fresh process: events out, torch never imported."""
    code = (
        "import sys, io, contextlib; from edge_mmer.cli import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf): rc = main(['-q', 'run', '--max-events', '2'])\n"
        "heavy = [m for m in ('torch', 'timm', 'torchvision') if m in sys.modules]\n"
        "print(rc, len(buf.getvalue().splitlines()), heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "0 2 []", out.stdout + out.stderr


def test_every_help_is_fast_and_loads_no_heavy_stack() -> None:
    """``edge-mmer [CMD] --help`` needs argparse only: no torch, ONNX, ONNX Runtime or OpenCV."""
    code = (
        "import sys, io, contextlib; from edge_mmer.cli import main\n"
        "for cmd in ([], ['run'], ['profile'], ['synth'], ['train'], ['evaluate'], ['bundle', 'verify'],\n"
        "            ['bundle', 'show'], ['convert'], ['calibrate', 'build'], ['calibrate', 'record']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "        main([*cmd, '--help'])\n"
        "print([m for m in ('torch', 'onnx', 'onnxruntime', 'cv2', 'numpy') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_the_loop_does_not_load_scipy() -> None:
    """LIBSVM imports scipy when it can (for sparse inputs the runtime never passes): about 20 MiB resident
    and most of a second at every start on a device that has it (a Jetson's system packages)."""
    code = "import sys, edge_mmer.runtime.loop; print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False", out.stderr
