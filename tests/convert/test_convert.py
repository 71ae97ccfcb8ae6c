"""Conversion: a tiny trained bundle -> ONNX FP32/FP16 artifacts, parity with PyTorch, TensorRT op checks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch", reason="conversion needs torch (the 'train' extra)")  # for the imports below
pytest.importorskip("onnxruntime", reason="conversion needs the 'onnx' extra")
pytest.importorskip("onnxslim", reason="conversion needs the 'onnx' extra")

import onnx
import torch
from onnx import TensorProto, helper

from edge_mmer.bundle import BundleError, read_bundle
from edge_mmer.convert.onnx_artifacts import ConvertError, ConvertOptions, ConvertResult, convert_bundle
from edge_mmer.convert.onnx_export import ort_session
from edge_mmer.convert.opcheck import UnsupportedOpError, check_tensorrt_ops
from edge_mmer.models.from_bundle import load_torch_networks

pytestmark = [pytest.mark.slow, pytest.mark.needs_torch]

NETWORKS = ("speech_encoder", "face_encoder", "speech_context", "face_context", "fusion")


@pytest.fixture(scope="module")
def trained(tiny_bundle: Path) -> Path:
    return tiny_bundle  # trained once per session (conftest.py)


@pytest.fixture(scope="module")
def converted(trained: Path, dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ConvertResult]:
    copy = tmp_path_factory.mktemp("convert") / "bundle"
    shutil.copytree(trained, copy)
    result = convert_bundle(ConvertOptions(bundle=copy, data=dataset, samples=8, progress=False))
    return copy, result


def test_converted_bundle_verifies_and_records_parity(converted: tuple[Path, ConvertResult]) -> None:
    out, result = converted
    bundle = read_bundle(out)
    assert set(bundle.networks) == set(NETWORKS) == set(result.artifacts)
    for name, net in bundle.networks.items():
        assert {"onnx-fp32", "onnx-fp16"} <= set(net["artifacts"])
        fp32 = net["artifacts"]["onnx-fp32"]
        assert fp32["file"] == f"onnx/{name}.fp32.onnx" and fp32["file"] in bundle.files
        assert fp32["opset"] == 17 and fp32["precision"] == "fp32" and fp32["tensorrt_ops_checked"] == "10.3"
        assert fp32["parity"]["reference"] == "pytorch" and fp32["parity"]["samples"] > 0
        assert fp32["parity"]["max_abs"] <= 1e-4 and fp32["parity"]["cosine"] > 0.999999
        assert {"torch", "onnx", "onnxslim"} <= set(fp32["exported_with"])
        fp16 = net["artifacts"]["onnx-fp16"]
        assert fp16["precision"] == "fp16" and fp16["parity"]["cosine"] > 0.99
        model = onnx.load_from_string(bundle.read_bytes(fp32["file"]))
        if name != "face_encoder":
            assert any(n.op_type == "LSTM" for n in model.graph.node), name
    assert bundle.networks["speech_encoder"]["artifacts"]["onnx-fp32"]["dynamic_axes"] == {"log_mel": {"1": "time"}}
    cli = subprocess.run([sys.executable, "-m", "edge_mmer.cli", "bundle", "verify", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr


def test_speech_encoder_onnx_matches_torch_at_two_lengths(converted: tuple[Path, ConvertResult]) -> None:
    bundle = read_bundle(converted[0])
    nets = load_torch_networks(bundle)
    sess = ort_session(bundle.read_bytes(bundle.networks["speech_encoder"]["artifacts"]["onnx-fp32"]["file"]))
    rng = np.random.default_rng(0)
    for t in (33, 260):
        x = rng.normal(-4.0, 2.0, size=(1, t, bundle.config.audio.n_mels)).astype(np.float32)
        with torch.no_grad():
            ref = nets["speech_encoder"].features(torch.from_numpy(x)).numpy()  # type: ignore[operator]
        (got,) = sess.run(["features"], {"log_mel": x})
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)


def test_context_step_graph_equals_the_whole_sequence(converted: tuple[Path, ConvertResult]) -> None:
    bundle = read_bundle(converted[0])
    net = load_torch_networks(bundle)["speech_context"]
    entry = bundle.networks["speech_context"]
    sess = ort_session(bundle.read_bytes(entry["artifacts"]["onnx-fp32"]["file"]))
    dim, hidden = entry["inputs"][0]["shape"][1], entry["inputs"][1]["shape"][1]
    seq = np.random.default_rng(1).normal(size=(9, dim)).astype(np.float32)
    with torch.no_grad():
        ref, _, (h_ref, c_ref) = net(torch.from_numpy(seq)[None])
    h = c = np.zeros((1, hidden), np.float32)
    ys = []
    for x_t in seq:
        y, h, c = sess.run(["y", "h_out", "c_out"], {"x": x_t[None], "h": h, "c": c})
        ys.append(y[0])
    np.testing.assert_allclose(np.stack(ys), ref[0].numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(h, h_ref[0].numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(c, c_ref[0].numpy(), atol=1e-5, rtol=0)


def test_fp16_runs_with_float32_io(converted: tuple[Path, ConvertResult]) -> None:
    bundle = read_bundle(converted[0])
    arts = bundle.networks["face_encoder"]["artifacts"]
    s = bundle.config.face.crop_size
    x = np.random.default_rng(2).uniform(-1, 1, size=(3, 3, s, s)).astype(np.float32)
    (half,) = ort_session(bundle.read_bytes(arts["onnx-fp16"]["file"])).run(["embedding"], {"face": x})
    (full,) = ort_session(bundle.read_bytes(arts["onnx-fp32"]["file"])).run(["embedding"], {"face": x})
    assert half.dtype == np.float32 and half.shape == full.shape == (3, full.shape[1])
    cos = (half * full).sum(1) / (np.linalg.norm(half, axis=1) * np.linalg.norm(full, axis=1) + 1e-12)
    assert cos.min() > 0.99
    model = onnx.load_from_string(bundle.read_bytes(arts["onnx-fp16"]["file"]))
    assert any(t.data_type == TensorProto.FLOAT16 for t in model.graph.initializer)


def test_reconverting_needs_overwrite_and_replaces_files(converted: tuple[Path, ConvertResult], dataset: Path,
                                                         tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(converted[0], copy)
    with pytest.raises(ConvertError, match="--overwrite-artifacts"):
        convert_bundle(ConvertOptions(bundle=copy, data=dataset, samples=4, progress=False))
    before = read_bundle(copy).files["onnx/fusion.fp32.onnx"]
    convert_bundle(ConvertOptions(bundle=copy, precisions=("fp32",), data=dataset, samples=4, progress=False,
                                  overwrite_artifacts=True))
    bundle = read_bundle(copy)
    assert bundle.networks["fusion"]["artifacts"]["onnx-fp32"]["parity"]["utterances"] == 4
    assert "onnx-fp16" in bundle.networks["fusion"]["artifacts"]  # not asked for: kept
    assert bundle.files["onnx/fusion.fp32.onnx"]["bytes"] == before["bytes"]


def test_fp32_parity_failure_names_the_network_and_writes_nothing(trained: Path, dataset: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import edge_mmer.convert.parity as parity
    from edge_mmer.convert.compare import OutputComparison

    copy = tmp_path / "bundle"
    shutil.copytree(trained, copy)
    monkeypatch.setattr(parity, "compare", lambda ref, got: {
        k: OutputComparison(max_abs=1e-3, cosine=1.0, samples=len(ref)) for k in ref[0]})
    with pytest.raises(ConvertError, match="speech_encoder: FP32 ONNX differs"):
        convert_bundle(ConvertOptions(bundle=copy, precisions=("fp32",), data=dataset, samples=2, progress=False))
    assert not (copy / "onnx").exists()
    assert all(not net["artifacts"] for net in read_bundle(copy).networks.values())


def test_missing_dataset_says_how_to_regenerate_it(trained: Path, tmp_path: Path) -> None:
    with pytest.raises(ConvertError, match="edge-mmer synth --out"):
        convert_bundle(ConvertOptions(bundle=trained, data=tmp_path / "nowhere", progress=False))


def test_flipped_byte_in_an_onnx_artifact_is_named(converted: tuple[Path, ConvertResult], tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(converted[0], copy)
    rel = "onnx/speech_context.fp16.onnx"
    data = bytearray((copy / rel).read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / rel).write_bytes(bytes(data))
    with pytest.raises(BundleError, match=rel):
        read_bundle(copy)


def test_tensorrt_without_tensorrt_fails_clearly_and_writes_nothing(converted: tuple[Path, ConvertResult],
                                                                     tmp_path: Path) -> None:
    from edge_mmer.convert.tensorrt_build import tensorrt_available

    ok, _ = tensorrt_available()
    if ok:
        pytest.skip("TensorRT is present here: the plan build itself is tested in test_tensorrt_build.py")
    copy = tmp_path / "bundle"
    shutil.copytree(converted[0], copy)
    before = (copy / "manifest.json").read_bytes()
    out = subprocess.run([sys.executable, "-m", "edge_mmer.cli", "convert", "--bundle", str(copy), "--tensorrt"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1 and "--tensorrt" in out.stderr and "TensorRT" in out.stderr
    assert (copy / "manifest.json").read_bytes() == before and not (copy / "tensorrt").exists()


# --------------------------------------------------------------------------------- operator check


def _graph(nodes: list[onnx.NodeProto], opset: int, inputs: list[onnx.ValueInfoProto] | None = None,
           outputs: list[onnx.ValueInfoProto] | None = None) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph(nodes, "g", inputs or [x], outputs or [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_opcheck_accepts_the_exported_graphs_for_every_release(converted: tuple[Path, ConvertResult]) -> None:
    bundle = read_bundle(converted[0])
    for net in bundle.networks.values():
        for kind in ("onnx-fp32", "onnx-fp16"):
            model = onnx.load_from_string(bundle.read_bytes(net["artifacts"][kind]["file"]))
            for release in ("8.6", "10.3", "10.15"):
                check_tensorrt_ops(model, release)


def test_opcheck_rejects_an_operator_the_release_lacks() -> None:
    # CastLike (opset 15) is in TensorRT 10.3's parser list, not in 8.6's
    model = _graph([helper.make_node("CastLike", ["x", "x"], ["y"], name="cast_like_0")], 17)
    check_tensorrt_ops(model, "10.3")
    with pytest.raises(UnsupportedOpError, match="cast_like_0") as info:
        check_tensorrt_ops(model, "8.6")
    assert "CastLike" in str(info.value) and "8.6" in str(info.value)
    invented = _graph([helper.make_node("Frobnicate", ["x"], ["y"], name="frob_1")], 17)
    with pytest.raises(UnsupportedOpError, match=r"frob_1.*Frobnicate"):
        check_tensorrt_ops(invented, "10.15")


def test_opcheck_rejects_an_opset_above_the_release() -> None:
    model = _graph([helper.make_node("Relu", ["x"], ["y"], name="relu_7")], 21)
    check_tensorrt_ops(model, "10.15")
    for release in ("8.6", "10.3"):
        with pytest.raises(UnsupportedOpError, match="relu_7") as info:
            check_tensorrt_ops(model, release)
        assert "opset 21" in str(info.value) and release in str(info.value)


def test_opcheck_rejects_lstm_layout_1() -> None:
    w = helper.make_tensor("W", TensorProto.FLOAT, [1, 16, 4], np.zeros(64, np.float32).tolist())
    r = helper.make_tensor("R", TensorProto.FLOAT, [1, 16, 4], np.zeros(64, np.float32).tolist())
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 1, 4])

    def lstm(**attrs: Any) -> onnx.ModelProto:
        node = helper.make_node("LSTM", ["x", "W", "R"], ["y"], name="ctx_lstm", hidden_size=4, **attrs)
        model = _graph([node], 17, [x], [y])
        model.graph.initializer.extend([w, r])
        return model

    check_tensorrt_ops(lstm(layout=0), "8.6")
    with pytest.raises(UnsupportedOpError, match=r"ctx_lstm.*layout"):
        check_tensorrt_ops(lstm(layout=1), "8.6")
    with pytest.raises(UnsupportedOpError, match=r"ctx_lstm.*input_forget"):
        check_tensorrt_ops(lstm(input_forget=1), "10.3")
    with pytest.raises(UnsupportedOpError, match=r"ctx_lstm.*activations"):
        check_tensorrt_ops(lstm(direction="bidirectional",
                                activations=["Sigmoid", "Tanh", "Tanh", "Sigmoid", "Relu", "Tanh"]), "10.15")
