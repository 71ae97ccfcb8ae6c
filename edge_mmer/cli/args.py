"""Argument groups that several subcommands share, each declared once (after Polygraphy's ``tools/args``
and jetson-utils' ``Usage()``): the bundle, the sources, the backend and precision, the dataset with its
cache and workers, progress bars, and the runtime settings file.

A group adds its options to a parser under one title with one help text, so ``--bundle`` is a
:class:`~pathlib.Path` everywhere and ``--backend`` offers the same choices with the same default in
every command that takes it. The helpers that turn a group's values into what the library wants
(:func:`progress`, :func:`resolve_dataset`, :func:`text`) sit beside it. Nothing here imports a heavy
stack: ``--help`` stays fast and torch-free.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any, TypeAlias

from edge_mmer.errors import EdgeMmerError, UsageError
from edge_mmer.vocab import BACKENDS, PRECISIONS, ArtifactKind

log = logging.getLogger(__name__)

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

DEFAULT_DATASET = "synthetic"
DEFAULT_SYNTH_DIR = Path("data/synthetic")

#: ``profile --precision`` also names an INT8 flavour exactly (``run`` lets the runtime choose it).
INT8_FLAVOURS: tuple[str, ...] = (ArtifactKind.INT8_CPU.value, ArtifactKind.INT8_TRT.value)

SOURCES_USAGE = """\
source specs (--camera, --mic):
  --camera 0 | /dev/video1           a camera by index or device path
  --camera talk.mp4                  a video file (with its own audio track unless --mic names another)
  --camera rtsp://HOST/PATH          a network stream (rtsp://, http://)
  --camera "... ! appsink"           a GStreamer pipeline (anything containing '!')
  --mic default | 2 | USB            the default input, a device index, or part of a device name
  --mic speech.wav                   a wav file (16 kHz mono read as is, others converted), or the audio
                                     track of any audio/video file
  --camera none, --mic none          no video, no audio
  --realtime / --fast                pace file sources like a live device / read them as fast as possible
