"""TensorRT plans: profile derivation, device facts, option checks (here), and real builds (where a GPU is)."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.paths import DEMO_BUNDLE, JETSON_FIXTURES

from edge_mmer.bundle import read_bundle
from edge_mmer.bundle.plans import (
    DeviceFacts,
    jetpack_hint,
    plan_compatibility,
    probe_device_facts,
    read_device_model,
    read_l4t_release,
)
from edge_mmer.bundle.shapes import ShapeProfile, derive_profiles, static_profile_for_dla
from edge_mmer.config import ModelConfig, demo_config
from edge_mmer.convert.tensorrt_build import (
    BuildOptionsError,
    TensorRTBuildError,
    TensorRTBuildOptions,
    build_plan,
    preflight,
    tensorrt_available,
)
from edge_mmer.convert.tensorrt_plans import PlanRequest
from edge_mmer.runner import Runner

JETSON = JETSON_FIXTURES


# ---------------------------------------------------------------- profiles from the demo bundle


Demo = tuple[dict[str, Any], ModelConfig]
"""The demo bundle's networks section and configuration."""


@pytest.fixture(scope="module")
def demo() -> Demo:
    b = read_bundle(DEMO_BUNDLE)
    return b.networks, b.config


def test_speech_encoder_time_axis_from_audio_front_end(demo: Demo) -> None:
    networks, cfg = demo
    assert cfg.audio.sample_rate == 16000 and cfg.audio.hop_length == 160 and cfg.audio.win_length == 400
    p = derive_profiles("speech_encoder", networks["speech_encoder"], cfg)
    # 0.3 s = 4800 samples -> 1 + (4800 - 400) // 160 = 28 frames; 2.5 s = 40000 -> 1 + 39600 // 160 = 248;
    # 8 s as the VAD cuts it with 30 ms frames: 267 x 480 = 128160 -> 1 + 127760 // 160 = 799 (not 798: D7)
    assert p == {"log_mel": ((1, 28, 40), (1, 248, 40), (1, 799, 40))}


