"""INT8 Q/DQ: the two flavours' graph rules, accuracy of the quantized encoders, and `convert` with INT8."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch", reason="conversion needs torch (the 'train' extra)")
pytest.importorskip("onnxruntime", reason="quantization needs the 'onnx' extra")
pytest.importorskip("onnxslim", reason="conversion needs the 'onnx' extra")

import onnx
from onnx import TensorProto, numpy_helper

from edge_mmer.bundle import read_bundle
from edge_mmer.calibration import CalibrationSet, load_calibration_set, save_calibration_set
from edge_mmer.calibration.from_dataset import build_from_dataset
from edge_mmer.calibration.reader import CalibrationReader
from edge_mmer.convert.onnx_artifacts import ConvertError, ConvertOptions, convert_bundle
from edge_mmer.convert.onnx_export import ort_session
from edge_mmer.convert.parity import compare_outputs
from edge_mmer.convert.quantize import QuantizeError, check_tensorrt_qdq, quantize_int8, quantized_weighted_outputs

pytestmark = [pytest.mark.slow, pytest.mark.needs_torch]


@pytest.fixture(scope="module")
def fp32_bundle(tiny_bundle: Path, dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    bundle = tmp_path_factory.mktemp("qconvert") / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    convert_bundle(ConvertOptions(bundle=bundle, precisions=("fp32",), data=dataset, samples=4, progress=False))
    return bundle


@pytest.fixture(scope="module")
def calib(fp32_bundle: Path, dataset: Path) -> CalibrationSet:
    return build_from_dataset(fp32_bundle, dataset, "train", 8, progress=False)


Quantized = dict[tuple[str, str], tuple[Path, dict[str, Any]]]
"""(network, flavour) -> (the INT8 model, its quantization record)."""


@pytest.fixture(scope="module")
def quantized(fp32_bundle: Path, calib: CalibrationSet, tmp_path_factory: pytest.TempPathFactory
              ) -> Quantized:
    out = tmp_path_factory.mktemp("quant")
    got = {}
    for name in ("speech_encoder", "face_encoder"):
        src = fp32_bundle / "onnx" / f"{name}.fp32.onnx"
        for flavour in ("int8-cpu", "int8-trt"):
            dst = out / f"{name}.{flavour}.onnx"
            got[name, flavour] = (dst, quantize_int8(src, dst, flavour, CalibrationReader.from_set(calib, name)))
    return got


def _qdq(model: onnx.ModelProto) -> list[tuple[str, int, np.ndarray]]:
    inits = {t.name: t for t in model.graph.initializer}
    return [(n.op_type, inits[n.input[2]].data_type, numpy_helper.to_array(inits[n.input[2]]))
            for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]


def test_calibration_set_covers_every_network(calib: CalibrationSet) -> None:
    counts = calib.counts()
    assert counts["speech_encoder"] == 8 and counts["speech_context"] == 8
    assert set(calib.arrays["fusion"]) == {"x", "h", "c"}
    assert calib.provenance["source"].endswith(":train") and calib.provenance["split"] == "train"
    assert not calib.arrays["speech_context"]["h"][0].any()  # each session starts from a zero state


def test_int8_trt_follows_tensorrt_rules(quantized: Quantized) -> None:
    for name in ("speech_encoder", "face_encoder"):
        path, facts = quantized[name, "int8-trt"]
        model = onnx.load(str(path))
        qdq = _qdq(model)
        assert qdq and all(dt == TensorProto.INT8 and not zp.any() for _, dt, zp in qdq)
        assert check_tensorrt_qdq(model) == []
        assert quantized_weighted_outputs(model) == []  # TensorRT's placement: weighted ops' outputs stay float
        assert facts["activation_type"] == "int8" and facts["activation_symmetric"] and not facts["bias_quantized"]
        assert facts["quantized_ops"]["Conv"] > 0 and facts["per_channel"]
        assert not any(n.op_type == "LSTM" and n.input[0].endswith("DequantizeLinear") for n in model.graph.node)
    assert quantized["face_encoder", "int8-trt"][1]["quantized_ops"]["Gemm"] == 1


def test_int8_cpu_has_uint8_activations(quantized: Quantized) -> None:
    path, facts = quantized["face_encoder", "int8-cpu"]
    model = onnx.load(str(path))
    types = {dt for op, dt, _ in _qdq(model) if op == "QuantizeLinear"}
    assert TensorProto.UINT8 in types and facts["activation_qdq_types"] == ["UINT8"]
    assert check_tensorrt_qdq(model)  # asymmetric UINT8: not TensorRT's form


@pytest.mark.parametrize("flavour", ["int8-cpu", "int8-trt"])
def test_quantized_encoders_run_and_stay_close(quantized: Quantized, calib: CalibrationSet, fp32_bundle: Path,
                                               flavour: str) -> None:
    for name, out in (("speech_encoder", "features"), ("face_encoder", "embedding")):
        ref = ort_session((fp32_bundle / "onnx" / f"{name}.fp32.onnx").read_bytes())
        q = ort_session(quantized[name, flavour][0].read_bytes())
        feeds = calib.samples(name)
        result = compare_outputs([ref.run([out], f)[0] for f in feeds], [q.run([out], f)[0] for f in feeds])
        assert result.cosine >= 0.98, (name, flavour, result)


def test_nothing_to_quantize_is_an_error(fp32_bundle: Path, calib: CalibrationSet, tmp_path: Path) -> None:
    with pytest.raises(QuantizeError, match="nothing to quantize"):
        quantize_int8(fp32_bundle / "onnx" / "speech_context.fp32.onnx", tmp_path / "x.onnx", "int8-trt",
                      CalibrationReader.from_set(calib, "speech_context"))
    with pytest.raises(QuantizeError, match="flavour"):
        quantize_int8(fp32_bundle / "onnx" / "fusion.fp32.onnx", tmp_path / "x.onnx", "int4", CalibrationReader([]))


def test_convert_int8_records_drift_and_deployable(fp32_bundle: Path, dataset: Path, calib: CalibrationSet,
                                                   tmp_path: Path) -> None:
    bundle_dir = tmp_path / "bundle"
    shutil.copytree(fp32_bundle, bundle_dir)
    result = convert_bundle(ConvertOptions(bundle=bundle_dir, precisions=("int8-cpu", "int8-trt"), data=dataset,
                                           calibration_utterances=8, progress=False))
    bundle = read_bundle(bundle_dir)
    sha = bundle.provenance["calibration_set_sha256"]
    assert sha and not any(f.endswith(".npz") for f in bundle.files)  # kept beside the bundle, not in it
    beside = bundle_dir.parent / "bundle.calibration.npz"
    assert load_calibration_set(beside).provenance["sha256"] == sha
    assert set(result.artifacts) == {"speech_encoder", "face_encoder", "fusion"}
    for name in ("speech_context", "face_context"):
        assert not {"int8-cpu", "int8-trt"} & set(bundle.networks[name]["artifacts"])  # LSTM only
    for name in result.artifacts:
        for flavour in ("int8-cpu", "int8-trt"):
            spec = bundle.networks[name]["artifacts"][flavour]
            assert spec["file"] == f"onnx/{name}.{flavour}.onnx" and spec["file"] in bundle.files
            assert spec["calibration"]["sha256"] == sha and spec["calibration"]["provenance"]["split"] == "train"
            assert spec["quantization"]["flavour"] == flavour
            e2e = spec["drift"]["end_to_end"]
            assert e2e["split"] == "test" and e2e["utterances"] > 0 and 0 <= e2e["agreement"] <= 1
            assert spec["drift"]["network"]["cosine"] > 0.9 and isinstance(spec["deployable"], bool)
    # refused again without --overwrite-artifacts
    with pytest.raises(ConvertError, match="overwrite-artifacts"):
        convert_bundle(ConvertOptions(bundle=bundle_dir, precisions=("int8-trt",), data=dataset, progress=False))
    # a too-strict threshold: written, marked not deployable; a given calibration file is recorded, not stored
    path = tmp_path / "calib.npz"
    digest = save_calibration_set(calib, path)
    convert_bundle(ConvertOptions(bundle=bundle_dir, precisions=("int8-trt",), data=dataset, progress=False,
                                  calibration=path, min_cosine=1.0, overwrite_artifacts=True))
    bundle = read_bundle(bundle_dir)
    assert bundle.provenance["calibration_set_sha256"] == digest
    for name in result.artifacts:
        spec = bundle.networks[name]["artifacts"]["int8-trt"]
        assert spec["deployable"] is False and "cosine" in spec["not_deployable_because"][-1]
        assert spec["calibration"]["sha256"] == digest and spec["calibration"]["file"] is None
    assert "int8-cpu" in bundle.networks["face_encoder"]["artifacts"]  # the other flavour kept


def test_int8_needs_fp32(dataset: Path, fp32_bundle: Path, tmp_path: Path) -> None:
    bundle_dir = tmp_path / "bundle"
    shutil.copytree(fp32_bundle, bundle_dir)
    from edge_mmer.bundle import update_manifest

    art = read_bundle(bundle_dir).networks["fusion"]["artifacts"]
    update_manifest(bundle_dir, "networks.fusion.artifacts", {}, remove_files=[art["onnx-fp32"]["file"]])
    with pytest.raises(ConvertError, match="add fp32"):
        convert_bundle(ConvertOptions(bundle=bundle_dir, precisions=("int8-cpu",), data=dataset, progress=False))
