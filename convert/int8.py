"""INT8 artifacts of a converted bundle: quantize, measure drift on held-out data, record.

Per flavour (``int8-cpu``, ``int8-trt``; :mod:`edge_mmer.convert.quantize`) the networks with
``Conv``/``Gemm``/``MatMul`` nodes (the encoders, the fusion step graph's output layer) are
quantized from their recorded ``onnx-fp32`` artifact with a calibration set (given, or built from
the dataset's *train* split and saved beside the bundle as ``<bundle>.calibration.npz``; the
manifest records its sha256 and provenance). The context LSTM step graphs have nothing to
quantize: they get no INT8 artifact (a log line says so) and the INT8 pipeline keeps them FP32.

Drift is measured on the dataset's **test** split (evaluation only; never calibration): the whole
decision (encoders -> context steps -> masks -> fusion steps -> SVMs -> fuzzy integral, through
:class:`~edge_mmer.decision.DecisionHead`) runs once with the FP32 ONNX networks and once with the
INT8 ones substituted. Per network: cosine and max abs of its output against FP32 on the same
inputs; end to end: top-1 agreement and the accuracy delta.

The dataset is the bundle's own, of any kind (:func:`edge_mmer.convert.parity.resolve_dataset`),
through the training front ends (:func:`edge_mmer.convert.parity.prepare_split`): defective media
is skipped and counted, as in training.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_mmer.bundle import Bundle, read_bundle, update_manifest
from edge_mmer.vocab import STEP_NETWORKS

logger = logging.getLogger(__name__)

__all__ = ["DriftThresholds", "PipelineRun", "convert_int8", "run_onnx_pipeline"]



@dataclass(frozen=True)
class DriftThresholds:
    min_agreement: float = 0.99
    max_accuracy_drop: float = 0.01
    min_cosine: float = 0.99


@dataclass
class PipelineRun:
    """One pass of the ONNX pipeline over prepared sessions: per-network feeds and first outputs,
    the final decision per utterance and the labels."""

    feeds: dict[str, list[dict[str, np.ndarray]]] = field(default_factory=dict)
    outputs: dict[str, list[np.ndarray]] = field(default_factory=dict)
    predictions: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return float(np.mean(np.asarray(self.predictions) == np.asarray(self.labels))) if self.labels else float("nan")


def _io_names(entry: dict[str, Any], kind: str) -> list[str]:
    return [str(io["name"]) for io in entry[kind]]


def run_onnx_pipeline(bundle: Bundle, sessions: dict[str, Any], prepared: list[list[Any]], head: Any) -> PipelineRun:
    """The streaming decision over ``prepared`` sessions (lists of
    :class:`~edge_mmer.train.UtteranceInput`) with ONNX Runtime ``sessions`` per network: an
    utterance without a face skips the face context and fusion steps (their state carries over)
    and is decided on the speech channel alone, as in training and evaluation."""
    from edge_mmer.features.face import preprocess_faces

    cfg = bundle.config
    run = PipelineRun(feeds={n: [] for n in bundle.networks}, outputs={n: [] for n in bundle.networks})

    def call(name: str, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        entry = bundle.networks[name]
        out = sessions[name].run(_io_names(entry, "outputs"), feed)
        run.feeds[name].append(feed)
        run.outputs[name].append(out[0])
        return list(out)

    state_dims = {n: int(bundle.networks[n]["inputs"][1]["shape"][-1]) for n in STEP_NETWORKS}
    names = {n: _io_names(bundle.networks[n], "inputs") for n in bundle.networks}
    for session in prepared:
        state = {n: (np.zeros((1, d), np.float32), np.zeros((1, d), np.float32)) for n, d in state_dims.items()}

        def step(name: str, x: np.ndarray, state: dict[str, tuple[np.ndarray, np.ndarray]] = state) -> np.ndarray:
            h, c = state[name]
            x_name, h_name, c_name = names[name][:3]
            y, h, c = call(name, {x_name: np.ascontiguousarray(x, np.float32).reshape(1, -1), h_name: h, c_name: c})
            state[name] = (h, c)
            return np.asarray(y[0])

        for utt in session:
            s_feat = call("speech_encoder", {names["speech_encoder"][0]: np.ascontiguousarray(utt.mel[None], np.float32)})[0][0]
            s_ctx = step("speech_context", s_feat)
            channels: dict[str, np.ndarray | None] = {"speech": head.mask("speech", s_ctx), "face": None, "fused": None}
            if utt.faces is not None:
                x = preprocess_faces(list(utt.faces), cfg.face)
                f_feat = call("face_encoder", {names["face_encoder"][0]: np.ascontiguousarray(x, np.float32)})[0].mean(0)
                f_ctx = step("face_context", f_feat)
                channels["face"] = head.mask("face", f_ctx)
                joint = np.concatenate([channels["speech"], channels["face"]]).astype(np.float32)
                channels["fused"] = step("fusion", joint)
            run.predictions.append(head.decide(channels).label_index)
            run.labels.append(int(utt.label))
    return run


def _cosine_maxabs(ref: list[np.ndarray], got: list[np.ndarray]) -> tuple[float, float]:
    from edge_mmer.convert.parity import compare_outputs

    result = compare_outputs(ref, got)
    return result.cosine, result.max_abs


def _prepare_test(bundle: Bundle, dataset: Path | str, n: int | None, *, workers: int = 1,
                  cache_dir: Path | None = None, progress: bool = False) -> list[list[Any]]:
    """The first ``n`` usable test utterances (all with None) through the training front ends."""
    from edge_mmer.convert.parity import DatasetUnusableError, open_bundle_dataset, prepare_split

    ds = open_bundle_dataset(bundle, dataset)
    skipped: dict[str, int] = {}
    out = prepare_split(bundle, ds, "test", n, workers=workers, cache_dir=cache_dir, progress=progress,
                        skipped=skipped)
    if not out:
        why = f" ({', '.join(f'{k} {v}' for k, v in sorted(skipped.items()))} skipped)" if skipped else ""
        raise DatasetUnusableError(f"dataset {dataset} has no usable test utterances to measure INT8 drift on{why}")
    return out


def _has_quantizable(data: bytes) -> bool:
    import onnx

    from edge_mmer.convert.quantize import QUANTIZED_OP_TYPES

    model = onnx.load_from_string(data)
    return any(n.op_type in QUANTIZED_OP_TYPES for n in model.graph.node)


def convert_int8(bundle_dir: Path, flavours: tuple[str, ...], dataset: Path | str, *, calibration: Path | None,
                 calibration_utterances: int, calibrate_method: str, thresholds: DriftThresholds,
                 drift_utterances: int | None, overwrite: bool, progress: bool, workers: int = 1,
                 cache_dir: Path | None = None) -> tuple[dict[str, dict[str, dict[str, Any]]], int]:
    """Quantize, measure and record; returns (network -> kind -> spec, bytes added). ``dataset`` is
    what :func:`edge_mmer.convert.parity.resolve_dataset` gives (a synthetic directory or a
    ``KIND:PATH`` spec); ``workers`` / ``cache_dir`` feed its front ends as in training. Raises
    :class:`~edge_mmer.errors.ConvertError` when it cannot proceed."""
    from edge_mmer.calibration.from_dataset import build_from_dataset
    from edge_mmer.calibration.reader import CalibrationReader
    from edge_mmer.calibration.sets import CalibrationError, load_calibration_set, save_calibration_set
    from edge_mmer.convert.onnx_export import ort_session
    from edge_mmer.convert.quantize import QuantizeError, quantize_int8
    from edge_mmer.decision import DecisionHead
    from edge_mmer.errors import ConvertError

    bundle = read_bundle(bundle_dir)
    missing = [n for n, net in bundle.networks.items() if "onnx-fp32" not in net["artifacts"]]
    if missing:
        raise ConvertError(f"INT8 needs the onnx-fp32 artifact of every network ({', '.join(missing)} lack it): "
                           "add fp32 to --precision")
    clash = {n: [f for f in flavours if f in net["artifacts"]] for n, net in bundle.networks.items()}
    clash = {n: k for n, k in clash.items() if k}
    if clash and not overwrite:
        shown = "; ".join(f"{n}: {', '.join(k)}" for n, k in clash.items())
        raise ConvertError(f"{bundle_dir} already has these artifacts ({shown}); pass --overwrite-artifacts to replace them")
    fp32_bytes = {n: bundle.read_bytes(net["artifacts"]["onnx-fp32"]["file"]) for n, net in bundle.networks.items()}
    targets = [n for n in bundle.networks if _has_quantizable(fp32_bytes[n])]
    for n in bundle.networks:
        if n not in targets:
            logger.info("%s: no Conv/Gemm/MatMul node (LSTM only): no INT8 artifact, the INT8 pipeline runs it in FP32", n)

    # calibration set: given, or built from the train split and saved beside the bundle
    tmp = tempfile.TemporaryDirectory(prefix="edge-mmer-int8-")
    try:
        if calibration is not None:
            try:
                cs = load_calibration_set(calibration)
            except CalibrationError as exc:
                raise ConvertError(str(exc)) from None
            if cs.provenance.get("split") == "test" or str(cs.provenance.get("source", "")).endswith(":test"):
                raise ConvertError(f"{calibration}: built from the test split; calibration must never see the test split")
            if cs.provenance.get("model_id") not in (None, bundle.model_id):
                logger.warning("calibration set %s was built for model %s, this bundle is %s", calibration,
                               cs.provenance.get("model_id"), bundle.model_id)
            calib_file: str | None = None
        else:
            try:
                cs = build_from_dataset(bundle, dataset, "train", calibration_utterances, progress=progress,
                                        workers=workers, cache_dir=cache_dir)
            except ValueError as exc:
                raise ConvertError(f"calibration set: {exc}") from exc
            # kept beside the bundle, not in it: face crops make it tens of MB, and the device
            # needs only its hash (to know which calibration an INT8 artifact came from)
            path = Path(bundle_dir).parent / f"{Path(bundle_dir).name}.calibration.npz"
            save_calibration_set(cs, path)
            logger.info("calibration set saved to %s (%.1f MB, outside the bundle; its sha256 is recorded)",
                        path, path.stat().st_size / 1e6)
            calib_file = None
        lacking = [n for n in targets if not cs.arrays.get(n)]
        if lacking:
            raise ConvertError(f"calibration set has no samples for {', '.join(lacking)}")
        calib_spec = {"sha256": cs.provenance["sha256"], "file": calib_file,
                      "provenance": {k: v for k, v in cs.provenance.items() if k != "sha256"}}

        # quantize
        quantized: dict[str, dict[str, tuple[bytes, dict[str, Any]]]] = {f: {} for f in flavours}
        src_dir = Path(tmp.name)
        for name in targets:
            src = src_dir / f"{name}.fp32.onnx"
            src.write_bytes(fp32_bytes[name])
            for flavour in flavours:
                out = src_dir / f"{name}.{flavour}.onnx"
                try:
                    facts = quantize_int8(src, out, flavour, CalibrationReader.from_set(cs, name),
                                          calibrate_method=calibrate_method)
                except QuantizeError as exc:
                    raise ConvertError(f"{name}: {exc}") from exc
                quantized[flavour][name] = (out.read_bytes(), facts)

        # drift on held-out (test) data
        try:
            prepared = _prepare_test(bundle, dataset, drift_utterances, workers=workers, cache_dir=cache_dir,
                                     progress=progress)
        except ValueError as exc:  # DatasetError, DatasetUnusableError
            raise ConvertError(f"INT8 drift: {exc}") from exc
        head = DecisionHead.from_bundle(bundle)
        fp32_sessions = {n: ort_session(b) for n, b in fp32_bytes.items()}
        ref = run_onnx_pipeline(bundle, fp32_sessions, prepared, head)
        logger.info("INT8 drift: %d test utterances, FP32 ONNX accuracy %.4f", len(ref.labels), ref.accuracy)
        staged: dict[str, dict[str, dict[str, Any]]] = {n: {} for n in targets}
        files: dict[str, dict[str, bytes]] = {n: {} for n in targets}
        for flavour in flavours:
            sessions = dict(fp32_sessions)
            per_net: dict[str, dict[str, Any]] = {}
            for name in targets:
                sess = ort_session(quantized[flavour][name][0])
                sessions[name] = sess
                out_names = _io_names(bundle.networks[name], "outputs")[:1]
                got = [sess.run(out_names, feed)[0] for feed in ref.feeds[name]]
                cos, max_abs = _cosine_maxabs(ref.outputs[name], got) if got else (float("nan"), float("nan"))
                per_net[name] = {"cosine": cos, "max_abs": max_abs, "runs": len(got), "reference": "onnx-fp32"}
            run = run_onnx_pipeline(bundle, sessions, prepared, head)
            agreement = float(np.mean(np.asarray(run.predictions) == np.asarray(ref.predictions)))
            e2e = {"utterances": len(ref.labels), "split": "test", "agreement": agreement,
                   "accuracy_fp32": ref.accuracy, "accuracy_int8": run.accuracy,
                   "accuracy_delta": run.accuracy - ref.accuracy,
                   "int8_networks": list(targets), "fp32_networks": [n for n in bundle.networks if n not in targets]}
            failing = []
            if agreement < thresholds.min_agreement:
                failing.append(f"top-1 agreement {agreement:.4f} < {thresholds.min_agreement}")
            if ref.accuracy - run.accuracy > thresholds.max_accuracy_drop:
                failing.append(f"accuracy drop {ref.accuracy - run.accuracy:.4f} > {thresholds.max_accuracy_drop}")
            for name in targets:
                net_failing = list(failing)
                if not per_net[name]["cosine"] >= thresholds.min_cosine:
                    net_failing.append(f"{name} cosine {per_net[name]['cosine']:.4f} < {thresholds.min_cosine}")
                deployable = not net_failing
                if not deployable:
                    logger.warning("%s %s: NOT deployable: %s (artifact written, marked deployable=false)",
                                   name, flavour, "; ".join(net_failing))
                logger.info("%s %s: cosine %.6f, max abs %.3g vs FP32; end to end agreement %.4f, accuracy %.4f -> %.4f",
                            name, flavour, per_net[name]["cosine"], per_net[name]["max_abs"], agreement,
                            ref.accuracy, run.accuracy)
                rel = f"onnx/{name}.{flavour}.onnx"
                data, facts = quantized[flavour][name]
                files[name][rel] = data
                staged[name][flavour] = {
                    "file": rel, "format": "onnx", "precision": "int8", "io_dtype": "float32",
                    "quantization": facts,
                    "source": bundle.networks[name]["artifacts"]["onnx-fp32"]["file"],
                    "calibration": calib_spec,
                    "drift": {"network": per_net[name], "end_to_end": e2e},
                    "thresholds": {"min_agreement": thresholds.min_agreement,
                                   "max_accuracy_drop": thresholds.max_accuracy_drop,
                                   "min_cosine": thresholds.min_cosine},
                    "deployable": deployable,
                    "not_deployable_because": net_failing,
                }

        # record
        added = 0
        update_manifest(bundle_dir, "provenance.calibration_set_sha256", cs.provenance["sha256"])
        bundle = read_bundle(bundle_dir)
        for name in targets:
            old = {spec["file"] for k, spec in bundle.networks[name]["artifacts"].items() if k in flavours}
            artifacts = {k: v for k, v in bundle.networks[name]["artifacts"].items() if k not in flavours}
            artifacts.update(staged[name])
            update_manifest(bundle_dir, f"networks.{name}.artifacts", artifacts, new_files=files[name],
                            remove_files=sorted(old - set(files[name])))
            added += sum(len(b) for b in files[name].values())
        read_bundle(bundle_dir)
        return staged, added
    finally:
        tmp.cleanup()
