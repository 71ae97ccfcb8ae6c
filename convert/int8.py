"""The INT8 step of ``edge-mmer convert``: a bundle's INT8 artifacts, with their calibration and
drift recorded in the manifest.

This module works on the bundle; :mod:`edge_mmer.convert.quantize` builds one network's Q/DQ graph
and :mod:`edge_mmer.convert.drift` measures drift. The steps, per flavour (``int8-cpu``,
``int8-trt``):

1. the sources: every network's recorded ``onnx-fp32`` artifact; the networks with
   ``Conv``/``Gemm``/``MatMul`` nodes (the encoders, the fusion step graph's output layer) are the
   ones quantized. The context LSTM step graphs have nothing to quantize: they get no INT8 artifact
   (a log line says so) and the INT8 pipeline keeps them FP32;
2. the calibration set: given, or built from the dataset's *train* split and saved beside the
   bundle as ``<bundle>.calibration.npz`` (the manifest records its sha256 and provenance);
3. quantization of each of those networks;
4. drift on the dataset's **test** split (evaluation only; never calibration), through the
   runtime's decision path (:mod:`edge_mmer.convert.drift`), against :class:`DriftThresholds`: an
   artifact that misses them is written and marked ``deployable: false`` with the reasons;
5. the record: ``networks.<name>.artifacts[<flavour>]`` and the files, through
   :func:`edge_mmer.bundle.update_manifest`, and the bundle re-verified.

The dataset is the bundle's own, of any kind (:func:`edge_mmer.datasets.resolve.resolve_dataset`),
through the training front ends (:func:`edge_mmer.datasets.resolve.prepare_split`): defective media
is skipped and counted, as in training.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_mmer.bundle import Bundle, read_bundle, update_manifest
from edge_mmer.calibration.from_dataset import build_from_dataset
from edge_mmer.calibration.sets import CalibrationError, CalibrationSet, load_calibration_set, save_calibration_set
from edge_mmer.convert.drift import DriftThresholds, FlavourDrift, measure_drift
from edge_mmer.convert.quantize import QUANTIZED_OP_TYPES, QuantizeError, quantize_int8
from edge_mmer.datasets.resolve import open_bundle_dataset, usable_split
from edge_mmer.decision import DecisionHead
from edge_mmer.errors import ConvertError
from edge_mmer.vocab import ArtifactKind

log = logging.getLogger(__name__)

__all__ = ["DriftThresholds", "convert_int8", "prepare_test_split"]

Specs = dict[str, dict[str, dict[str, Any]]]  # network -> artifact kind -> manifest spec


@dataclass(frozen=True)
class _Calibration:
    samples: CalibrationSet
    spec: dict[str, Any]  # what each INT8 artifact records about it


def _has_quantizable(data: bytes) -> bool:
    import onnx

    model = onnx.load_from_string(data)
    return any(n.op_type in QUANTIZED_OP_TYPES for n in model.graph.node)


def _sources(bundle: Bundle, bundle_dir: Path, flavours: tuple[str, ...], overwrite: bool
             ) -> tuple[dict[str, bytes], list[str]]:
    """Every network's FP32 ONNX model, and the networks to quantize (those with a Conv/Gemm/MatMul)."""
    missing = [n for n, net in bundle.network_specs.items() if ArtifactKind.ONNX_FP32 not in net.artifacts]
    if missing:
        raise ConvertError(f"INT8 needs the onnx-fp32 artifact of every network ({', '.join(missing)} lack it): "
                           "add fp32 to --precision")
    clash = {n: [f for f in flavours if f in net.artifacts] for n, net in bundle.network_specs.items()}
    clash = {n: k for n, k in clash.items() if k}
    if clash and not overwrite:
        shown = "; ".join(f"{n}: {', '.join(k)}" for n, k in clash.items())
        raise ConvertError(f"{bundle_dir} already has these artifacts ({shown}); "
                           "pass --overwrite-artifacts to replace them")
    fp32 = {n: bundle.read_bytes(_fp32_file(bundle, n)) for n in bundle.network_specs}
    targets = [n for n in bundle.network_specs if _has_quantizable(fp32[n])]
    for n in bundle.network_specs:
        if n not in targets:
            log.info("%s: no Conv/Gemm/MatMul node (LSTM only): no INT8 artifact, the INT8 pipeline runs it in FP32", n)
    return fp32, targets