@pytest.mark.parametrize("frame_ms", [10, 20, 30])
def test_speech_profile_max_covers_every_vad_cut(demo: Demo, frame_ms: int) -> None:
    """D7: the VAD cuts after the frame that reaches max_utterance_s; that utterance fits the profile."""
    from edge_mmer.features.audio import n_frames

    networks, cfg = demo
    hi = derive_profiles("speech_encoder", networks["speech_encoder"], cfg)["log_mel"][2][1]
    frames = math.ceil(cfg.audio.max_utterance_s * 1000 / frame_ms - 1e-9)
    assert n_frames(frames * frame_ms * cfg.audio.sample_rate // 1000, cfg.audio) <= hi


def test_face_encoder_batch_axis(demo: Demo) -> None:
    networks, cfg = demo
    p = derive_profiles("face_encoder", networks["face_encoder"], cfg)
    hi = max(cfg.face.frames_per_utterance, math.ceil(cfg.face.analysis_fps * cfg.audio.max_utterance_s))
    assert hi == 40 and cfg.face.frames_per_utterance == 6
    assert p == {"face": ((1, 3, 96, 96), (6, 3, 96, 96), (40, 3, 96, 96))}


@pytest.mark.parametrize("name", ["speech_context", "face_context", "fusion"])
def test_step_graphs_are_static(demo: Demo, name: str) -> None:
    networks, cfg = demo
    p = derive_profiles(name, networks[name], cfg)
    assert set(p) == {"x", "h", "c"}
    for item in networks[name]["inputs"]:
        shape = tuple(item["shape"])
        assert p[item["name"]] == (shape, shape, shape)
    assert ShapeProfile(p).is_static


def test_every_demo_network_has_a_profile(demo: Demo) -> None:
    networks, cfg = demo
    for name, entry in networks.items():
        assert derive_profiles(name, entry, cfg)


def test_dla_static_profile(demo: Demo) -> None:
    networks, cfg = demo
    p = derive_profiles("face_encoder", networks["face_encoder"], cfg)
    assert ShapeProfile(p).dynamic_inputs == ["face"]
    s = static_profile_for_dla(p)
    assert s == {"face": ((6, 3, 96, 96),) * 3}
    assert ShapeProfile(s).is_static
    assert static_profile_for_dla(ShapeProfile(p), pick="max")["face"][0] == (40, 3, 96, 96)


def test_unknown_axis_names_network_input_and_axis() -> None:
    entry = {"inputs": [{"name": "frames", "shape": [1, "speakers", 40], "dtype": "float32"}]}
    with pytest.raises(ValueError, match=r"network 'mystery'.*input 'frames'.*'speakers'"):
        derive_profiles("mystery", entry, demo_config())


def test_short_max_utterance_keeps_opt_in_range() -> None:
    from dataclasses import replace

    cfg = demo_config()
    cfg = replace(cfg, audio=replace(cfg.audio, min_utterance_s=0.2, max_utterance_s=1.0))
    entry = {"inputs": [{"name": "log_mel", "shape": [1, "time", 40]}]}
    lo, opt, hi = derive_profiles("speech_encoder", entry, cfg)["log_mel"]
    # 1 s cut in 30 ms VAD frames: 34 x 480 = 16320 samples -> 100 frames
    assert lo[1] == 18 and hi[1] == 100 and opt == hi  # opt clamped to the longest utterance


def test_shape_profile_validation_and_record_round_trip() -> None:
    with pytest.raises(ValueError, match="min <= opt <= max"):
        ShapeProfile({"x": ((1, 4), (1, 2), (1, 8))})
    with pytest.raises(ValueError, match="different ranks"):
        ShapeProfile({"x": ((1, 4), (1, 4, 1), (1, 8))})
    p = ShapeProfile({"x": ((1, 4), (2, 4), (8, 4))})
    assert p.to_record() == {"x": {"min": [1, 4], "opt": [2, 4], "max": [8, 4]}}
    assert ShapeProfile.from_record(p.to_record()) == p


# ---------------------------------------------------------------- device facts


@pytest.mark.parametrize(
    ("fixture", "release", "jetpack"),
    [
        ("nv_tegra_release_r35.4.1", "35.4.1", "5.1.2"),
        ("nv_tegra_release_r36.3.0", "36.3.0", "6.0"),
        ("nv_tegra_release_r36.4.3", "36.4.3", "6.2"),
    ],
)
def test_l4t_release_from_fixtures(fixture: str, release: str, jetpack: str) -> None:
    text = (JETSON / fixture).read_text()
    assert read_l4t_release(text) == release
    assert jetpack_hint(release) == jetpack


def test_l4t_release_absent_or_garbled() -> None:
    assert read_l4t_release("") is None
    assert read_l4t_release("Ubuntu 22.04.4 LTS") is None
    assert read_l4t_release("# R36 (release), REVISION: x.y") is None
    assert jetpack_hint(None) is None and jetpack_hint("99.0.0") is None


def test_probe_device_facts_never_raises(tmp_path: Path) -> None:
    facts = probe_device_facts(tegra_release_path=tmp_path / "absent")
    assert facts.l4t_release is None and facts.jetpack_hint is None
    src = JETSON / "nv_tegra_release_r36.4.3"
    facts = probe_device_facts(tegra_release_path=src)
    assert facts.l4t_release == "36.4.3" and facts.jetpack_hint == "6.2"
    if not tensorrt_available()[0]:
        try:
            import tensorrt  # noqa: F401
        except Exception:
            assert facts.tensorrt_version is None


ORIN = DeviceFacts("10.3.0", "Orin", "8.7", "36.4.3", "6.2", "12.6")
RECORD = {"tensorrt_version": "10.3.0", "gpu_name": "Orin", "compute_capability": "8.7", "l4t_release": "36.4.3"}


def test_plan_compatibility_match() -> None:
    assert plan_compatibility(RECORD, ORIN) == []
    assert plan_compatibility(ORIN.to_record(), ORIN) == []


def test_plan_compatibility_mismatches() -> None:
    other = DeviceFacts("10.7.0", "NVIDIA GeForce RTX 4090", "8.9", None, None, "12.6")
    problems = plan_compatibility(RECORD, other)
    assert len(problems) == 4
    joined = "\n".join(problems)
    for text in ("TensorRT version", "10.3.0", "10.7.0", "GPU name", "RTX 4090", "compute capability", "8.9",
                 "L4T release"):
        assert text in joined
    # same desktop GPU, other TensorRT
    desk = {"tensorrt_version": "10.15.1", "gpu_name": "NVIDIA H100", "compute_capability": "9.0", "l4t_release": None}
    here = DeviceFacts("10.16.0", "NVIDIA H100", "9.0", None, None)
    assert plan_compatibility(desk, here) == ["TensorRT version: plan built with 10.15.1, this device has 10.16.0"]
    # L4T point release differs on the same module
    assert plan_compatibility({**RECORD, "l4t_release": "36.3.0"}, ORIN) == [
        "L4T release: plan built on 36.3.0, this device is 36.4.3"
    ]


AGX = DeviceFacts("10.3.0", "Orin", "8.7", "36.4.3", "6.2", "12.6",
                  device_model="NVIDIA Jetson AGX Orin Developer Kit", sm_count=16, dla_cores=2)
NANO = DeviceFacts("10.3.0", "Orin", "8.7", "36.4.3", "6.2", "12.6",
                   device_model="NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super", sm_count=8,
                   dla_cores=0)


def test_plan_compatibility_names_the_exact_module() -> None:
    """D10: an AGX Orin plan on an Orin Nano (both "Orin", 8.7, same L4T) is refused with the facts that differ."""
    gpu_plan = AGX.to_record()
    assert plan_compatibility(gpu_plan, AGX) == []
    assert plan_compatibility(gpu_plan, NANO) == [
        "device model: plan built on NVIDIA Jetson AGX Orin Developer Kit, this device has NVIDIA Jetson Orin Nano "
        "Engineering Reference Developer Kit Super",
        "GPU multiprocessors: plan built on 16, this device has 8",
    ]
    dla_plan = {**gpu_plan, "dla": {"core": 1, "gpu_fallback": True}}
    assert plan_compatibility(dla_plan, dataclasses.replace(NANO, device_model=AGX.device_model, sm_count=16)) == [
        "DLA cores: the plan runs on DLA core 1, this device has 0 DLA core(s)"]
    assert plan_compatibility(dla_plan, dataclasses.replace(AGX, dla_cores=None)) == [
        "DLA cores: the plan runs on DLA core 1, unknown on this device"]
    assert plan_compatibility(RECORD, NANO) == []  # a plan recorded before the module facts: judged on the rest
    assert DeviceFacts.from_record(AGX.to_record()) == AGX


def test_device_model_read_from_the_device_tree(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.write_bytes(b"NVIDIA Jetson Orin NX Engineering Reference Developer Kit\x00")
    facts = probe_device_facts(tegra_release_path=tmp_path / "none", device_model_path=model, dla_cores=2)
    assert facts.device_model == "NVIDIA Jetson Orin NX Engineering Reference Developer Kit" and facts.dla_cores == 2
    assert probe_device_facts(device_model_path=tmp_path / "absent").device_model in (None, read_device_model())


def test_plan_compatibility_unknowns_are_refused() -> None:
    blind = DeviceFacts("10.3.0", None, None, "36.4.3", "6.2")
    problems = plan_compatibility(RECORD, blind)
    assert problems == [
        "GPU name: plan built with Orin, unknown on this device",
        "compute capability: plan built with 8.7, unknown on this device",
    ]
    assert "TensorRT version: not recorded with the plan" in plan_compatibility({}, ORIN)


# ---------------------------------------------------------------- ONNX models for the builds


def _conv_model(path: Path, *, fp16: bool = False, qdq: bool = False, dynamic: bool = True) -> Path:
    """x[N,3,8,8] -> Conv(4 filters, 3x3, pad 1) -> Relu -> y[N,4,8,8], opset 17."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    elem = TensorProto.FLOAT16 if fp16 else TensorProto.FLOAT
    np_t = np.float16 if fp16 else np.float32
    rng = np.random.default_rng(0)
    batch: int | str = "batch" if dynamic else 2
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np_t), "w"),
        numpy_helper.from_array(np.zeros(4, np_t), "b"),
    ]
    nodes = []
    conv_in = "x"
    if qdq:
        inits += [
            numpy_helper.from_array(np.array(0.05, np.float32), "x_scale"),
            numpy_helper.from_array(np.array(0, np.int8), "x_zp"),
        ]
        nodes += [
            helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["x_q"]),
            helper.make_node("DequantizeLinear", ["x_q", "x_scale", "x_zp"], ["x_dq"]),
        ]
        conv_in = "x_dq"
    nodes += [
        helper.make_node("Conv", [conv_in, "w", "b"], ["c"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "conv",
        [helper.make_tensor_value_info("x", elem, [batch, 3, 8, 8])],
        [helper.make_tensor_value_info("y", elem, [batch, 4, 8, 8])],
        inits,
    )
    # IR 8 (ONNX 1.12): loadable by every ONNX Runtime and TensorRT here, whatever the onnx package's default
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


PROFILE = {"x": ((1, 3, 8, 8), (2, 3, 8, 8), (4, 3, 8, 8))}


@pytest.mark.needs_convert  # its ONNX models are built with onnx
def test_conv_models_run_in_onnxruntime(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    for kw in ({}, {"fp16": True}, {"qdq": True}):
        path = _conv_model(tmp_path / "m.onnx", **kw)
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        x = np.ones((3, 3, 8, 8), np.float16 if kw.get("fp16") else np.float32)
        assert sess.run(None, {"x": x})[0].shape == (3, 4, 8, 8)


# ---------------------------------------------------------------- options, checked without TensorRT


def test_options_validation() -> None:
    with pytest.raises(BuildOptionsError, match="precision"):
        TensorRTBuildOptions(precision="bf16")
    with pytest.raises(BuildOptionsError, match="workspace_mib"):
        TensorRTBuildOptions(workspace_mib=0)
    with pytest.raises(BuildOptionsError, match="dla_core"):
        TensorRTBuildOptions(dla_core=-1)
    with pytest.raises(BuildOptionsError, match="FP16 or INT8"):
        TensorRTBuildOptions(precision="fp32", dla_core=0)
    with pytest.raises(BuildOptionsError, match=r"DLA cannot run an INT8 Q/DQ.*'fp16' with a DLA core"):
        TensorRTBuildOptions(precision="int8", dla_core=0, profiles=static_profile_for_dla(PROFILE))
    with pytest.raises(BuildOptionsError, match=r"DLA needs static shapes.*\bx\b.*static_profile_for_dla"):
        TensorRTBuildOptions(dla_core=0, profiles=PROFILE)
    with pytest.raises(BuildOptionsError, match="min <= opt <= max"):
        TensorRTBuildOptions(profiles={"x": ((4,), (2,), (1,))})
    ok = TensorRTBuildOptions(dla_core=1, profiles=static_profile_for_dla(PROFILE), timing_cache=Path("t.cache"))
    assert isinstance(ok.profiles, ShapeProfile) and ok.profiles.is_static and ok.timing_cache == Path("t.cache")
    # strongly typed takes any precision label; the ONNX file must carry it (checked in preflight)
    for precision in ("fp32", "fp16", "int8"):
        TensorRTBuildOptions(precision=precision, strongly_typed=True)


@pytest.mark.needs_convert  # its ONNX models are built with onnx
def test_preflight_int8_needs_qdq(tmp_path: Path) -> None:
    plain = _conv_model(tmp_path / "plain.onnx")
    qdq = _conv_model(tmp_path / "qdq.onnx", qdq=True)
    for strongly_typed in (False, True):
        opts = TensorRTBuildOptions(precision="int8", strongly_typed=strongly_typed, profiles=PROFILE)
        with pytest.raises(BuildOptionsError, match=r"plain\.onnx.*Q/DQ.*no calibrator"):
            preflight(plain, opts)
        assert preflight(qdq, opts) == {"x": ("batch", 3, 8, 8)}


@pytest.mark.needs_convert  # its ONNX models are built with onnx
def test_preflight_strongly_typed_fp16_needs_fp16_model(tmp_path: Path) -> None:
    fp32 = _conv_model(tmp_path / "fp32.onnx")
    fp16 = _conv_model(tmp_path / "fp16.onnx", fp16=True)
    opts = TensorRTBuildOptions(precision="fp16", strongly_typed=True, profiles=PROFILE)
    with pytest.raises(BuildOptionsError, match=r"fp32\.onnx.*no FP16 tensors"):
        preflight(fp32, opts)
    preflight(fp16, opts)
    preflight(fp32, TensorRTBuildOptions(precision="fp16", profiles=PROFILE))  # weakly typed: the FP16 flag


@pytest.mark.needs_convert  # its ONNX models are built with onnx
def test_preflight_profile_against_model_inputs(tmp_path: Path) -> None:
    dyn = _conv_model(tmp_path / "dyn.onnx")
    fixed = _conv_model(tmp_path / "fixed.onnx", dynamic=False)
    with pytest.raises(BuildOptionsError, match=r"input 'x' has dynamic axes \(batch\) and no profile"):
        preflight(dyn, TensorRTBuildOptions())
    with pytest.raises(BuildOptionsError, match="profile names input 'log_mel'"):
        preflight(dyn, TensorRTBuildOptions(profiles={**PROFILE, "log_mel": ((1,), (1,), (1,))}))
    with pytest.raises(BuildOptionsError, match="rank 4, its profile rank 2"):
        preflight(dyn, TensorRTBuildOptions(profiles={"x": ((1, 3), (1, 3), (1, 3))}))
    with pytest.raises(BuildOptionsError, match="axis 0 is fixed at 2"):
        preflight(fixed, TensorRTBuildOptions(profiles=PROFILE))
    assert preflight(fixed, TensorRTBuildOptions()) == {"x": (2, 3, 8, 8)}
    with pytest.raises(BuildOptionsError, match="no such ONNX file"):
        preflight(tmp_path / "absent.onnx", TensorRTBuildOptions())
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(BuildOptionsError, match="not a readable ONNX model"):
        preflight(tmp_path / "junk.onnx", TensorRTBuildOptions())


@pytest.mark.needs_convert  # its ONNX models are built with onnx
def test_option_errors_come_before_tensorrt(tmp_path: Path) -> None:
    """A bad request fails with BuildOptionsError, and without importing TensorRT."""
    plain = _conv_model(tmp_path / "plain.onnx")
    code = (
        "import sys; from pathlib import Path\n"
        "from edge_mmer.convert.tensorrt_build import build_plan, TensorRTBuildOptions, BuildOptionsError\n"
        "try:\n"
        "    build_plan(Path(sys.argv[1]), TensorRTBuildOptions(precision='int8', profiles="
        "{'x': ((1, 3, 8, 8), (2, 3, 8, 8), (4, 3, 8, 8))}))\n"
        "except BuildOptionsError:\n"
        "    print('refused', 'tensorrt' in sys.modules, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(plain)], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "refused False False", out.stdout + out.stderr


@pytest.mark.needs_convert  # its ONNX models are built with onnx
def test_build_without_tensorrt_says_why(tmp_path: Path) -> None:
    ok, reason = tensorrt_available()
    if ok:
        pytest.skip(f"{reason} is usable here; the real builds below run instead")
    path = _conv_model(tmp_path / "m.onnx")
    with pytest.raises(TensorRTBuildError, match=r"m\.onnx.*TensorRT"):
        build_plan(path, TensorRTBuildOptions(profiles=PROFILE))
    assert reason


def test_modules_import_without_torch() -> None:
    mods = "edge_mmer.bundle.shapes, edge_mmer.bundle.plans, edge_mmer.convert.tensorrt_build"
    code = f"import sys, {mods}; print([m for m in ('torch', 'tensorrt', 'pycuda') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- real builds (TensorRT + GPU only)


@pytest.mark.needs_tensorrt
@pytest.mark.parametrize(
    ("precision", "strongly_typed", "kw"),
    [("fp32", False, {}), ("fp16", False, {}), ("fp16", True, {"fp16": True}), ("int8", False, {"qdq": True})],
)
def test_build_plan_real(tmp_path: Path, precision: str, strongly_typed: bool, kw: dict[str, bool]) -> None:
    path = _conv_model(tmp_path / "conv.onnx", **kw)
    cache = tmp_path / "timing.cache"
    opts = TensorRTBuildOptions(precision=precision, strongly_typed=strongly_typed, profiles=PROFILE,
                                timing_cache=cache)
    plan, facts = build_plan(path, opts)
    assert len(plan) > 0 and facts["plan_bytes"] == len(plan)
    assert cache.is_file() and cache.stat().st_size > 0
    assert facts["precision"] == precision and facts["strongly_typed"] is strongly_typed
    assert facts["profiles"] == {"x": {"min": [1, 3, 8, 8], "opt": [2, 3, 8, 8], "max": [4, 3, 8, 8]}}
    assert facts["tensorrt_version"] and facts["dla"] is None and len(facts["onnx_sha256"]) == 64
    assert ("FP16" in facts["builder_flags"]) is (precision != "fp32" and not strongly_typed)
    assert plan_compatibility(facts, probe_device_facts()) == [] or facts["gpu_name"] is None
    # second build reuses the timing cache
    _, again = build_plan(path, opts)
    assert again["timing_cache"]["loaded"] is True

    import tensorrt as trt

    engine = trt.Runtime(trt.Logger(trt.Logger.ERROR)).deserialize_cuda_engine(plan)
    assert engine is not None
    names = {engine.get_tensor_name(i) for i in range(engine.num_io_tensors)}
    assert names == {"x", "y"}


@pytest.mark.needs_tensorrt
def test_build_plan_parser_error_names_node(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    node = helper.make_node("NoSuchOp", ["x"], ["y"], name="bogus_node", domain="edge.mmer")
    graph = helper.make_graph(
        [node],
        "bad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("edge.mmer", 1)]
    )
    path = tmp_path / "bad.onnx"
    onnx.save(model, str(path))
    with pytest.raises(TensorRTBuildError, match=r"bad\.onnx.*node 0"):
        build_plan(path, TensorRTBuildOptions(precision="fp32"))


@pytest.mark.needs_tensorrt
def test_build_plan_dla_where_present(tmp_path: Path) -> None:
    import tensorrt as trt

    n_dla = trt.Builder(trt.Logger(trt.Logger.ERROR)).num_DLA_cores
    path = _conv_model(tmp_path / "conv.onnx")
    opts = TensorRTBuildOptions(precision="fp16", dla_core=0, profiles=static_profile_for_dla(PROFILE))
    if n_dla == 0:
        with pytest.raises(TensorRTBuildError, match="0 DLA core"):
            build_plan(path, opts)
        return
    _, facts = build_plan(path, opts)
    assert facts["dla"] == {"core": 0, "gpu_fallback": True} and "GPU_FALLBACK" in facts["builder_flags"]


# ---------------------------------------------------------------- bundle plans: which ONNX each precision compiles


def _bundle_copy(tmp_path: Path) -> Path:
    import shutil

    dst = tmp_path / "bundle"
    shutil.copytree(DEMO_BUNDLE, dst)
    return dst


def _set_artifacts(path: Path, name: str, change: Callable[[dict[str, Any]], object]) -> None:
    from edge_mmer.bundle import update_manifest

    arts = dict(read_bundle(path).networks[name]["artifacts"])
    change(arts)
    update_manifest(path, f"networks.{name}.artifacts", arts)


def built(request: PlanRequest) -> TensorRTBuildOptions:
    """The build options of a plan request that builds (not one that keeps an existing plan)."""
    assert request.options is not None, f"{request.network}: keeps its plan ({request.note})"
    return request.options


QUANTIZED = ("speech_encoder", "face_encoder", "fusion")
LSTMS = ("speech_context", "face_context")


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_plan_requests_float(precision: str) -> None:
    from edge_mmer.convert.tensorrt_plans import PlanOptions, plan_requests

    reqs = plan_requests(read_bundle(DEMO_BUNDLE), PlanOptions(precision=precision))
    assert [r.network for r in reqs] == [*QUANTIZED[:2], *LSTMS, "fusion"]
    for r in reqs:
        want = (f"tensorrt-{precision}", precision, f"onnx-{precision}", "")
        assert (r.kind, r.precision, r.onnx_kind, r.note) == want
        assert r.file == f"tensorrt/{r.network}.{precision}.plan" and built(r).precision == precision


def test_plan_requests_int8_from_int8_trt_and_fp16_for_the_lstms() -> None:
    from edge_mmer.convert.tensorrt_plans import PlanOptions, missing_plan_sources, plan_requests

    bundle = read_bundle(DEMO_BUNDLE)
    reqs = {r.network: r for r in plan_requests(bundle, PlanOptions(precision="int8"))}
    for name in QUANTIZED:
        r = reqs[name]
        assert (r.kind, r.precision, r.onnx_kind) == ("tensorrt-int8", "int8", "int8-trt")
        assert r.onnx_file == f"onnx/{name}.int8-trt.onnx" and built(r).precision == "int8" and not r.note
    assert all(built(r).dla_core is None for r in reqs.values())
    for name in LSTMS:
        r = reqs[name]
        assert (r.kind, r.precision, r.onnx_kind, built(r).precision) == ("tensorrt-fp16", "fp16", "onnx-fp16", "fp16")
        assert "never quantized" in r.note
    assert missing_plan_sources(bundle.network_specs, "int8") == []
    assert missing_plan_sources(bundle.network_specs, "fp16") == []


def test_dla_plans_are_fp16_and_int8_on_dla_is_refused() -> None:
    """D2: DLA takes INT8 only by implicit quantization; a Q/DQ plan "on DLA" would run on the GPU."""
    from edge_mmer.convert.tensorrt_plans import PlanOptions, plan_requests

    reqs = {r.network: r for r in plan_requests(read_bundle(DEMO_BUNDLE), PlanOptions(precision="fp16", dla_core=0))}
    face = built(reqs["face_encoder"])
    assert face.dla_core == 0 and face.precision == "fp16" and face.profile is not None and face.profile.is_static
    assert all(built(reqs[n]).dla_core is None for n in ("speech_encoder", *LSTMS, "fusion"))
    with pytest.raises(BuildOptionsError, match="DLA core 0: DLA cannot run an INT8 Q/DQ"):
        PlanOptions(precision="int8", dla_core=0)


def test_cli_refuses_int8_on_dla_before_tensorrt(tmp_path: Path) -> None:
    """``convert --tensorrt --plan-precision int8 --dla-core 0`` exits 2 naming DLA, INT8 and what to do instead,
    here where TensorRT is absent (the check comes before TensorRT, torch or the bundle is touched)."""
    from support.cli import run_cli

    out = run_cli("convert", "--bundle", str(tmp_path / "no-bundle"), "--tensorrt", "--plan-precision", "int8",
                  "--dla-core", "0")
    assert out.returncode == 2, out.stderr
    msg = out.stderr.strip().splitlines()[-1]
    assert msg.startswith("edge-mmer convert: --dla-core 0 with --plan-precision int8: DLA cannot run an INT8")
    assert "'fp16' with a DLA core" in msg and "'int8' without a DLA core" in msg


def test_int8_plan_record_carries_calibration_and_its_own_check() -> None:
    from edge_mmer.convert.tensorrt_plans import PlanOptions, _record, plan_requests

    bundle = read_bundle(DEMO_BUNDLE)
    req = next(r for r in plan_requests(bundle, PlanOptions(precision="int8")) if r.network == "fusion")
    arts = bundle.networks["fusion"]["artifacts"]
    facts = {"tensorrt_version": "10.3.0", "precision": "int8"}
    rec = _record(req, bundle.artifact("fusion", "int8-trt"), facts)
    assert rec["file"] == "tensorrt/fusion.int8.plan" and rec["onnx"] == "onnx/fusion.int8-trt.onnx"
    assert rec["onnx_artifact"] == "int8-trt" and rec["onnx_deployable"] is True and "deployable" not in rec
    assert rec["calibration_sha256"] == arts["int8-trt"]["calibration"]["sha256"]
    bad = {"drift": {"outputs": {}}, "deployable": False, "not_deployable_because": ["y cosine 0.5 < 0.99"]}
    rec = _record(req, bundle.artifact("fusion", "int8-trt"), facts, bad)
    assert rec["deployable"] is False and rec["not_deployable_because"] == ["y cosine 0.5 < 0.99"]


class _Scaled(Runner):
    """Another backend's runner with its outputs changed: a plan that drifts."""

    backend = "fake"

    def __init__(self, inner: Runner, scale: float) -> None:
        super().__init__(inner.network, inner.inputs, inner.outputs)
        self.inner, self.scale = inner, scale

    def _activate(self) -> None:
        self.inner.activate()

    def _deactivate(self) -> None:
        self.inner.deactivate()

    def _infer(self, feeds: Any) -> dict[str, np.ndarray]:
        out = self.inner.infer(feeds)
        rng = np.random.default_rng(0)
        return {k: v + self.scale * rng.standard_normal(v.shape).astype(v.dtype) for k, v in out.items()}


def test_plans_are_checked_against_fp32_onnx() -> None:
    """D8: a plan's own drift (cosine, max-abs through compare.py) and verdict; the speech encoder at
    the profile's three time lengths. The onnx-fp16 model on ONNX Runtime stands in for an FP16 plan here."""
    from edge_mmer.convert.plan_check import check_plan
    from edge_mmer.runtime.runners.onnxruntime_runner import OnnxRuntimeRunner

    pytest.importorskip("onnxruntime")
    bundle = read_bundle(DEMO_BUNDLE)
    net = bundle.network("speech_encoder")
    art = bundle.artifact("speech_encoder", "onnx-fp16")
    assert art is not None

    def fp16() -> Runner:
        return OnnxRuntimeRunner("speech_encoder", bundle.read_bytes(art.file), net.inputs, net.outputs)

    good = check_plan(bundle, "speech_encoder", b"", {"precision": "fp16"}, plan_runner=fp16)
    out = good["drift"]["outputs"][net.outputs[0].name]
    assert good["deployable"] is True and out["cosine"] > 0.999 and 0 < out["max_abs"] < 0.1
    assert good["drift"]["runs"] == 6 and len(good["drift"]["shapes"]) == 3
    assert any("[1, 799, 40]" in shape for shape in good["drift"]["shapes"])
    bad = check_plan(bundle, "speech_encoder", b"", {"precision": "fp16"}, plan_runner=lambda: _Scaled(fp16(), 1.0))
    assert bad["deployable"] is False and "< 0.999" in bad["not_deployable_because"][0]


def test_int8_plans_non_deployable_and_existing_fp16(tmp_path: Path) -> None:
    from edge_mmer.bundle import update_manifest
    from edge_mmer.convert.tensorrt_plans import PlanOptions, TensorRTPlanError, plan_requests

    path = _bundle_copy(tmp_path)

    def refuse(arts: dict[str, Any]) -> None:
        arts["int8-trt"] = {**arts["int8-trt"], "deployable": False, "not_deployable_because": ["cosine 0.95 < 0.99"]}

    _set_artifacts(path, "fusion", refuse)
    # an existing FP16 plan of an LSTM is kept (not rebuilt) unless overwrite
    arts = dict(read_bundle(path).networks["speech_context"]["artifacts"])
    arts["tensorrt-fp16"] = {"file": "tensorrt/speech_context.fp16.plan", "precision": "fp16"}
    update_manifest(path, "networks.speech_context.artifacts", arts,
                    new_files={"tensorrt/speech_context.fp16.plan": b"plan"})
    reqs = {r.network: r for r in plan_requests(read_bundle(path), PlanOptions(precision="int8"))}
    assert reqs["fusion"].kind == "tensorrt-fp16" and reqs["fusion"].onnx_kind == "onnx-fp16"
    assert "not deployable (cosine 0.95 < 0.99)" in reqs["fusion"].note
    assert reqs["speech_context"].options is None
    assert "keeping the existing tensorrt-fp16" in reqs["speech_context"].note
    assert reqs["face_context"].options is not None
    again = {r.network: r for r in plan_requests(read_bundle(path), PlanOptions(precision="int8", overwrite=True))}
    assert again["speech_context"].options is not None
    # the precision asked for is never silently kept
    with pytest.raises(TensorRTPlanError, match=r"speech_context' already has a 'tensorrt-fp16' plan.*--overwrite"):
        plan_requests(read_bundle(path), PlanOptions(precision="fp16"))


def test_int8_plans_need_int8_trt_and_fp16_sources(tmp_path: Path) -> None:
    from edge_mmer.convert.tensorrt_plans import PlanOptions, TensorRTPlanError, missing_plan_sources, plan_requests

    path = _bundle_copy(tmp_path)
    _set_artifacts(path, "face_context", lambda arts: arts.pop("onnx-fp16"))
    bundle = read_bundle(path)
    # weakly typed: the FP16 flag turns the FP32 graph into an FP16 plan
    r = next(r for r in plan_requests(bundle, PlanOptions(precision="int8")) if r.network == "face_context")
    assert (r.onnx_kind, r.precision, r.kind) == ("onnx-fp32", "fp16", "tensorrt-fp16")
    # strongly typed takes types from the file: it needs the FP16 graph
    assert missing_plan_sources(bundle.network_specs, "int8", strongly_typed=True) == ["face_context: onnx-fp16"]
    with pytest.raises(TensorRTPlanError, match=r"face_context' has no 'onnx-fp16'.*--precision fp16"):
        plan_requests(bundle, PlanOptions(precision="int8", strongly_typed=True))
    for name in QUANTIZED:
        _set_artifacts(path, name, lambda arts: arts.pop("int8-trt"))
    bundle = read_bundle(path)
    with pytest.raises(TensorRTPlanError, match=r"no network has an 'int8-trt' artifact.*--precision int8-trt"):
        plan_requests(bundle, PlanOptions(precision="int8"))
    assert len(missing_plan_sources(bundle.network_specs, "int8")) == 5
    with pytest.raises(ValueError, match="plan precision"):
        missing_plan_sources(bundle.network_specs, "int4")


def test_build_bundle_plans_without_tensorrt_writes_nothing(tmp_path: Path) -> None:
    from edge_mmer.convert.tensorrt_plans import PlanOptions, TensorRTPlanError, build_bundle_plans

    ok, reason = tensorrt_available()
    if ok:
        pytest.skip(f"{reason} is usable here: the real INT8 build below runs instead")
    path = _bundle_copy(tmp_path)
    before = (path / "manifest.json").read_bytes()
    with pytest.raises(TensorRTPlanError, match=r"--tensorrt: TensorRT is not installed.*target device"):
        build_bundle_plans(path, PlanOptions(precision="int8"))
    assert (path / "manifest.json").read_bytes() == before and not (path / "tensorrt").exists()


@pytest.mark.needs_tensorrt
def test_build_bundle_plans_int8_real(tmp_path: Path) -> None:
    from edge_mmer.convert.tensorrt_plans import PlanOptions, build_bundle_plans

    path = _bundle_copy(tmp_path)
    plans = build_bundle_plans(path, PlanOptions(precision="int8", workspace_mib=512))
    bundle = read_bundle(path)
    for name in QUANTIZED:
        assert plans[name]["precision"] == "int8" and "INT8" in plans[name]["builder_flags"]
        assert bundle.networks[name]["artifacts"]["tensorrt-int8"]["onnx"] == f"onnx/{name}.int8-trt.onnx"
    for name in LSTMS:
        assert plans[name]["precision"] == "fp16" and "tensorrt-int8" not in bundle.networks[name]["artifacts"]
        assert bundle.networks[name]["artifacts"]["tensorrt-fp16"]["onnx_artifact"] == "onnx-fp16"
    for name, spec in plans.items():  # each plan checked against FP32 ONNX, its own verdict (D8)
        outs = spec["drift"]["outputs"]
        print(f"PLAN-DRIFT {name} {spec['precision']} " + " ".join(
            f"{o}: cosine {v['cosine']:.6f} max_abs {v['max_abs']:.3e}" for o, v in outs.items()))
        assert outs and isinstance(spec["deployable"], bool) and spec["drift"]["runs"] >= 2
    from edge_mmer.runtime.runners.select import load_runners

    with load_runners(path, backend="tensorrt", precision="int8") as loaded:
        assert loaded.backend == "tensorrt"
        assert loaded.artifacts == {**dict.fromkeys(QUANTIZED, "tensorrt-int8"),
                                    **dict.fromkeys(LSTMS, "tensorrt-fp16")}


@pytest.mark.needs_convert
def test_qdq_checks_scales_and_placement() -> None:
    """D9: the check covers what its docstring claims (scale axis, count, sign), and the placement
    rule finds the quantized Conv/Gemm outputs of the committed demo graph (made before the fix)."""
    onnx = pytest.importorskip("onnx")
    from edge_mmer.convert.quantize import check_tensorrt_qdq, quantized_weighted_outputs

    model = onnx.load(str(DEMO_BUNDLE / "onnx" / "face_encoder.int8-trt.onnx"))
    assert check_tensorrt_qdq(model) == []
    assert len(quantized_weighted_outputs(model)) > 0  # Conv -> Q -> DQ -> Relu: ORT's default placement
    weights = {t.name for t in model.graph.initializer}
    node = next(n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in weights
                and any(a.name == "axis" for a in n.attribute))
    next(a for a in node.attribute if a.name == "axis").i = 1
    assert any("per-channel weight scales on axis 1" in p for p in check_tensorrt_qdq(model))
