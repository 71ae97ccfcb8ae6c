"""The words the rooms share: network, channel and split names, backends, precisions, artifact kinds.

Defined here once; every module that needs one of these names imports it from here.
"""

from __future__ import annotations

from enum import Enum

__all__ = [
    "BACKENDS",
    "CHANNELS",
    "CONVERT_PRECISIONS",
    "ENCODERS",
    "LOG_FIELDS",
    "MODALITIES",
    "NETWORKS",
    "ONNX_KINDS",
    "PLAN_KINDS",
    "PLAN_PRECISIONS",
    "PRECISIONS",
    "SAMPLE_RATE",
    "SPLITS",
    "STEP_NETWORKS",
    "ArtifactKind",
]

#: The five networks of a bundle: two encoders, then three step graphs ``(x, h, c) -> (y, h_out, c_out)``.
ENCODERS: tuple[str, ...] = ("speech_encoder", "face_encoder")
STEP_NETWORKS: tuple[str, ...] = ("speech_context", "face_context", "fusion")
NETWORKS: tuple[str, ...] = (*ENCODERS, *STEP_NETWORKS)

#: The modalities (chi-square masks are per modality) and the decision channels (one LIBSVM each).
MODALITIES: tuple[str, ...] = ("speech", "face")
CHANNELS: tuple[str, ...] = ("speech", "face", "fused")

#: Dataset splits; the test split is held out (never calibrated on, never trained on).
SPLITS: tuple[str, ...] = ("train", "val", "test")

#: The ``extra`` key of a log record whose mapping ``--log-format json`` writes as the line's own
#: fields: ``log.info("...", extra={LOG_FIELDS: {"events": 12}})`` (the runtime logs, the CLI formats).
LOG_FIELDS = "fields"

#: Audio runs at 16 kHz everywhere (the VAD, the log-mel front end, the encoders).
SAMPLE_RATE = 16000

#: What ``edge-mmer run`` / ``profile`` accept for ``--backend`` and ``--precision``.
BACKENDS: tuple[str, ...] = ("auto", "onnxruntime", "tensorrt")
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")

#: What ``edge-mmer convert --precision`` writes, and what ``--plan-precision`` compiles.
CONVERT_PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8-cpu", "int8-trt")
PLAN_PRECISIONS: tuple[str, ...] = ("fp16", "fp32", "int8")


class ArtifactKind(str, Enum):
    """The key of a converted network in ``networks.<name>.artifacts`` of a bundle's manifest."""

    ONNX_FP32 = "onnx-fp32"
    ONNX_FP16 = "onnx-fp16"
    INT8_CPU = "int8-cpu"  # Q/DQ, UINT8 activations: ONNX Runtime on CPUs
    INT8_TRT = "int8-trt"  # Q/DQ, symmetric INT8: TensorRT's rules
    TENSORRT_FP32 = "tensorrt-fp32"
    TENSORRT_FP16 = "tensorrt-fp16"
    TENSORRT_INT8 = "tensorrt-int8"

    def __str__(self) -> str:
        return self.value

    @property
    def is_plan(self) -> bool:
        """A TensorRT plan (tied to its TensorRT version and GPU), not an ONNX file."""
        return self.value.startswith("tensorrt-")

    @property
    def is_int8(self) -> bool:
        return self.value.startswith("int8-") or self.value == "tensorrt-int8"

    @classmethod
    def plan(cls, precision: str) -> ArtifactKind:
        """The plan kind of a ``--plan-precision`` (``fp16`` -> ``tensorrt-fp16``)."""
        return cls(f"tensorrt-{precision}")


ONNX_KINDS: tuple[ArtifactKind, ...] = (
    ArtifactKind.ONNX_FP32, ArtifactKind.ONNX_FP16, ArtifactKind.INT8_CPU, ArtifactKind.INT8_TRT)
PLAN_KINDS: tuple[ArtifactKind, ...] = (
    ArtifactKind.TENSORRT_FP32, ArtifactKind.TENSORRT_FP16, ArtifactKind.TENSORRT_INT8)