def _given_calibration(bundle: Bundle, path: Path) -> CalibrationSet:
    try:
        cs = load_calibration_set(path)
    except CalibrationError as exc:
        raise ConvertError(str(exc)) from None
    if cs.provenance.get("split") == "test" or str(cs.provenance.get("source", "")).endswith(":test"):
        raise ConvertError(f"{path}: built from the test split; calibration must never see the test split")
    if cs.provenance.get("model_id") not in (None, bundle.model_id):
        log.warning("calibration set %s was built for model %s, this bundle is %s", path,
                    cs.provenance.get("model_id"), bundle.model_id)
    return cs


def _built_calibration(bundle: Bundle, bundle_dir: Path, dataset: Path | str, utterances: int, *, progress: bool,
                       workers: int, cache_dir: Path | None) -> CalibrationSet:
    try:
        cs = build_from_dataset(bundle, dataset, "train", utterances, progress=progress, workers=workers,
                                cache_dir=cache_dir)
    except ValueError as exc:
        raise ConvertError(f"calibration set: {exc}") from exc
    # kept beside the bundle, not in it: face crops make it tens of MB, and the device
    # needs only its hash (to know which calibration an INT8 artifact came from)
    path = Path(bundle_dir).parent / f"{Path(bundle_dir).name}.calibration.npz"
    save_calibration_set(cs, path)
    log.info("calibration set saved to %s (%.1f MB, outside the bundle; its sha256 is recorded)",
             path, path.stat().st_size / 1e6)
    return cs


def _calibration(bundle: Bundle, bundle_dir: Path, targets: list[str], given: Path | None, dataset: Path | str,
                 utterances: int, *, progress: bool, workers: int, cache_dir: Path | None) -> _Calibration:
    """The calibration set (given, or built from the train split and saved beside the bundle)."""
    if given is not None:
        cs = _given_calibration(bundle, given)
    else:
        cs = _built_calibration(bundle, bundle_dir, dataset, utterances, progress=progress, workers=workers,
                                cache_dir=cache_dir)
    lacking = [n for n in targets if not cs.arrays.get(n)]
    if lacking:
        raise ConvertError(f"calibration set has no samples for {', '.join(lacking)}")
    spec = {"sha256": cs.provenance["sha256"], "file": None,
            "provenance": {k: v for k, v in cs.provenance.items() if k != "sha256"}}
    return _Calibration(cs, spec)


def _quantize(fp32: dict[str, bytes], targets: list[str], flavours: tuple[str, ...], cs: CalibrationSet,
              calibrate_method: str) -> dict[str, dict[str, tuple[bytes, dict[str, Any]]]]:
    """flavour -> network -> (Q/DQ model, quantization facts)."""
    from edge_mmer.calibration.reader import CalibrationReader

    quantized: dict[str, dict[str, tuple[bytes, dict[str, Any]]]] = {f: {} for f in flavours}
    with tempfile.TemporaryDirectory(prefix="edge-mmer-int8-") as tmp:
        src_dir = Path(tmp)
        for name in targets:
            src = src_dir / f"{name}.fp32.onnx"
            src.write_bytes(fp32[name])
            for flavour in flavours:
                out = src_dir / f"{name}.{flavour}.onnx"
                try:
                    facts = quantize_int8(src, out, flavour, CalibrationReader.from_set(cs, name),
                                          calibrate_method=calibrate_method)
                except QuantizeError as exc:
                    raise ConvertError(f"{name}: {exc}") from exc
                quantized[flavour][name] = (out.read_bytes(), facts)
    return quantized


def prepare_test_split(bundle: Bundle, dataset: Path | str, n: int | None, *, workers: int = 1,
                  cache_dir: Path | None = None, progress: bool = False) -> list[list[Any]]:
    """The first ``n`` usable test utterances (all with None) through the training front ends."""
    try:
        ds = open_bundle_dataset(bundle, dataset)
        out, _ = usable_split(bundle, ds, "test", n, dataset=dataset, purpose=" to measure INT8 drift on",
                              workers=workers, cache_dir=cache_dir, progress=progress)
    except ValueError as exc:  # DatasetError, DatasetUnusableError
        raise ConvertError(f"INT8 drift: {exc}") from exc
    return out


def _failing(drift: FlavourDrift, cosine: float, name: str, thresholds: DriftThresholds) -> list[str]:
    """Why an artifact is not deployable (empty: it is)."""
    out = []
    if drift.agreement < thresholds.min_agreement:
        out.append(f"top-1 agreement {drift.agreement:.4f} < {thresholds.min_agreement}")
    if drift.accuracy_drop > thresholds.max_accuracy_drop:
        out.append(f"accuracy drop {drift.accuracy_drop:.4f} > {thresholds.max_accuracy_drop}")
    if not cosine >= thresholds.min_cosine:
        out.append(f"{name} cosine {cosine:.4f} < {thresholds.min_cosine}")
    return out


