"""Every error edge-mmer raises, under one root: :class:`EdgeMmerError`.

Each class keeps the builtin base it always had (``ConfigError`` is a ``ValueError``, ``RunnerError``
a ``RuntimeError`` ...), so ``except ValueError`` in a caller still works, while the command line
catches ``EdgeMmerError`` once and turns it into an exit status (configuration and usage errors 2,
everything else 1). The classes are also importable from the modules that raise them
(``edge_mmer.bundle.BundleError``, ``edge_mmer.runtime.sinks.base.SinkError`` ...).

Messages name what is wrong and where: the file, the manifest field, the config key, the device.
Library code raises these; only the command line ends the process.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "BuildOptionsError",
    "BundleError",
    "CalibrationError",
    "ConfigError",
    "ConvertError",
    "DatasetError",
    "DatasetMissingError",
    "DatasetUnusableError",
    "EdgeMmerError",
    "EspeakError",
    "EspeakNotFoundError",
    "EvaluationError",
    "ExportError",
    "FeatureBundleError",
    "MediaError",
    "ProfileError",
    "QuantizeError",
    "QueueClosed",
    "RunError",
    "RunnerError",
    "SVMModelError",
    "SinkError",
    "SourceError",
    "TensorRTBuildError",
    "TensorRTPlanError",
    "TrainError",
    "UnsupportedOpError",
    "UsageError",
    "VariantError",
    "WeightsError",
]


class EdgeMmerError(Exception):
    """The root of every edge-mmer error."""


# ------------------------------------------------------------------------------ configuration


class ConfigError(EdgeMmerError, ValueError):
    """A configuration value is missing, unknown or out of range; the message names the key."""


class UsageError(EdgeMmerError, ValueError):
    """A command-line argument that cannot be used (exit status 2, like argparse's own errors)."""


# ------------------------------------------------------------------------------------- bundle


class BundleError(EdgeMmerError):
    """A bundle is missing, malformed or corrupted. ``str()`` names the bundle, the file or field."""

    def __init__(self, path: str | os.PathLike[str], where: str, message: str) -> None:
        self.path = Path(path)
        self.where = where
        self.message = message
        super().__init__(f"{self.path}: {where}: {message}")


class SVMModelError(EdgeMmerError, ValueError):
    """A LIBSVM model file (or its scaling) is missing, malformed or does not fit; names the file."""


# ----------------------------------------------------------------------------------- datasets


class DatasetError(EdgeMmerError, ValueError):
    """The dataset on disk is missing or malformed; the message names the file and field."""


class MediaError(DatasetError):
    """A media file cannot be opened or decoded; names the file."""


class DatasetMissingError(EdgeMmerError, FileNotFoundError):
    """The bundle's dataset (for parity, calibration or drift samples) is not on this machine."""


class DatasetUnusableError(EdgeMmerError, ValueError):
    """The dataset cannot give this bundle's samples (other labels, features instead of media, an empty split)."""


class FeatureBundleError(EdgeMmerError, ValueError):
    """The bundle was trained on precomputed features: it has no encoders to export or calibrate."""


class EspeakError(EdgeMmerError, RuntimeError):
    """espeak-ng failed to synthesise speech."""


class EspeakNotFoundError(EspeakError):
    """The ``espeak-ng`` binary is not installed."""


# ---------------------------------------------------------------------------- training side


class TrainError(EdgeMmerError, RuntimeError):
    """Training cannot start or go on (a dataset without a split, no CUDA ...); the message says why."""


class WeightsError(EdgeMmerError, ValueError):
    """A checkpoint cannot be loaded into the model; the message names the file and the keys."""


class EvaluationError(EdgeMmerError, ValueError):
    """The bundle and the dataset do not go together (labels, media vs features); names both."""


# -------------------------------------------------------------------------------------- runtime


class RunnerError(EdgeMmerError, RuntimeError):
    """A runner that cannot load or a feed that does not fit; the message names network and tensor."""


class SourceError(EdgeMmerError, RuntimeError):
    """A source that cannot be opened or read; the message names the device or file."""


class SinkError(EdgeMmerError, RuntimeError):
    """A sink that cannot be set up (bad URL, unreadable password file ...); the message names it."""


class RunError(EdgeMmerError, RuntimeError):
    """The loop cannot start (bundle, backend, source or sink); the message says which and why."""


class QueueClosed(EdgeMmerError):
    """Every producer closed the queue and it is drained: end of stream (a signal, not a failure)."""


class ProfileError(EdgeMmerError, RuntimeError):
    """Options that cannot be profiled (the message says which and why)."""


class VariantError(EdgeMmerError, ValueError):
    """A ``--compare`` item, backend or precision that cannot be profiled; the message says which."""


class CalibrationError(EdgeMmerError, ValueError):
    """A calibration set file is missing, malformed or inconsistent; the message names the file and key."""


# -------------------------------------------------------------------------------------- convert


class ConvertError(EdgeMmerError, RuntimeError):
    """The conversion cannot proceed or a check failed; nothing was written."""


class ExportError(EdgeMmerError, RuntimeError):
    """An exported graph is invalid, misses an expected node or does not run."""


class QuantizeError(EdgeMmerError, RuntimeError):
    """Quantization failed, or the produced graph breaks the flavour's rules."""


class UnsupportedOpError(EdgeMmerError, ValueError):
    """A node, opset or attribute that the named TensorRT release's ONNX parser does not take."""

    def __init__(self, message: str, node: str | None = None, op_type: str | None = None, release: str = "") -> None:
        super().__init__(message)
        self.node = node
        self.op_type = op_type
        self.release = release


class BuildOptionsError(EdgeMmerError, ValueError):
    """The build request is inconsistent (options, or options against the ONNX file); TensorRT was not touched."""


class TensorRTBuildError(EdgeMmerError, RuntimeError):
    """TensorRT is missing, or its parser or builder failed; the message names the ONNX file (and node)."""


class TensorRTPlanError(EdgeMmerError, RuntimeError):
    """Plans could not be built; nothing was written."""
