"""The suite's fixtures and markers: what is shared, and what a test needs in order to run.

Markers (declared in pyproject.toml):

- ``needs_torch``, ``needs_mosquitto``, ``needs_espeak``, ``needs_gpu``, ``needs_tensorrt``,
  ``needs_virtual_mic``, ``needs_jetson``: the test skips, saying why, when that is missing here.
  :data:`NEEDS` is the one place that checks; the fixtures that start a broker, generate the dataset
  or train the tiny bundle add the markers they imply (:data:`FIXTURE_NEEDS`).
- ``needs_h5py``: needs h5py (the ``datasets`` extra, a training-side reader of .csd files).
- ``needs_convert``: needs the conversion tools (onnx, onnxslim: the ``convert`` extra), which the
  device install leaves out.
- ``torchfree``: runs in what a device carries, without torch. Given to every test marked neither
  ``needs_torch``, ``needs_h5py`` nor ``needs_convert`` (whatever its folder: every test under core/ and runtime/ is
  torch-free, except those marked ``needs_torch`` on purpose), so the Python 3.10 run without torch is
  simply ``pytest -m torchfree``, and every such test runs there.
- ``slow``: end-to-end training and the full-dataset drift check (seconds to minutes).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from support.cli import Child, CliChildFactory
from support.cli import cli_child as _cli_child

if TYPE_CHECKING:
    from support.broker import Mosquitto, SecureBroker, TlsFiles
    from support.demo import PipelineFactory

# ------------------------------------------------------------------------------------------ markers


def _torch() -> str | None:
    return None if importlib.util.find_spec("torch") else "torch is not installed (the 'train' extra)"


def _mosquitto() -> str | None:
    if importlib.util.find_spec("paho") is None:
        return "paho-mqtt is not installed (the 'mqtt' extra)"
    from support.broker import mosquitto_binary

    return None if mosquitto_binary() else "mosquitto is not installed (apt-get install mosquitto)"


def _espeak() -> str | None:
    return None if shutil.which("espeak-ng") else "espeak-ng is not installed (apt-get install espeak-ng)"


def _gpu() -> str | None:
    if importlib.util.find_spec("onnxruntime") is None:
        return "onnxruntime is not installed (the 'onnx' extra)"
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        return "no CUDA execution provider in this onnxruntime build (no GPU here)"
    return None


def _h5py() -> str | None:
    return None if importlib.util.find_spec("h5py") else "h5py is not installed (the 'datasets' extra)"


def _convert() -> str | None:
    missing = [m for m in ("onnx", "onnxslim") if importlib.util.find_spec(m) is None]
    return f"{' and '.join(missing)} not installed (the 'convert' extra)" if missing else None


def _tensorrt() -> str | None:
    from edge_mmer.convert.tensorrt_build import tensorrt_available

    ok, reason = tensorrt_available()
    return None if ok else f"needs TensorRT and a GPU it can build on: {reason}"


def _virtual_mic() -> str | None:
    from support.virtual_mic import unavailable_reason

    reason = unavailable_reason()
    return None if reason is None else f"virtual ALSA microphone unavailable: {reason}"


def _jetson() -> str | None:
    missing = [t for t in ("nvpmodel", "jetson_clocks", "tegrastats") if shutil.which(t) is None]
    return None if not missing else f"not a Jetson: {', '.join(missing)} not on PATH"


#: What the device install (the Python 3.10 run) does not hold: tests marked so are never torchfree.
NOT_ON_THE_DEVICE = ("needs_torch", "needs_h5py", "needs_convert")

NEEDS: dict[str, Callable[[], str | None]] = {
    "needs_torch": _torch,
    "needs_h5py": _h5py,
    "needs_convert": _convert,
    "needs_mosquitto": _mosquitto,
    "needs_espeak": _espeak,
    "needs_gpu": _gpu,
    "needs_tensorrt": _tensorrt,
    "needs_virtual_mic": _virtual_mic,
    "needs_jetson": _jetson,
}
"""Marker -> why it cannot run here (None: it can)."""

FIXTURE_NEEDS: dict[str, tuple[str, ...]] = {
    "broker": ("needs_mosquitto",),
    "auth_broker": ("needs_mosquitto",),
    "secure_broker": ("needs_mosquitto",),
    "dataset": ("needs_espeak",),
    "tiny_bundle": ("needs_espeak", "needs_torch"),
}
"""Fixture -> the markers a test using it (directly or through another fixture) gets."""


@functools.cache
def missing(marker: str) -> str | None:
    """Why the tests marked ``marker`` cannot run here, checked once per session; None when they can."""
    return NEEDS[marker]()


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        for fixture, markers in FIXTURE_NEEDS.items():
            if fixture in fixtures:
                for marker in markers:
                    item.add_marker(marker)
        if not any(item.get_closest_marker(marker) for marker in NOT_ON_THE_DEVICE):
            item.add_marker("torchfree")
        reasons = [reason for marker in NEEDS if item.get_closest_marker(marker) and (reason := missing(marker))]
        if reasons:  # a skip mark, so that the report names the test, not this hook
            item.add_marker(pytest.mark.skip(reason="; ".join(reasons)))


# ----------------------------------------------------------------------------------- training data


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 speakers (train / val / test one each), 2 sessions of 4 utterances: seconds to make."""
    from edge_mmer.synth import SynthConfig, generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("data") / "synthetic",
                            SynthConfig(seed=3, n_speakers=3, sessions_per_speaker=2, utterances_per_session=4),
                            progress=False, workers=1)