def _fp32_file(bundle: Bundle, name: str) -> str:
    """The file of ``name``'s onnx-fp32 artifact, which INT8 is quantized from."""
    art = bundle.artifact(name, ArtifactKind.ONNX_FP32)
    if art is None:
        raise ConvertError(f"{bundle.path}: network '{name}' has no onnx-fp32 artifact to quantize")
    return art.file


def _artifact_spec(bundle: Bundle, name: str, flavour: str, facts: dict[str, Any], calibration: _Calibration,
                   drift: FlavourDrift, thresholds: DriftThresholds) -> dict[str, Any]:
    net = drift.networks[name]
    failing = _failing(drift, net["cosine"], name, thresholds)
    if failing:
        log.warning("%s %s: NOT deployable: %s (artifact written, marked deployable=false)", name, flavour,
                    "; ".join(failing))
    e2e = drift.end_to_end
    log.info("%s %s: cosine %.6f, max abs %.3g vs FP32; end to end agreement %.4f, accuracy %.4f -> %.4f",
             name, flavour, net["cosine"], net["max_abs"], drift.agreement, e2e["accuracy_fp32"], e2e["accuracy_int8"])
    return {
        "file": f"onnx/{name}.{flavour}.onnx", "format": "onnx", "precision": "int8", "io_dtype": "float32",
        "quantization": facts,
        "source": _fp32_file(bundle, name),
        "calibration": calibration.spec,
        "drift": {"network": net, "end_to_end": e2e},
        "thresholds": {"min_agreement": thresholds.min_agreement, "max_accuracy_drop": thresholds.max_accuracy_drop,
                       "min_cosine": thresholds.min_cosine},
        "deployable": not failing,
        "not_deployable_because": failing,
    }


def _record(bundle_dir: Path, flavours: tuple[str, ...], calibration: _Calibration, staged: Specs,
            files: dict[str, dict[str, bytes]]) -> int:
    """Write the artifacts and their manifest entries (replacing the flavours' old files); bytes added."""
    update_manifest(bundle_dir, "provenance.calibration_set_sha256", calibration.spec["sha256"])
    bundle = read_bundle(bundle_dir)
    added = 0
    for name, kinds in staged.items():
        net = bundle.network(name)
        old = net.artifact_files(flavours)
        artifacts = net.artifact_table(without=flavours)
        artifacts.update(kinds)
        update_manifest(bundle_dir, f"networks.{name}.artifacts", artifacts, new_files=files[name],
                        remove_files=sorted(old - set(files[name])))
        added += sum(len(b) for b in files[name].values())
    read_bundle(bundle_dir)
    return added


def convert_int8(bundle_dir: Path, flavours: tuple[str, ...], dataset: Path | str, *, calibration: Path | None,
                 calibration_utterances: int, calibrate_method: str, thresholds: DriftThresholds,
                 drift_utterances: int | None, overwrite: bool, progress: bool, workers: int = 1,
                 cache_dir: Path | None = None) -> tuple[Specs, int]:
    """Quantize, measure and record (see the module docstring); returns (network -> kind -> spec,
    bytes added). ``dataset`` is what :func:`edge_mmer.datasets.resolve.resolve_dataset` gives (a
    synthetic directory or a ``KIND:PATH`` spec); ``workers`` / ``cache_dir`` feed its front ends as
    in training. Raises :class:`~edge_mmer.errors.ConvertError` when it cannot proceed."""
    bundle = read_bundle(bundle_dir)
    fp32, targets = _sources(bundle, bundle_dir, flavours, overwrite)
    calib = _calibration(bundle, bundle_dir, targets, calibration, dataset, calibration_utterances,
                         progress=progress, workers=workers, cache_dir=cache_dir)
    quantized = _quantize(fp32, targets, flavours, calib.samples, calibrate_method)
    prepared = prepare_test_split(bundle, dataset, drift_utterances, workers=workers, cache_dir=cache_dir,
                             progress=progress)
    _, drift = measure_drift(bundle, fp32, {f: {n: q[0] for n, q in nets.items()} for f, nets in quantized.items()},
                             prepared, DecisionHead.from_bundle(bundle))
    staged: Specs = {n: {} for n in targets}
    files: dict[str, dict[str, bytes]] = {n: {} for n in targets}
    for flavour in flavours:
        for name in targets:
            data, facts = quantized[flavour][name]
            spec = _artifact_spec(bundle, name, flavour, facts, calib, drift[flavour], thresholds)
            files[name][spec["file"]] = data
            staged[name][flavour] = spec
    return staged, _record(bundle_dir, flavours, calib, staged, files)
