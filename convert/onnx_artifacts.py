"""``edge-mmer convert``: a bundle's networks -> ONNX FP32 / FP16 artifacts, checked and recorded;
then the INT8 artifacts (:mod:`edge_mmer.convert.int8`) when asked.

Per network: export (opset 17, legacy exporter, :mod:`edge_mmer.convert.onnx_export`),
``onnx.checker``, onnxslim, structural checks (LSTM nodes present, the speech encoder runs at two
lengths), TensorRT operator check for the target release, parity against PyTorch on real validation
samples (:mod:`edge_mmer.convert.parity`; FP32 must be within 1e-4 or nothing is written), FP16
conversion with its own parity (recorded; a warning above 1e-2). Only when every network passed are
the files and ``networks.<name>.artifacts`` written, through :func:`edge_mmer.bundle.update_manifest`
(one writer per section), and the bundle re-verified.

The samples come from the bundle's own dataset, of any kind (``provenance.dataset.spec``; ``data``
replaces its path or gives a ``KIND:PATH`` spec: :func:`edge_mmer.datasets.resolve.resolve_dataset`),
through the training front ends. A bundle trained on precomputed features (CMU-MOSI ``.csd``, MMSA /
MulT pickles) has no encoders and is refused: its LSTMs take features no device computes from a
camera and a microphone, so there is nothing deployable to export.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_mmer.bundle import Bundle, read_bundle, update_manifest
from edge_mmer.calibration.from_dataset import inputs_from_dataset
from edge_mmer.convert.int8 import DriftThresholds, convert_int8
from edge_mmer.convert.parity import FP16_WARN, FP32_TOLERANCE, ParityResult, measure_parity
from edge_mmer.convert.runners import onnx_runner, torch_references
from edge_mmer.datasets.resolve import require_encoders, resolve_dataset
from edge_mmer.errors import ConvertError, DatasetMissingError, DatasetUnusableError, FeatureBundleError
from edge_mmer.provenance import versions as library_versions
from edge_mmer.vocab import CONVERT_PRECISIONS, ArtifactKind

if TYPE_CHECKING:
    from torch import nn

    from edge_mmer.calibration.inputs import NetworkInputs
    from edge_mmer.convert.onnx_export import ExportedGraph
    from edge_mmer.runner import Runner

log = logging.getLogger(__name__)

__all__ = ["ALL_PRECISIONS", "INT8_PRECISIONS", "PRECISIONS", "ConvertError", "ConvertOptions", "ConvertResult",
           "convert_bundle"]

ALL_PRECISIONS = CONVERT_PRECISIONS
PRECISIONS = tuple(p for p in ALL_PRECISIONS if not p.startswith("int8"))  # fp32, fp16: the ONNX export's
INT8_PRECISIONS = tuple(p for p in ALL_PRECISIONS if p.startswith("int8"))  # = edge_mmer.convert.quantize.INT8_FLAVOURS


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


def _onnx_kind(precision: str) -> ArtifactKind:
    """The artifact kind of an ONNX export precision (``fp16`` -> ``onnx-fp16``)."""
    return ArtifactKind(f"onnx-{precision}")


def _progress(items: list[str], enabled: bool) -> Any:
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc="convert", unit="network", leave=False, dynamic_ncols=True)


def _resolve(bundle: Bundle, data: str | os.PathLike[str] | None) -> Path | str:
    """The bundle's dataset (:func:`edge_mmer.datasets.resolve.resolve_dataset`); missing -> ConvertError."""
    try:
        return resolve_dataset(bundle, data)
    except DatasetMissingError as exc:
        raise ConvertError(str(exc)) from None


def _check_options(opts: ConvertOptions) -> None:
    from edge_mmer.convert.opcheck import TENSORRT_RELEASES

    bad = [p for p in opts.precisions if p not in ALL_PRECISIONS]
    if bad or not opts.precisions:
        raise ConvertError(f"precision {bad or opts.precisions!r}: expected a list of {', '.join(ALL_PRECISIONS)}")
    if opts.trt_version not in TENSORRT_RELEASES:
        raise ConvertError(f"TensorRT release {opts.trt_version!r}: expected one of {', '.join(TENSORRT_RELEASES)}")


