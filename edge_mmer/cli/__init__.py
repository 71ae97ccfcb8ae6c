"""The ``edge-mmer`` command line: one console script, one subcommand per job, one exit policy.

Each subcommand is a module here with ``add_parser(sub)`` and ``run(args) -> int``; the options that
several of them take are declared once in :mod:`edge_mmer.cli.args`. Heavy imports (torch, OpenCV,
libsvm, ONNX Runtime) happen inside ``run``, so ``edge-mmer --help`` and ``edge-mmer bundle verify``
stay fast and torch-free.

The exit policy lives in :func:`main` alone; below it nothing ends the process, library code and
subcommands raise :class:`~edge_mmer.errors.EdgeMmerError` subclasses:

- 0: done;
- 2: the command cannot be used as given: argparse's own errors, :class:`UsageError`, :class:`ConfigError`
  (and the profiler's :class:`ProfileError` / :class:`VariantError`, which name the option that cannot
  be profiled): ``edge-mmer CMD: <message>`` on stderr;
- 1: it was used correctly and failed (any other :class:`EdgeMmerError`):
  ``edge-mmer CMD: FAILED: <message>``;
- 130: interrupted (Ctrl-C): ``edge-mmer CMD: interrupted``.

``CMD`` is the subcommand as typed (``run``, ``bundle verify``), the prefix argparse uses for its own errors.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from typing import Protocol

from edge_mmer import __version__
from edge_mmer.cli import bundle, calibrate, convert, doctor, evaluate, profile, run, service, synth, train
from edge_mmer.cli.args import Subparsers
from edge_mmer.cli.logs import LOG_FORMATS, setup_logging
from edge_mmer.errors import ConfigError, EdgeMmerError, ProfileError, UsageError, VariantError

__all__ = ["COMMANDS", "EXTRAS", "USAGE_ERRORS", "build_parser", "install_line", "main", "with_default_command"]

log = logging.getLogger(__name__)


class Command(Protocol):
    """What a subcommand module provides."""

    def add_parser(self, sub: Subparsers) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


#: The subcommands, in the order ``--help`` lists them; ``run`` is also what no subcommand means.
COMMANDS: dict[str, Command] = {
    "run": run, "profile": profile, "synth": synth, "train": train, "evaluate": evaluate, "bundle": bundle,
    "convert": convert, "calibrate": calibrate, "doctor": doctor, "service": service,
}
DEFAULT_COMMAND = "run"

#: The global options that take no value (``-v``, ``-vv``, ``-q`` ...): what may precede the subcommand word.
GLOBAL_FLAGS = re.compile(r"-[vq]+|--verbose|--quiet|--log-format=\S*")
#: The global options that take a value as the next word.
GLOBAL_WITH_VALUE = ("--log-format",)

#: The import names a subcommand may miss, and the extra that installs each ("" = the base install,
#: which a broken or partial install lacks): it then fails with the line that installs it, not a
#: traceback. Kept in step with pyproject.toml's extras (tests/core/test_packaging.py).
EXTRAS = {
    "torch": "train", "torchvision": "train", "timm": "dev", "scipy": "train", "tqdm": "train",
    "matplotlib": "train", "onnx": "convert", "onnxslim": "convert", "h5py": "datasets", "pycuda": "tensorrt",
    "onnxruntime": "", "cv2": "", "av": "", "pyaudio": "", "webrtcvad": "", "paho": "", "libsvm": "",
    "safetensors": "", "numpy": "",
}
#: What to say for the modules no extra installs: TensorRT comes with JetPack or NVIDIA's wheel.
NOT_ON_PYPI = {"tensorrt": "TensorRT (JetPack's python3-libnvinfer, or NVIDIA's tensorrt wheel; docs/backends.md)"}

#: Errors that mean "used wrongly" (exit 2) rather than "failed" (exit 1).
USAGE_ERRORS: tuple[type[EdgeMmerError], ...] = (UsageError, ConfigError, ProfileError, VariantError)

DESCRIPTION = """\
edge-mmer: multimodal (speech + face) emotion recognition for robots and kiosks.

