"""``edge-mmer convert``: a bundle's networks -> ONNX FP32 / FP16 artifacts, checked and recorded.

Per network: export (opset 17, legacy exporter), ``onnx.checker``, onnxslim, structural checks
(LSTM nodes present, the speech encoder runs at two lengths), TensorRT operator check for the
target release, parity against PyTorch on real validation samples (FP32 must be within 1e-4 or
nothing is written), FP16 conversion with its own parity (recorded; a warning above 1e-2). Only
when every network passed are the files and ``networks.<name>.artifacts`` written, through
:func:`edge_mmer.bundle.update_manifest` (one writer per section), and the bundle re-verified.

The samples come from the bundle's own dataset, of any kind (``provenance.dataset.spec``; ``data``
replaces its path or gives a ``KIND:PATH`` spec: :func:`edge_mmer.convert.parity.resolve_dataset`),
through the training front ends. A bundle trained on precomputed features (CMU-MOSI ``.csd``, MMSA /
MulT pickles) has no encoders and is refused: its LSTMs take features no device computes from a
camera and a microphone, so there is nothing deployable to export.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_mmer.bundle import read_bundle, update_manifest
from edge_mmer.errors import ConvertError
from edge_mmer.provenance import versions as library_versions

logger = logging.getLogger(__name__)

__all__ = ["ALL_PRECISIONS", "INT8_PRECISIONS", "PRECISIONS", "ConvertError", "ConvertOptions", "ConvertResult",
           "convert_bundle"]

PRECISIONS = ("fp32", "fp16")
INT8_PRECISIONS = ("int8-cpu", "int8-trt")  # = edge_mmer.convert.quantize.INT8_FLAVOURS
ALL_PRECISIONS = (*PRECISIONS, *INT8_PRECISIONS)


@dataclass(frozen=True)
class ConvertOptions:
    bundle: Path
    precisions: tuple[str, ...] = PRECISIONS
    data: Path | str | None = None  # the dataset's path (recorded kind and options kept) or a KIND:PATH spec
    trt_version: str = "10.3"
    overwrite_artifacts: bool = False
    samples: int = 16
    progress: bool = True
    # INT8 (int8-cpu / int8-trt in precisions): calibration set file, or built from the train split
    calibration: Path | None = None
    calibration_utterances: int = 200
    calibrate_method: str = "minmax"
    drift_utterances: int | None = None  # test utterances for the drift figures (None: the whole split)
    min_agreement: float = 0.99
    max_accuracy_drop: float = 0.01
    min_cosine: float = 0.99
    # the front ends over the dataset, as in training: processes and the feature cache (None: off)
    workers: int = 1
    cache_dir: Path | None = None


@dataclass
class ConvertResult:
    bundle_dir: Path
    artifacts: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # network -> kind -> spec
    added_bytes: int = 0


def _progress(items: list[str], enabled: bool) -> Any:
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc="convert", unit="network", leave=False, dynamic_ncols=True)


def convert_bundle(opts: ConvertOptions) -> ConvertResult:
    """Convert every network of ``opts.bundle``; see the module docstring. Raises :class:`ConvertError`.

    FP32/FP16 first (when asked); then the INT8 flavours from the recorded ``onnx-fp32`` artifacts
    (:func:`edge_mmer.convert.int8.convert_int8`)."""
    from edge_mmer.convert.opcheck import TENSORRT_RELEASES

    bad = [p for p in opts.precisions if p not in ALL_PRECISIONS]
    if bad or not opts.precisions:
        raise ConvertError(f"precision {bad or opts.precisions!r}: expected a list of {', '.join(ALL_PRECISIONS)}")
    if opts.trt_version not in TENSORRT_RELEASES:
        raise ConvertError(f"TensorRT release {opts.trt_version!r}: expected one of {', '.join(TENSORRT_RELEASES)}")
    from edge_mmer.convert.parity import FeatureBundleError, require_encoders

    bundle = read_bundle(opts.bundle)
    try:
        require_encoders(bundle)
    except FeatureBundleError as exc:
        raise ConvertError(str(exc)) from None
    int8 = tuple(p for p in opts.precisions if p in INT8_PRECISIONS)
    if int8:
        if "fp32" not in opts.precisions and not all("onnx-fp32" in n["artifacts"] for n in bundle.networks.values()):
            raise ConvertError("INT8 is quantized from the onnx-fp32 artifacts, which this bundle lacks: "
                               "add fp32 to --precision")
        if not opts.overwrite_artifacts:
            clash = sorted({k for n in bundle.networks.values() for k in n["artifacts"] if k in int8})
            if clash:
                raise ConvertError(f"{opts.bundle} already has {', '.join(clash)} artifacts; pass --overwrite-artifacts "
                                   "to replace them")
    onnx_precisions = tuple(p for p in opts.precisions if p in PRECISIONS)
    result = _convert_onnx(opts, onnx_precisions) if onnx_precisions else ConvertResult(bundle_dir=Path(opts.bundle))
    if int8:
        from edge_mmer.convert.int8 import DriftThresholds, convert_int8
        from edge_mmer.convert.parity import DatasetMissingError

        try:
            dataset = _resolve(read_bundle(opts.bundle), opts.data)
        except DatasetMissingError as exc:
            raise ConvertError(str(exc)) from None
        thresholds = DriftThresholds(opts.min_agreement, opts.max_accuracy_drop, opts.min_cosine)
        specs, added = convert_int8(Path(opts.bundle), int8, dataset, calibration=opts.calibration,
                                    calibration_utterances=opts.calibration_utterances,
                                    calibrate_method=opts.calibrate_method, thresholds=thresholds,
                                    drift_utterances=opts.drift_utterances, overwrite=opts.overwrite_artifacts,
                                    progress=opts.progress, workers=opts.workers, cache_dir=opts.cache_dir)
        for name, kinds in specs.items():
            result.artifacts.setdefault(name, {}).update(kinds)
        result.added_bytes += added
    return result


def _convert_onnx(opts: ConvertOptions, precisions: tuple[str, ...]) -> ConvertResult:
    """The FP32/FP16 export, checks, parity and recording."""
    from edge_mmer.convert.opcheck import UnsupportedOpError, check_tensorrt_ops

    bundle = read_bundle(opts.bundle)
    kinds = [f"onnx-{p}" for p in precisions]
    existing = {name: [k for k in kinds if k in net["artifacts"]] for name, net in bundle.networks.items()}
    clash = {n: k for n, k in existing.items() if k}
    if clash and not opts.overwrite_artifacts:
        shown = "; ".join(f"{n}: {', '.join(k)}" for n, k in clash.items())
        raise ConvertError(f"{opts.bundle} already has these artifacts ({shown}); pass --overwrite-artifacts to replace them")

    from edge_mmer.convert.onnx_export import OPSET, ExportError, export_network, ort_session, to_fp16
    from edge_mmer.convert.parity import (
        FP16_WARN,
        FP32_TOLERANCE,
        DatasetMissingError,
        DatasetUnusableError,
        build_parity_inputs,
        measure_parity,
    )
    from edge_mmer.models.from_bundle import load_torch_networks

    try:
        dataset = _resolve(bundle, opts.data)
    except DatasetMissingError as exc:
        raise ConvertError(str(exc)) from None
    nets = load_torch_networks(bundle)
    try:
        inputs = build_parity_inputs(bundle, nets, dataset, opts.samples, workers=opts.workers,
                                     cache_dir=opts.cache_dir, progress=opts.progress)
    except ValueError as exc:  # DatasetError (malformed), DatasetUnusableError (labels, features, empty split)
        raise ConvertError(f"parity samples: {exc}") from exc
    versions = library_versions("torch", "onnx", "onnxslim", "onnxruntime")

    staged: dict[str, tuple[dict[str, Any], dict[str, bytes]]] = {}
    for name in _progress(list(bundle.networks), opts.progress):
        entry = bundle.networks[name]
        try:
            graph = export_network(name, nets[name], entry)
        except ExportError as exc:
            raise ConvertError(f"{name}: ONNX export failed: {exc}") from exc
        models: dict[str, tuple[Any, list[str]]] = {"fp32": (graph.model, [])}
        if "fp16" in precisions:
            models["fp16"] = to_fp16(graph.model, name)
        artifacts = {k: v for k, v in entry["artifacts"].items() if k not in kinds}
        files: dict[str, bytes] = {}
        for precision in precisions:
            model, fp32_ops = models[precision]
            try:
                check_tensorrt_ops(model, opts.trt_version)
            except UnsupportedOpError as exc:
                raise ConvertError(f"{name} ({precision}): {exc}") from exc
            data = model.SerializeToString()
            try:
                parity = measure_parity(name, entry, nets[name], ort_session(data), inputs)
            except DatasetUnusableError as exc:
                raise ConvertError(f"{name} ({precision}): {exc}") from exc
            if precision == "fp32" and not parity.max_abs <= FP32_TOLERANCE:
                raise ConvertError(f"{name}: FP32 ONNX differs from PyTorch by {parity.max_abs:.3g} (max abs) on "
                                   f"{parity.samples} real samples; the limit is {FP32_TOLERANCE:g}. Nothing was written")
            if precision == "fp16" and parity.max_abs > FP16_WARN:
                logger.warning("%s: FP16 ONNX differs from PyTorch by %.3g (max abs, cosine %.6f) on %d samples",
                               name, parity.max_abs, parity.cosine, parity.samples)
            logger.info("%s %s: max abs %.3g, cosine %.8f (%d samples)", name, precision, parity.max_abs,
                        parity.cosine, parity.samples)
            rel = f"onnx/{name}.{precision}.onnx"
            files[rel] = data
            spec: dict[str, Any] = {
                "file": rel,
                "format": "onnx",
                "opset": OPSET,
                "precision": precision,
                "io_dtype": "float32",
                "dynamic_axes": {io: {str(ax): n for ax, n in axes.items()} for io, axes in graph.dynamic_axes.items()},
                "parity": {**parity.to_json(), "utterances": inputs.n_utterances, "provider": "CPUExecutionProvider"},
                "tensorrt_ops_checked": opts.trt_version,
                "exported_with": versions,
            }
            if precision == "fp16":
                spec["converter"] = "onnxruntime.transformers.float16 (keep_io_types)"
                spec["fp32_ops"] = fp32_ops
            artifacts[f"onnx-{precision}"] = spec
        staged[name] = (artifacts, files)

    result = ConvertResult(bundle_dir=Path(opts.bundle))
    for name, (artifacts, files) in staged.items():
        old = {spec["file"] for k, spec in bundle.networks[name]["artifacts"].items() if k in kinds}
        update_manifest(opts.bundle, f"networks.{name}.artifacts", artifacts, new_files=files,
                        remove_files=sorted(old - set(files)))
        others = [k for k in artifacts if k not in kinds]
        if others and existing[name]:
            logger.warning("%s: kept artifacts %s built from the previous ONNX export: rebuild them", name, others)
        result.artifacts[name] = {k: artifacts[k] for k in kinds}
        result.added_bytes += sum(len(b) for b in files.values())
    read_bundle(opts.bundle)  # what we wrote must verify
    return result


def _resolve(bundle: Any, data: str | os.PathLike[str] | None) -> Path | str:
    from edge_mmer.convert.parity import resolve_dataset

    return resolve_dataset(bundle, data)
