"""ONNX -> TensorRT plan (TensorRT 10 Python API), with the build facts to record beside it.

Everything that can be checked without TensorRT is checked first, by :func:`preflight` (options,
ONNX inputs against the profile, Q/DQ nodes for INT8, FP16 tensors for a strongly typed FP16
build), so a bad request fails the same way on a laptop as on a Jetson. The TensorRT calls live in
:func:`_build_with_tensorrt` and nowhere else; ``tensorrt`` is imported only there and in
:func:`tensorrt_available`.

Precision (reference/tensorrt.md):

* weakly typed (default): ``fp16`` sets ``BuilderFlag.FP16``; ``int8`` sets ``INT8`` and ``FP16``
  and needs a Q/DQ ONNX model (explicit quantization: no calibrator, the LSTMs stay FP16);
* strongly typed (``strongly_typed=True``, the TensorRT 11 way): no precision flags; tensor types
  come from the ONNX file, so ``fp16`` needs an FP16 ONNX and ``int8`` a Q/DQ ONNX.

DLA: FP16 or INT8 only, static shapes only (min = opt = max, see
:func:`edge_mmer.convert.profiles.static_profile_for_dla`), GPU fallback for the layers it cannot run.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_mmer.bundle.plans import probe_device_facts
from edge_mmer.bundle.shapes import ShapeProfile, ShapeRange
from edge_mmer.errors import BuildOptionsError, TensorRTBuildError
from edge_mmer.hashing import sha256_bytes, sha256_file
from edge_mmer.vocab import PLAN_PRECISIONS as PRECISIONS

logger = logging.getLogger(__name__)

_ONNX_FLOAT16 = 10  # onnx.TensorProto.FLOAT16
_QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})

Dim = int | str | None


@dataclass
class TensorRTBuildOptions:
    """How to build one plan. ``profiles`` takes a :class:`ShapeProfile` or the dict that
    :func:`~edge_mmer.convert.profiles.derive_profiles` returns; it is stored as a ShapeProfile."""

    precision: str = "fp16"
    workspace_mib: int = 1024
    timing_cache: Path | None = None
    dla_core: int | None = None
    gpu_fallback: bool = True
    strongly_typed: bool = False
    profiles: ShapeProfile | Mapping[str, ShapeRange] | None = None

    def __post_init__(self) -> None:
        if self.profiles is not None and not isinstance(self.profiles, ShapeProfile):
            try:
                self.profiles = ShapeProfile(self.profiles)
            except (ValueError, TypeError) as exc:
                raise BuildOptionsError(str(exc)) from exc
        if self.timing_cache is not None:
            self.timing_cache = Path(self.timing_cache)
        self.validate()

    @property
    def profile(self) -> ShapeProfile | None:
        p = self.profiles
        return p if isinstance(p, ShapeProfile) or p is None else ShapeProfile(p)

    def validate(self) -> None:
        """Raise :class:`BuildOptionsError` for a combination TensorRT would refuse or silently misbuild."""
        if self.precision not in PRECISIONS:
            raise BuildOptionsError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if isinstance(self.workspace_mib, bool) or not isinstance(self.workspace_mib, int) or self.workspace_mib < 1:
            raise BuildOptionsError(f"workspace_mib must be an integer >= 1, got {self.workspace_mib!r}")
        if self.dla_core is None:
            return
        if isinstance(self.dla_core, bool) or not isinstance(self.dla_core, int) or self.dla_core < 0:
            raise BuildOptionsError(f"dla_core must be None or an integer >= 0, got {self.dla_core!r}")
        if self.precision == "fp32":
            raise BuildOptionsError("DLA runs FP16 or INT8 only: use precision 'fp16' or 'int8' with dla_core")
        profile = self.profile
        if profile is not None and not profile.is_static:
            raise BuildOptionsError(
                f"DLA needs static shapes (min = opt = max); dynamic in this profile: {', '.join(profile.dynamic_inputs)} "
                "(use static_profile_for_dla)"
            )


def _onnx_facts(onnx_path: Path) -> tuple[dict[str, tuple[Dim, ...]], bool, bool] | None:
    """(graph inputs -> dims, has Q/DQ nodes, has FP16 tensors), or None when ``onnx`` is not installed."""
    try:
        import onnx  # optional here: TensorRT's parser does not need it
    except ImportError:
        logger.warning("onnx is not installed: skipping the ONNX checks before the TensorRT build")
        return None
    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as exc:
        raise BuildOptionsError(f"{onnx_path}: not a readable ONNX model ({exc})") from exc
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    inputs: dict[str, tuple[Dim, ...]] = {}
    for vi in graph.input:
        if vi.name in initializers:
            continue
        dims: list[Dim] = []
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(int(d.dim_value))
            else:
                dims.append(d.dim_param or None)
        inputs[vi.name] = tuple(dims)

    def all_nodes(g: Any) -> Any:
        for node in g.node:
            yield node
            for attr in node.attribute:
                if attr.HasField("g"):
                    yield from all_nodes(attr.g)
                for sub in attr.graphs:
                    yield from all_nodes(sub)

    nodes = list(all_nodes(graph))
    for fn in model.functions:
        nodes.extend(fn.node)
    has_qdq = any(n.op_type in _QDQ_OPS for n in nodes)
    has_fp16 = (
        any(t.data_type == _ONNX_FLOAT16 for t in graph.initializer)
        or any(
            vi.type.tensor_type.elem_type == _ONNX_FLOAT16
            for vi in [*graph.input, *graph.output, *graph.value_info]
        )
        or any(
            n.op_type == "Cast" and any(a.name == "to" and a.i == _ONNX_FLOAT16 for a in n.attribute) for n in nodes
        )
    )
    return inputs, has_qdq, has_fp16


def preflight(onnx_path: Path, options: TensorRTBuildOptions) -> dict[str, tuple[Dim, ...]]:
    """Every check that needs no TensorRT; returns the ONNX graph inputs (empty if ``onnx`` is missing).

    Raises :class:`BuildOptionsError` for: invalid options, a missing file, a profile naming an input
    the model lacks or disagreeing with a fixed dimension, a dynamic input without a profile, INT8
    without Q/DQ nodes, a strongly typed FP16 build of a model without FP16 tensors.
    """
    options.validate()
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise BuildOptionsError(f"{onnx_path}: no such ONNX file")
    facts = _onnx_facts(onnx_path)
    if facts is None:
        return {}
    inputs, has_qdq, has_fp16 = facts
    where = onnx_path.name
    if options.precision == "int8" and not has_qdq:
        raise BuildOptionsError(
            f"{where}: precision 'int8' needs a Q/DQ model (QuantizeLinear/DequantizeLinear nodes); "
            "TensorRT 10 builds here use explicit quantization, no calibrator: quantize the ONNX first"
        )
    if options.strongly_typed and options.precision == "fp16" and not has_fp16:
        raise BuildOptionsError(
            f"{where}: a strongly typed build takes tensor types from the ONNX file and this one has no FP16 "
            "tensors: convert it to FP16 first, or build with strongly_typed=False"
        )
    shapes = options.profile.shapes if options.profile is not None else {}
    for name in shapes:
        if name not in inputs:
            raise BuildOptionsError(
                f"{where}: the profile names input '{name}', the model's inputs are {', '.join(inputs) or 'none'}"
            )
    for name, dims in inputs.items():
        dynamic = [i for i, d in enumerate(dims) if not isinstance(d, int)]
        if name not in shapes:
            if dynamic:
                axes = ", ".join(str(dims[i]) if dims[i] else f"axis {i}" for i in dynamic)
                raise BuildOptionsError(f"{where}: input '{name}' has dynamic axes ({axes}) and no profile")
            continue
        lo, opt, hi = shapes[name]
        if len(lo) != len(dims):
            raise BuildOptionsError(f"{where}: input '{name}' has rank {len(dims)}, its profile rank {len(lo)}")
        for i, d in enumerate(dims):
            if isinstance(d, int) and not lo[i] == opt[i] == hi[i] == d:
                raise BuildOptionsError(
                    f"{where}: input '{name}' axis {i} is fixed at {d}, the profile says {lo[i]}/{opt[i]}/{hi[i]}"
                )
    return inputs


def tensorrt_available() -> tuple[bool, str]:
    """(True, "TensorRT x.y") when TensorRT imports and can create a builder on a GPU; else (False, why)."""
    try:
        import tensorrt as trt
    except Exception as exc:
        return False, f"TensorRT is not installed (import tensorrt: {exc})"
    version = str(getattr(trt, "__version__", "?"))
    try:
        builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
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


def _build_with_tensorrt(onnx_path: Path, options: TensorRTBuildOptions) -> tuple[bytes, dict[str, Any]]:
    """The only function that drives TensorRT. Returns the plan and what the build did."""
    import tensorrt as trt

    severity = trt.ILogger.Severity
    levels = {
        severity.INTERNAL_ERROR: logging.CRITICAL,
        severity.ERROR: logging.ERROR,
        severity.WARNING: logging.WARNING,
        severity.INFO: logging.INFO,
        severity.VERBOSE: logging.DEBUG,
    }

    class _Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, sev: Any, msg: str) -> None:
            level = levels.get(sev, logging.INFO)
            if logger.isEnabledFor(level):
                logger.log(level, "TensorRT: %s", msg)

    trt_logger = _Logger()
    builder = trt.Builder(trt_logger)
    if builder is None:
        raise TensorRTBuildError(f"{onnx_path}: TensorRT could not create a builder (no usable CUDA GPU?)")

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

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mib << 20)

    builder_flags: list[str] = []
    if not options.strongly_typed:
        if options.precision in ("fp16", "int8"):
            builder_flags.append("FP16")
        if options.precision == "int8":
            builder_flags.append("INT8")  # Q/DQ model: explicit quantization, no calibrator

    dla: dict[str, Any] | None = None
    if options.dla_core is not None:
        n_dla = int(builder.num_DLA_cores)
        if options.dla_core >= n_dla:
            raise TensorRTBuildError(
                f"{onnx_path}: DLA core {options.dla_core} requested, this device has {n_dla} DLA core(s)"
            )
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = options.dla_core
        if options.gpu_fallback:
            builder_flags.append("GPU_FALLBACK")
        dla = {"core": options.dla_core, "gpu_fallback": options.gpu_fallback}
    for name in builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, name))

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

    cache_loaded = False
    cache_path = options.timing_cache
    if cache_path is not None:
        data = cache_path.read_bytes() if cache_path.is_file() else b""
        cache = config.create_timing_cache(data)
        if not config.set_timing_cache(cache, ignore_mismatch=False):
            logger.warning("timing cache %s does not match this TensorRT/GPU; starting an empty one", cache_path)
            cache = config.create_timing_cache(b"")
            config.set_timing_cache(cache, ignore_mismatch=False)
        else:
            cache_loaded = bool(data)

    plan = builder.build_serialized_network(network, config)
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
        "builder_flags": builder_flags,
        "dla": dla,
        "timing_cache": None if cache_path is None else {"path": str(cache_path), "loaded": cache_loaded},
    }
    return bytes(plan), done


def build_plan(onnx_path: Path, options: TensorRTBuildOptions) -> tuple[bytes, dict[str, Any]]:
    """Build a TensorRT plan from ``onnx_path``; return it with the facts to record beside it.

    The facts: TensorRT version, GPU name and compute capability, L4T release (Jetson), CUDA version,
    precision, strongly typed, builder flags, DLA settings, profile ranges, ONNX and plan sha256.
    :func:`edge_mmer.convert.device_facts.plan_compatibility` compares them with a device later.
    """
    onnx_path = Path(onnx_path)
    preflight(onnx_path, options)
    ok, reason = tensorrt_available()
    if not ok:
        raise TensorRTBuildError(f"cannot build a plan from {onnx_path}: {reason}")
    started = time.monotonic()
    plan, done = _build_with_tensorrt(onnx_path, options)
    seconds = time.monotonic() - started
    device = probe_device_facts()
    if device.gpu_name is None:
        logger.warning("GPU name not recorded (install pycuda or cuda-python): runtimes will refuse this plan")
    facts: dict[str, Any] = {
        **device.to_record(),
        "tensorrt_version": done["tensorrt_version"],
        "precision": options.precision,
        "strongly_typed": options.strongly_typed,
        "builder_flags": done["builder_flags"],
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
    logger.info("built %s (%s, %d bytes) in %.1f s", onnx_path.name, options.precision, len(plan), seconds)
    return plan, facts