Run with no subcommand to do the embedded default job: the live loop ('edge-mmer run', whose
options may follow directly) with the committed demo bundle on the committed demo clip, one
emotion event per line on stdout, exiting when the clip ends. The demo model is trained on
SYNTHETIC data: its events show that the loop works, not how well it recognises real people.
"""

EPILOG = """\
examples:
  edge-mmer                                   the live loop: demo bundle on the demo clip, events on stdout
  edge-mmer run --bundle runs/demo --camera 0 --mic default --sink mqtt://localhost:1883/edge-mmer
  edge-mmer synth --out data/synthetic        generate the synthetic dataset
  edge-mmer train --dataset synthetic:data/synthetic --config demo --out runs/demo
  edge-mmer bundle verify runs/demo           check every file of a bundle against its manifest
  edge-mmer bundle show runs/demo             what a bundle holds, before you deploy it
  edge-mmer convert --bundle runs/demo        add ONNX FP32/FP16 networks, checked against PyTorch
  edge-mmer calibrate build --bundle runs/demo --out calib.npz   INT8 calibration set (train split)
  edge-mmer convert --bundle runs/demo --precision int8-cpu,int8-trt --calibration calib.npz

exit status: 0 done, 1 failed, 2 wrong usage or configuration, 130 interrupted
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-mmer", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"edge-mmer {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")  # see GLOBAL_FLAGS
    parser.add_argument("--log-format", choices=LOG_FORMATS, default="text",
                        help="logs on stderr as text (default) or one JSON object per line (for journald and log "
                             "shippers)")
    sub = parser.add_subparsers(dest="command")
    for module in COMMANDS.values():
        module.add_parser(sub)
    return parser


def with_default_command(argv: Sequence[str]) -> list[str]:
    """``argv`` with ``run`` inserted after the global options when it names no subcommand.

    ``edge-mmer -q`` is ``edge-mmer -q run``, and ``edge-mmer --camera 0`` is ``edge-mmer run --camera 0``.
    A word after the global options is a subcommand (a misspelt one is argparse's to refuse), and a
    global ``--help`` / ``--version`` keeps its meaning. One parse, no retry.
    """
    words = list(argv)
    first = 0
    while first < len(words):
        if words[first] in GLOBAL_WITH_VALUE:
            first += 2
        elif GLOBAL_FLAGS.fullmatch(words[first]):
            first += 1
        else:
            break
    first = min(first, len(words))
    if first < len(words) and (not words[first].startswith("-") or words[first] in ("-h", "--help", "--version")):
        return words
    return [*words[:first], DEFAULT_COMMAND, *words[first:]]


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, dispatch, and turn what went wrong into one message and one exit status."""
    args, unknown = build_parser().parse_known_args(with_default_command(sys.argv[1:] if argv is None else argv))
    command: argparse.ArgumentParser = args.command_parser
    if unknown:  # refused by the subcommand, so that the message and the usage are its own
        command.error(f"unrecognized arguments: {' '.join(unknown)}")
    setup_logging(args.verbose, args.quiet, args.log_format)
    prog = command.prog
    try:
        return COMMANDS[args.command].run(args)
    except USAGE_ERRORS as exc:
        sys.stderr.write(f"{prog}: {exc}\n")
        return 2
    except EdgeMmerError as exc:
        sys.stderr.write(f"{prog}: FAILED: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted\n")
        return 130
    except ModuleNotFoundError as exc:
        line = install_line((exc.name or "").partition(".")[0])
        if line is None:
            raise  # not an optional dependency: a bug, keep its traceback
        sys.stderr.write(f"{prog}: FAILED: {prog.removeprefix('edge-mmer ')} needs {exc.name}, which is not "
                         f"installed: {line}\n")
        return 1


def install_line(module: str) -> str | None:
    """What installs ``module`` (an import name), as a user types it; None when edge-mmer does not install it."""
    if module in NOT_ON_PYPI:
        return f"install {NOT_ON_PYPI[module]}"
    extra = EXTRAS.get(module)
    if extra is None:
        return None
    if extra == "":
        return "pip install edge-mmer (the device install; on a Jetson see docs/device.md)"
    return f"pip install 'edge-mmer[{extra}]'"
