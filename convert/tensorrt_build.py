"""ONNX -> TensorRT plan (TensorRT 10 Python API), with the build facts to record beside it.

Everything that can be checked without TensorRT is checked first, by
:func:`~edge_mmer.convert.tensorrt_preflight.preflight` (options, ONNX inputs against the profile,
Q/DQ nodes for INT8, FP16 tensors for a strongly typed FP16 build), so a bad request fails the same
way on a laptop as on a Jetson. The TensorRT calls live in :func:`_build_with_tensorrt` and the
steps it calls, and nowhere else; ``tensorrt`` is imported only there and in
:func:`tensorrt_available`.

Precision (reference/tensorrt.md):

* ``fp32`` clears ``BuilderFlag.TF32`` (on by default in TensorRT), so an FP32 plan is FP32;
* weakly typed (default): ``fp16`` sets ``BuilderFlag.FP16``; ``int8`` sets ``INT8`` and ``FP16``
  and needs a Q/DQ ONNX model (explicit quantization: no calibrator, the LSTMs stay FP16);
* strongly typed (``strongly_typed=True``, the TensorRT 11 way): no precision flags; tensor types
  come from the ONNX file, so ``fp16`` needs an FP16 ONNX and ``int8`` a Q/DQ ONNX.

DLA: FP16 or INT8 only, static shapes only (min = opt = max, see
:func:`edge_mmer.bundle.shapes.static_profile_for_dla`), GPU fallback for the layers it cannot run.
"""


from __future__ import annotations

import functools
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from edge_mmer.bundle.plans import probe_device_facts
from edge_mmer.errors import BuildOptionsError, TensorRTBuildError
from edge_mmer.hashing import sha256_bytes, sha256_file
from edge_mmer.runtime.runners.trt_process import trt_logger

from .tensorrt_preflight import Dim, TensorRTBuildOptions, preflight

log = logging.getLogger(__name__)

__all__ = ["BuildOptionsError", "Dim", "TensorRTBuildError", "TensorRTBuildOptions", "build_plan", "preflight",
           "tensorrt_available"]


@functools.lru_cache(maxsize=1)
def tensorrt_available() -> tuple[bool, str]:
    """(True, "TensorRT x.y") when TensorRT imports and can create a builder on a GPU; else (False, why).

    Asked once per process (a builder costs seconds on a Jetson; the CLI, the bundle builder and each
    plan build all ask): ``tensorrt_available.cache_clear()`` asks again."""
    try:
        import tensorrt as trt
    except Exception as exc:
        return False, f"TensorRT is not installed (import tensorrt: {exc})"
    version = str(getattr(trt, "__version__", "?"))
    try:
        builder = trt.Builder(trt_logger(trt))
    except Exception as exc:
        return False, f"TensorRT {version} is installed but cannot create a builder (no usable CUDA GPU?): {exc}"
    if builder is None:
        return False, f"TensorRT {version} is installed but cannot create a builder (no usable CUDA GPU?)"
    return True, f"TensorRT {version}"


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _parser_error_text(err: Any) -> str:
    """One parser error: node index, name and operator where this TensorRT reports them."""
    parts = [f"node {err.node()}"]
    for attr in ("node_name", "node_operator"):
        fn = getattr(err, attr, None)  # TensorRT >= 10.x
        if fn is not None:
            try:
                value = fn()
            except Exception:
                value = ""
            if value:
                parts.append(f"{attr.removeprefix('node_')} '{value}'")
    return f"{' '.join(parts)}: {err.desc()} (code {err.code()})"