def _check_bundle(opts: ConvertOptions, bundle: Bundle, int8: tuple[str, ...]) -> None:
    """Refuse a bundle that cannot give what was asked, before anything runs."""
    try:
        require_encoders(bundle)
    except FeatureBundleError as exc:
        raise ConvertError(str(exc)) from None
    if not int8:
        return
    nets = bundle.network_specs.values()
    if "fp32" not in opts.precisions and not all(ArtifactKind.ONNX_FP32 in n.artifacts for n in nets):
        raise ConvertError("INT8 is quantized from the onnx-fp32 artifacts, which this bundle lacks: "
                           "add fp32 to --precision")
    if not opts.overwrite_artifacts:
        clash = sorted({str(k) for n in nets for k in n.kinds if k in int8})
        if clash:
            raise ConvertError(f"{opts.bundle} already has {', '.join(clash)} artifacts; pass --overwrite-artifacts "
                               "to replace them")


def convert_bundle(opts: ConvertOptions) -> ConvertResult:
    """Convert every network of ``opts.bundle``; see the module docstring. Raises :class:`ConvertError`.

    FP32/FP16 first (when asked); then the INT8 flavours from the recorded ``onnx-fp32`` artifacts
    (:func:`edge_mmer.convert.int8.convert_int8`)."""
    _check_options(opts)
    int8 = tuple(p for p in opts.precisions if p in INT8_PRECISIONS)
    _check_bundle(opts, read_bundle(opts.bundle), int8)
    onnx_precisions = tuple(p for p in opts.precisions if p in PRECISIONS)
    result = _convert_onnx(opts, onnx_precisions) if onnx_precisions else ConvertResult(bundle_dir=Path(opts.bundle))
    if int8:
        _convert_int8(opts, int8, result)
    return result


def _convert_int8(opts: ConvertOptions, flavours: tuple[str, ...], result: ConvertResult) -> None:
    """The INT8 flavours from the recorded onnx-fp32 artifacts, added to ``result``."""
    dataset = _resolve(read_bundle(opts.bundle), opts.data)
    thresholds = DriftThresholds(opts.min_agreement, opts.max_accuracy_drop, opts.min_cosine)
    specs, added = convert_int8(Path(opts.bundle), flavours, dataset, calibration=opts.calibration,
                                calibration_utterances=opts.calibration_utterances,
                                calibrate_method=opts.calibrate_method, thresholds=thresholds,
                                drift_utterances=opts.drift_utterances, overwrite=opts.overwrite_artifacts,
                                progress=opts.progress, workers=opts.workers, cache_dir=opts.cache_dir)
    for name, kinds in specs.items():
        result.artifacts.setdefault(name, {}).update(kinds)
    result.added_bytes += added


def _convert_onnx(opts: ConvertOptions, precisions: tuple[str, ...]) -> ConvertResult:
    """The FP32/FP16 export, checks, parity and recording."""
    from edge_mmer.models.from_bundle import load_torch_networks

    bundle = read_bundle(opts.bundle)
    kinds = [_onnx_kind(p) for p in precisions]
    existing = {name: [k for k in kinds if k in net.artifacts] for name, net in bundle.network_specs.items()}
    clash = {n: k for n, k in existing.items() if k}
    if clash and not opts.overwrite_artifacts:
        shown = "; ".join(f"{n}: {', '.join(k)}" for n, k in clash.items())
        raise ConvertError(f"{opts.bundle} already has these artifacts ({shown}); "
                           "pass --overwrite-artifacts to replace them")
    dataset = _resolve(bundle, opts.data)
    nets = load_torch_networks(bundle)
    references = torch_references(bundle, nets)
    try:
        inputs = inputs_from_dataset(bundle, references, dataset, opts.samples, workers=opts.workers,
                                     cache_dir=opts.cache_dir, progress=opts.progress)
    except ValueError as exc:  # DatasetError (malformed), DatasetUnusableError (labels, features, empty split)
        raise ConvertError(f"parity samples: {exc}") from exc
    versions = library_versions("torch", "onnx", "onnxslim", "onnxruntime")
    staged = {name: _network_artifacts(opts, bundle, name, nets[name], references[name], inputs, precisions, versions)
              for name in _progress(list(bundle.network_specs), opts.progress)}
    return _record(opts, bundle, kinds, existing, staged)