"""


def add_command(sub: Subparsers, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    """The parser of a command that runs. It is kept in the namespace (``command_parser``): its ``prog``
    (``edge-mmer bundle verify``) prefixes every message, and it refuses the arguments it does not know.

    A parser that only groups subcommands (``bundle``, ``calibrate``) is made with ``sub.add_parser``;
    its leaves are made here.
    """
    parser = sub.add_parser(name, **kwargs)
    parser.set_defaults(command_parser=parser)
    return parser


# ---------------------------------------------------------------------------------------- bundle


def add_bundle(parser: argparse.ArgumentParser, *, default: str | None = None, in_place: bool = False) -> None:
    """``--bundle DIR``: required unless ``default`` says what is used without it."""
    help_text = "model bundle directory"
    if in_place:
        help_text += " (updated in place)"
    if default is not None:
        help_text += f" (default: {default})"
    parser.add_argument("--bundle", type=Path, metavar="DIR", required=default is None, default=None, help=help_text)


def text(path: Path | None) -> str | None:
    """A path option as the runtime settings hold it (a string; None: not given)."""
    return None if path is None else str(path)


# --------------------------------------------------------------------------------------- sources


def add_settings(parser: argparse.ArgumentParser, *, note: str | None = None) -> None:
    """``--config FILE.toml``: the runtime settings file (the command line wins over it)."""
    help_text = "runtime settings file ([run], [vad], [faces], [decision], [watchdog], [queues], [mqtt])"
    if note:
        help_text += f"; {note}"
    parser.add_argument("--config", type=Path, metavar="FILE.toml", default=None, help=help_text)


def add_sources(parser: argparse.ArgumentParser) -> None:
    """``--camera``, ``--mic`` and ``--realtime`` / ``--fast``; put :data:`SOURCES_USAGE` in the epilog."""
    group = parser.add_argument_group("sources (source specs below)")
    group.add_argument("--camera", metavar="SRC", default=None,
                       help="camera index (0), video file, rtsp:// URL, GStreamer pipeline (contains '!'), or 'none' "
                            "(default: the demo clip with the demo bundle, else 0)")
    group.add_argument("--mic", metavar="SRC", default=None,
                       help="'default', device index, device name substring, a 16 kHz mono .wav, or 'none' "
                            "(default: a video file's own audio track, else the default input device)")
    pace = group.add_mutually_exclusive_group()
    pace.add_argument("--realtime", dest="realtime", action="store_true", default=None,
                      help="pace file sources to real time (as a live camera would deliver them)")
    pace.add_argument("--fast", dest="realtime", action="store_false",
                      help="read file sources as fast as possible (the default)")


# ----------------------------------------------------------------------------- backend/precision


def add_inference(parser: argparse.ArgumentParser, *, int8_flavours: bool = False) -> None:
    """``--backend``, ``--precision`` and ``--threads``, with one vocabulary (:mod:`edge_mmer.vocab`).

    The defaults are None ("not given"): ``run`` then takes the settings file's values, ``profile``
    the same defaults the settings have (auto, fp32, all cores).
    """
    group = parser.add_argument_group("inference")
    group.add_argument("--backend", choices=BACKENDS, default=None,
                       help="inference backend (default auto: TensorRT plans when they fit this device, "
                            "else ONNX Runtime)")
    precision_help = ("which converted networks to run (default fp32; int8 = int8-cpu on ONNX Runtime, int8-trt "
                      "on TensorRT; networks without that artifact run fp32)")
    if int8_flavours:
        precision_help += "; int8-cpu / int8-trt: exactly that INT8 flavour"
    group.add_argument("--precision", choices=(*PRECISIONS, *INT8_FLAVOURS) if int8_flavours else PRECISIONS,
                       default=None, help=precision_help)
    group.add_argument("--threads", type=int, default=None, metavar="N",
                       help="ONNX Runtime intra-op threads (default 0 = all cores)")


# ------------------------------------------------------------------------- dataset/cache/workers


def add_dataset(parser: argparse.ArgumentParser, *, default: str | None = DEFAULT_DATASET,
                note: str | None = None) -> None:
    """``--dataset KIND:PATH`` (required when ``default`` is None), ``--workers``, ``--cache``, ``--no-cache``."""
    group = parser.add_argument_group("dataset")
    help_text = ("'synthetic' (generated into data/synthetic on first use), 'synthetic:DIR', or a real dataset: "
                 "ravdess:DIR, cremad:DIR, meld:DIR[?target=sentiment], mosi:DIR|FILE.pkl, csv:FILE.csv; options "
                 "after '?' (see docs/training.md, Datasets)")
    if note:
        help_text += f"; {note}"
    if default is not None:
        help_text += " (default: %(default)s)"
    group.add_argument("--dataset", default=default, required=default is None, metavar="KIND:PATH", help=help_text)
    group.add_argument("--workers", type=int, default=0, metavar="N",
                       help="front-end worker processes for decoding and face detection (0 = up to 4; "
                            "default: %(default)s)")
    group.add_argument("--cache", type=Path, default=None, metavar="DIR",
                       help="feature cache (log-mels and face crops, npz): a second run skips decoding, an "
                            "interrupted one resumes (default for real datasets: $XDG_CACHE_HOME/edge-mmer/features; "
                            "none for synthetic)")
    group.add_argument("--no-cache", action="store_true", help="do not read or write the feature cache")


def resolve_dataset(args: argparse.Namespace, progress: bool) -> tuple[Path | str, int, Path | None]:
    """--dataset, --workers, --cache / --no-cache -> (synthetic dir or KIND:PATH spec, workers, cache dir).

    Checked before torch is imported: an unknown kind or a missing path stops here.
    """
    from edge_mmer.datasets.base import DatasetError
    from edge_mmer.datasets.cache import default_cache_dir
    from edge_mmer.datasets.frontend import default_workers
    from edge_mmer.datasets.registry import parse_spec

    if args.workers < 0:
        raise UsageError("--workers must be >= 0")
    workers = args.workers or default_workers()
    if args.dataset == "synthetic" or args.dataset.startswith("synthetic:"):
        cache = None if args.no_cache else args.cache
        return _synthetic_dir(args.dataset, seed=0, progress=progress), workers, cache
    try:
        spec = parse_spec(args.dataset)
    except DatasetError as exc:
        raise UsageError(f"--dataset: {exc}") from None
    if not spec.path.exists():
        raise UsageError(f"--dataset {args.dataset!r}: {spec.path} does not exist (expected KIND:PATH, e.g. "
                         "synthetic:DIR, ravdess:DIR, cremad:DIR, meld:DIR, mosi:DIR, csv:FILE.csv)")
    return spec.text, workers, None if args.no_cache else (args.cache or default_cache_dir())


def _synthetic_dir(spec: str, seed: int, progress: bool) -> Path:
    """'synthetic' -> data/synthetic, 'synthetic:DIR' -> DIR; generated there when absent."""
    rest = spec.partition(":")[2]
    path = Path(rest) if rest else DEFAULT_SYNTH_DIR
    if not (path / "dataset.json").is_file():
        from edge_mmer.synth import SynthConfig, generate_dataset

        log.info("synthetic dataset not found at %s: generating it (seed %d)", path, seed)
        generate_dataset(path, SynthConfig(seed=seed), progress=progress)
    return path


# ---------------------------------------------------------------------------------- output dirs


def check_out_dir(path: Path, overwrite: bool) -> bool:
    """An ``--out`` directory a command fills: refused when it is a file, or holds files and
    ``--overwrite`` was not given. True when it holds files (to be replaced)."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {path}: not a directory")
    full = path.is_dir() and any(path.iterdir())
    if full and not overwrite:
        raise UsageError(f"{path} exists and is not empty (use --overwrite)")
    return full


# -------------------------------------------------------------------------------------- progress


def add_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def progress(args: argparse.Namespace) -> bool:
    """Progress bars unless ``--no-progress`` or ``-q``."""
    return not (getattr(args, "no_progress", False) or args.quiet)


def missing_extra(exc: ImportError, extras: str) -> EdgeMmerError:
    """A failure naming the optional dependencies a subcommand needs (``pip install edge-mmer[...]``)."""
    return EdgeMmerError(f"{exc}: install the {extras}")