def _parsed_network(trt: Any, builder: Any, trt_logger: Any, onnx_path: Path, options: TensorRTBuildOptions
                    ) -> tuple[Any, Any]:
    """The network parsed from ``onnx_path``, and its parser (which owns the weights: keep it until
    the plan is built)."""
    flags = 0
    if int(trt.__version__.split(".")[0]) < 10:  # 8.6 (JetPack 6.0) still needs explicit batch
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if options.strongly_typed:
        if not hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
            raise TensorRTBuildError(
                f"{onnx_path}: strongly typed networks need TensorRT >= 9, this is {trt.__version__}"
            )
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)

    parser = trt.OnnxParser(network, trt_logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [_parser_error_text(parser.get_error(i)) for i in range(parser.num_errors)]
        raise TensorRTBuildError(
            f"TensorRT's ONNX parser rejected {onnx_path}: " + ("; ".join(errors) or "no error reported")
        )
    return network, parser


def _precision_flags(options: TensorRTBuildOptions) -> list[str]:
    """The builder flags a weakly typed build needs for its precision (none when strongly typed)."""
    if options.strongly_typed:
        return []
    flags = []
    if options.precision in ("fp16", "int8"):
        flags.append("FP16")
    if options.precision == "int8":
        flags.append("INT8")  # Q/DQ model: explicit quantization, no calibrator
    return flags


def _clear_tf32(trt: Any, config: Any, options: TensorRTBuildOptions) -> list[str]:
    """An ``fp32`` plan is FP32: clear ``BuilderFlag.TF32``, which TensorRT sets by default ("Allow (but
    not require) computations on tensors of type DataType::kFLOAT to use TF32 ... Enabled by default",
    NvInfer.h) and which rounds conv / GEMM inputs to a 10-bit mantissa on Ampere and newer (Orin is
    sm_87). FP16 / INT8 plans keep it for their FP32 layers, and the record says so (``tf32``)."""
    if options.precision != "fp32":
        return []
    config.clear_flag(trt.BuilderFlag.TF32)
    return ["TF32"]


def _use_dla(trt: Any, builder: Any, config: Any, onnx_path: Path, options: TensorRTBuildOptions,
             builder_flags: list[str]) -> dict[str, Any] | None:
    """Point the build at the requested DLA core (GPU fallback added to ``builder_flags`` when
    asked); what to record, or None without DLA."""
    if options.dla_core is None:
        return None
    n_dla = int(builder.num_DLA_cores)
    if options.dla_core >= n_dla:
        raise TensorRTBuildError(
            f"{onnx_path}: DLA core {options.dla_core} requested, this device has {n_dla} DLA core(s)"
        )
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = options.dla_core
    if options.gpu_fallback:
        builder_flags.append("GPU_FALLBACK")
    return {"core": options.dla_core, "gpu_fallback": options.gpu_fallback}


def _add_profile(builder: Any, network: Any, config: Any, onnx_path: Path, options: TensorRTBuildOptions) -> None:
    """One optimization profile with the options' shape ranges; every dynamic input needs one."""
    shapes = options.profile.shapes if options.profile is not None else {}
    missing = []
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        if any(int(d) < 0 for d in tensor.shape) and tensor.name not in shapes:
            missing.append(tensor.name)
    if missing:
        raise TensorRTBuildError(f"{onnx_path}: dynamic input(s) {', '.join(missing)} and no profile for them")
    if shapes:
        profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in shapes.items():
            profile.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(profile)


def _load_timing_cache(config: Any, cache_path: Path | None) -> bool:
    """Give the build the timing cache at ``cache_path`` (an empty one when it is missing, unreadable,
    corrupted, or does not match this TensorRT/GPU); whether a stored cache was loaded."""
    if cache_path is None:
        return False
    try:
        data = cache_path.read_bytes() if cache_path.is_file() else b""
    except OSError as exc:
        log.warning("timing cache %s cannot be read (%s); starting an empty one", cache_path, exc)
        data = b""
    try:  # a corrupted or foreign file can make create_timing_cache raise or return None
        cache = config.create_timing_cache(data)
    except Exception as exc:
        log.warning("timing cache %s is not a TensorRT timing cache (%s); starting an empty one", cache_path, exc)
        cache = None
    if cache is None or not config.set_timing_cache(cache, ignore_mismatch=False):
        log.warning("timing cache %s does not match this TensorRT/GPU; starting an empty one", cache_path)
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
        return False
    return bool(data)


def _build_with_tensorrt(onnx_path: Path, options: TensorRTBuildOptions) -> tuple[bytes, dict[str, Any]]:
    """The only function that drives TensorRT (through the steps above). Returns the plan and what
    the build did."""
    import tensorrt as trt

    logger = trt_logger(trt)  # the process's one logger (TensorRT keeps only the first: D11)
    builder = trt.Builder(logger)
    if builder is None:
        raise TensorRTBuildError(f"{onnx_path}: TensorRT could not create a builder (no usable CUDA GPU?)")
    network, parser = _parsed_network(trt, builder, logger, onnx_path, options)

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mib << 20)
    builder_flags = _precision_flags(options)
    dla = _use_dla(trt, builder, config, onnx_path, options, builder_flags)
    for name in builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, name))
    cleared = _clear_tf32(trt, config, options)
    _add_profile(builder, network, config, onnx_path, options)
    cache_path = options.timing_cache
    cache_loaded = _load_timing_cache(config, cache_path)

    plan = builder.build_serialized_network(network, config)
    del parser  # held until here: the network's weights live in it
    if plan is None:
        raise TensorRTBuildError(
            f"TensorRT could not build {onnx_path} (precision {options.precision}"
            f"{', DLA core ' + str(options.dla_core) if options.dla_core is not None else ''}); "
            "see the TensorRT errors logged above"
        )
    if cache_path is not None:
        _write_atomic(cache_path, bytes(config.get_timing_cache().serialize()))
    done = {
        "tensorrt_version": str(trt.__version__),
        "dla_cores": int(getattr(builder, "num_DLA_cores", 0) or 0),
        "builder_flags": builder_flags,
        "cleared_flags": cleared,
        "tf32": "TF32" not in cleared,
        "dla": dla,
        "timing_cache": None if cache_path is None else {"path": str(cache_path), "loaded": cache_loaded},
    }
    return bytes(plan), done


