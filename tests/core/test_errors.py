"""One error root: every edge-mmer error is an EdgeMmerError and keeps its builtin base."""

from __future__ import annotations

import pytest

from edge_mmer import errors

BUILTIN_BASES = {
    "ConfigError": ValueError, "UsageError": ValueError, "DatasetError": ValueError, "MediaError": ValueError,
    "SVMModelError": ValueError, "WeightsError": ValueError, "EvaluationError": ValueError,
    "VariantError": ValueError, "CalibrationError": ValueError, "UnsupportedOpError": ValueError,
    "BuildOptionsError": ValueError, "DatasetUnusableError": ValueError, "FeatureBundleError": ValueError,
    "DatasetMissingError": FileNotFoundError, "EspeakError": RuntimeError, "EspeakNotFoundError": RuntimeError,
    "ProfileError": RuntimeError, "SinkError": RuntimeError, "RunError": RuntimeError, "RunnerError": RuntimeError,
    "SourceError": RuntimeError, "QuantizeError": RuntimeError, "TensorRTBuildError": RuntimeError,
    "ExportError": RuntimeError, "TensorRTPlanError": RuntimeError, "ConvertError": RuntimeError,
    "TrainError": RuntimeError, "BundleError": Exception, "QueueClosed": Exception,
}


@pytest.mark.parametrize("name", sorted(BUILTIN_BASES))
def test_every_error_has_the_root_and_keeps_its_builtin_base(name: str) -> None:
    cls = getattr(errors, name)
    assert issubclass(cls, errors.EdgeMmerError)
    assert issubclass(cls, BUILTIN_BASES[name])


def test_the_list_is_complete() -> None:
    declared = {n for n in errors.__all__ if n != "EdgeMmerError"}
    assert declared == set(BUILTIN_BASES)
    found = {n for n, v in vars(errors).items() if isinstance(v, type) and issubclass(v, BaseException)}
    assert found - {"EdgeMmerError"} == declared


def test_the_raising_modules_still_export_their_errors() -> None:
    from edge_mmer.bundle import BundleError
    from edge_mmer.config import ConfigError
    from edge_mmer.datasets.base import DatasetError
    from edge_mmer.runtime.runners.base import RunnerError
    from edge_mmer.runtime.sinks.base import SinkError
    from edge_mmer.runtime.sources.base import SourceError

    assert (BundleError, ConfigError, DatasetError, RunnerError, SinkError, SourceError) == (
        errors.BundleError, errors.ConfigError, errors.DatasetError, errors.RunnerError, errors.SinkError,
        errors.SourceError)