@pytest.fixture(scope="session")
def tiny_bundle(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The TINY configuration trained once on ``dataset`` (no ablation): shared by the conversion
    and quantization tests (copy it before changing it)."""
    from support.configs import TINY

    from edge_mmer.train import TrainOptions, train

    out = tmp_path_factory.mktemp("train") / "bundle"
    return train(TINY, TrainOptions(dataset=dataset, out=out, seed=1, device="cpu", progress=False,
                                    ablation=False)).bundle_dir


# ------------------------------------------------------------------------------------------ brokers


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A mosquitto on a free port, anonymous, with persistence (a restart keeps sessions and retained
    messages); killed after the test."""
    from support.broker import Mosquitto

    b = Mosquitto(tmp_path / "broker", persistence=True).start()
    yield b
    b.kill()


@pytest.fixture
def auth_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A mosquitto that wants a password: user ``robot``, ``support.broker.DEVICE_PASSWORD``."""
    from support import broker as mq

    if shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto_passwd is not installed (apt-get install mosquitto)")
    b = mq.auth_broker(tmp_path / "auth").start()
    yield b
    b.kill()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A throwaway CA with a server and a client certificate (made once per session)."""
    from support.broker import make_tls_files

    tls = make_tls_files(tmp_path_factory.mktemp("tls"))
    if tls is None:
        pytest.skip("the openssl CLI is needed to make test certificates")
    return tls


@pytest.fixture
def secure_broker(tmp_path: Path, tls_files: TlsFiles) -> Iterator[SecureBroker]:
    """A locked-down mosquitto: TLS with a client certificate, passwords, an ACL (support/broker.py)."""
    from support import broker as mq

    if shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto_passwd is not installed (apt-get install mosquitto)")
    with mq.secure_broker(tmp_path / "secure", tls_files) as secure:
        yield secure


# -------------------------------------------------------------------------------- the CLI, the demo


@pytest.fixture
def cli_child() -> Iterator[CliChildFactory]:
    """Start ``edge-mmer run`` in a subprocess (support/cli.py: ``cli_child(config, *args)``); every child
    still running when the test ends is killed."""
    with contextlib.ExitStack() as children:

        def start(config: Path | None, *args: str, options: Sequence[str] = (),
                  env: Mapping[str, str] | None = None) -> Child:
            return children.enter_context(_cli_child(config, *args, options=options, env=env))

        yield start


@pytest.fixture
def demo_pipeline() -> Iterator[PipelineFactory]:
    """Make pipelines on the demo bundle (support/demo.py: ``build_pipeline``); their networks are
    released after the test."""
    from support.demo import build_pipeline

    from edge_mmer.runtime.pipeline import Pipeline, PipelineSettings

    made: list[Pipeline] = []

    def make(settings: PipelineSettings | None = None, *, expect_audio: bool = True,
             expect_video: bool = True) -> Pipeline:
        made.append(build_pipeline(settings, expect_audio=expect_audio, expect_video=expect_video))
        return made[-1]

    yield make
    for pipe in made:
        pipe.close()