def build_plan(onnx_path: Path, options: TensorRTBuildOptions) -> tuple[bytes, dict[str, Any]]:
    """Build a TensorRT plan from ``onnx_path``; return it with the facts to record beside it.

    The facts: TensorRT version, GPU name and compute capability, L4T release (Jetson), CUDA version,
    precision, strongly typed, builder flags, DLA settings, profile ranges, ONNX and plan sha256.
    :func:`edge_mmer.bundle.plans.plan_compatibility` compares them with a device later.
    """
    onnx_path = Path(onnx_path)
    preflight(onnx_path, options)
    ok, reason = tensorrt_available()
    if not ok:
        raise TensorRTBuildError(f"cannot build a plan from {onnx_path}: {reason}")
    started = time.monotonic()
    plan, done = _build_with_tensorrt(onnx_path, options)
    seconds = time.monotonic() - started
    device = probe_device_facts(dla_cores=done["dla_cores"])
    if device.gpu_name is None:
        log.warning("GPU name not recorded (install pycuda or cuda-python): runtimes will refuse this plan")
    facts: dict[str, Any] = {
        **device.to_record(),
        "tensorrt_version": done["tensorrt_version"],
        "precision": options.precision,
        "strongly_typed": options.strongly_typed,
        "builder_flags": done["builder_flags"],
        "cleared_flags": done["cleared_flags"],
        "tf32": done["tf32"],
        "workspace_mib": options.workspace_mib,
        "dla": done["dla"],
        "profiles": options.profile.to_record() if options.profile is not None else {},
        "onnx_file": onnx_path.name,
        "onnx_sha256": sha256_file(onnx_path),
        "plan_sha256": sha256_bytes(plan),
        "plan_bytes": len(plan),
        "timing_cache": done["timing_cache"],
        "build_seconds": round(seconds, 3),
    }
    log.info("built %s (%s, %d bytes) in %.1f s", onnx_path.name, options.precision, len(plan), seconds)
    return plan, facts