def _network_artifacts(opts: ConvertOptions, bundle: Bundle, name: str, module: nn.Module, reference: Runner,
                       inputs: NetworkInputs, precisions: tuple[str, ...], versions: dict[str, str | None],
                       ) -> tuple[dict[str, Any], dict[str, bytes]]:
    """One network exported, checked and measured in each precision: (its artifacts, its files)."""
    from edge_mmer.convert.onnx_export import ExportError, export_network, to_fp16

    net = bundle.network(name)
    try:
        graph = export_network(name, module, net)
    except ExportError as exc:
        raise ConvertError(f"{name}: ONNX export failed: {exc}") from exc
    models: dict[str, tuple[Any, list[str]]] = {"fp32": (graph.model, [])}
    if "fp16" in precisions:
        models["fp16"] = to_fp16(graph.model, name)
    artifacts = net.artifact_table(without=[_onnx_kind(p) for p in precisions])
    files: dict[str, bytes] = {}
    for precision in precisions:
        model, fp32_ops = models[precision]
        data = model.SerializeToString()
        parity = _checked_parity(opts, bundle, name, precision, model, data, reference, inputs)
        rel = f"onnx/{name}.{precision}.onnx"
        files[rel] = data
        artifacts[_onnx_kind(precision)] = _onnx_spec(opts, rel, precision, graph, parity, inputs, versions, fp32_ops)
    return artifacts, files


def _checked_parity(opts: ConvertOptions, bundle: Bundle, name: str, precision: str, model: Any, data: bytes,
                    reference: Runner, inputs: NetworkInputs) -> ParityResult:
    """The TensorRT operator check and parity with PyTorch; an FP32 model over the limit is refused."""
    from edge_mmer.convert.opcheck import UnsupportedOpError, check_tensorrt_ops

    try:
        check_tensorrt_ops(model, opts.trt_version)
    except UnsupportedOpError as exc:
        raise ConvertError(f"{name} ({precision}): {exc}") from exc
    try:
        with onnx_runner(bundle, name, data) as runner:
            parity = measure_parity(name, reference, runner, inputs)
    except DatasetUnusableError as exc:
        raise ConvertError(f"{name} ({precision}): {exc}") from exc
    if precision == "fp32" and not parity.max_abs <= FP32_TOLERANCE:
        raise ConvertError(f"{name}: FP32 ONNX differs from PyTorch by {parity.max_abs:.3g} (max abs) on "
                           f"{parity.samples} real samples; the limit is {FP32_TOLERANCE:g}. Nothing was written")
    if precision == "fp16" and parity.max_abs > FP16_WARN:
        log.warning("%s: FP16 ONNX differs from PyTorch by %.3g (max abs, cosine %.6f) on %d samples",
                    name, parity.max_abs, parity.cosine, parity.samples)
    log.info("%s %s: max abs %.3g, cosine %.8f (%d samples)", name, precision, parity.max_abs, parity.cosine,
             parity.samples)
    return parity


def _onnx_spec(opts: ConvertOptions, rel: str, precision: str, graph: ExportedGraph, parity: ParityResult,
               inputs: NetworkInputs, versions: dict[str, str | None], fp32_ops: list[str]) -> dict[str, Any]:
    """The manifest entry of one ONNX artifact."""
    from edge_mmer.convert.onnx_export import OPSET

    spec: dict[str, Any] = {
        "file": rel,
        "format": "onnx",
        "opset": OPSET,
        "precision": precision,
        "io_dtype": "float32",
        "dynamic_axes": {io: {str(ax): n for ax, n in axes.items()} for io, axes in graph.dynamic_axes.items()},
        "parity": {**parity.to_dict(), "utterances": inputs.n_utterances, "provider": "CPUExecutionProvider"},
        "tensorrt_ops_checked": opts.trt_version,
        "exported_with": versions,
    }
    if precision == "fp16":
        spec["converter"] = "onnxruntime.transformers.float16 (keep_io_types)"
        spec["fp32_ops"] = fp32_ops
    return spec


def _record(opts: ConvertOptions, bundle: Bundle, kinds: list[ArtifactKind], existing: dict[str, list[ArtifactKind]],
            staged: dict[str, tuple[dict[str, Any], dict[str, bytes]]]) -> ConvertResult:
    """Write every network's ONNX artifacts (replacing the old files of the kinds written); verify."""
    result = ConvertResult(bundle_dir=Path(opts.bundle))
    for name, (artifacts, files) in staged.items():
        old = bundle.network(name).artifact_files(kinds)
        update_manifest(opts.bundle, f"networks.{name}.artifacts", artifacts, new_files=files,
                        remove_files=sorted(old - set(files)))
        others = [k for k in artifacts if k not in kinds]
        if others and existing[name]:
            log.warning("%s: kept artifacts %s built from the previous ONNX export: rebuild them", name, others)
        result.artifacts[name] = {k: artifacts[k] for k in kinds}
        result.added_bytes += sum(len(b) for b in files.values())
    read_bundle(opts.bundle)  # what we wrote must verify
    return result
