"""The former name of :mod:`edge_mmer.convert.onnx_artifacts` (the ONNX step of ``edge-mmer convert``),
kept for the command line's import; new code imports from ``onnx_artifacts``."""

from edge_mmer.convert.onnx_artifacts import (
    ALL_PRECISIONS,
    INT8_PRECISIONS,
    PRECISIONS,
    ConvertError,
    ConvertOptions,
    ConvertResult,
    convert_bundle,
)

__all__ = ["ALL_PRECISIONS", "INT8_PRECISIONS", "PRECISIONS", "ConvertError", "ConvertOptions", "ConvertResult",
           "convert_bundle"]
