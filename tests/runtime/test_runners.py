"""Runners on the committed demo bundle: real ONNX Runtime sessions, backend and precision selection,
TensorRT refusals (the TensorRT runs themselves skip without TensorRT and a GPU)."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.paths import DEMO_BUNDLE, JETSON_FIXTURES

from edge_mmer.bundle import Bundle, read_bundle, update_manifest
from edge_mmer.bundle.plans import read_l4t_release
from edge_mmer.runtime.runners.base import Runner, RunnerError, TensorSpec
from edge_mmer.runtime.runners.onnxruntime_runner import (
    CPU_EP,
    TRT_EP,
    OnnxRuntimeRunner,
    choose_providers,
    tensorrt_ep_options,
    trt_ep_cache_root,
)
from edge_mmer.runtime.runners.select import NETWORKS, LoadedRunners, load_runners
from edge_mmer.runtime.runners.tensorrt_runner import TensorRTRunner

ort = pytest.importorskip("onnxruntime", reason="the runner tests use real ONNX Runtime sessions")

DEMO = DEMO_BUNDLE
JETSON = JETSON_FIXTURES
DYNAMIC = {"time": 57, "batch": 3}


@pytest.fixture(scope="module")
def demo() -> Bundle:
    return read_bundle(DEMO)


def feeds_for(entry: dict[str, Any], seed: int = 0, **dims: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = {**DYNAMIC, **dims}
    return {io["name"]: rng.standard_normal([d if isinstance(d, int) else sizes[d] for d in io["shape"]])
            .astype(io["dtype"]) for io in entry["inputs"]}


def copy_bundle(tmp_path: Path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(DEMO, dst)
    return dst


# ---------------------------------------------------------------- the runner equals a direct session


@pytest.mark.parametrize("kind", ["onnx-fp32", "onnx-fp16", "int8-cpu"])
def test_runner_output_equals_a_direct_session(demo: Bundle, kind: str) -> None:
    for name in NETWORKS:
        entry = demo.networks[name]
        if kind not in entry["artifacts"]:
            assert kind == "int8-cpu" and name in ("speech_context", "face_context")
            continue
        rel = entry["artifacts"][kind]["file"]
        inputs = [TensorSpec.from_manifest(i) for i in entry["inputs"]]
        outputs = [TensorSpec.from_manifest(o) for o in entry["outputs"]]
        feeds = feeds_for(entry, seed=len(name))
        direct = ort.InferenceSession(str(demo.file(rel)), providers=[CPU_EP])
        want = dict(zip([o.name for o in direct.get_outputs()], direct.run(None, feeds), strict=True))
        runner = OnnxRuntimeRunner(name, demo.read_bytes(rel), inputs, outputs)
        with runner:
            got = runner.infer(feeds)
            assert runner.providers_used == [CPU_EP]
        assert set(got) == {o.name for o in outputs}
        for out in outputs:
            np.testing.assert_array_equal(got[out.name], want[out.name], err_msg=f"{name} {kind} {out.name}")


def test_dynamic_axes_take_any_size(demo: Bundle) -> None:
    loaded = load_runners(demo, backend="onnxruntime")
    with loaded:
        for t in (28, 300):
            out = loaded["speech_encoder"].infer(feeds_for(demo.networks["speech_encoder"], time=t))
            assert out["features"].shape == (1, 128)
        for n in (1, 40):
            out = loaded["face_encoder"].infer(feeds_for(demo.networks["face_encoder"], batch=n))
            assert out["embedding"].shape == (n, 128)


# ---------------------------------------------------------------- feed checks name network and tensor


Fusion = tuple[OnnxRuntimeRunner, dict[str, np.ndarray]]


@pytest.fixture(scope="module")
def fusion(demo: Bundle) -> Iterator[Fusion]:
    entry = demo.networks["fusion"]
    runner = OnnxRuntimeRunner("fusion", demo.read_bytes(entry["artifacts"]["onnx-fp32"]["file"]),
                               [TensorSpec.from_manifest(i) for i in entry["inputs"]],
                               [TensorSpec.from_manifest(o) for o in entry["outputs"]])
    runner.activate()
    yield runner, feeds_for(entry)
    runner.deactivate()


def test_feed_wrong_name(fusion: Fusion) -> None:
    runner, feeds = fusion
    bad = {("hidden" if k == "h" else k): v for k, v in feeds.items()}
    with pytest.raises(RunnerError, match=r"fusion: inputs \['c', 'hidden', 'x'\] do not match .*'h'"):
        runner.infer(bad)
    with pytest.raises(RunnerError, match="fusion: inputs"):
        runner.infer({k: v for k, v in feeds.items() if k != "c"})


def test_feed_wrong_dtype_rank_and_fixed_dim(fusion: Fusion) -> None:
    runner, feeds = fusion
    with pytest.raises(RunnerError, match=r"fusion: input 'x' has dtype float64, expected float32"):
        runner.infer({**feeds, "x": feeds["x"].astype(np.float64)})
    with pytest.raises(RunnerError, match=r"fusion: input 'h' has shape \(64,\), expected rank 2"):
        runner.infer({**feeds, "h": feeds["h"][0]})
    with pytest.raises(RunnerError, match=r"fusion: input 'c' axis 1 is 63, expected 64"):
        runner.infer({**feeds, "c": feeds["c"][:, :63]})
    assert set(runner.infer(feeds)) == {"features", "h_out", "c_out"}


def test_inactive_runner_and_io_mismatch(demo: Bundle) -> None:
    entry = demo.networks["fusion"]
    model = demo.read_bytes(entry["artifacts"]["onnx-fp32"]["file"])
    inputs = [TensorSpec.from_manifest(i) for i in entry["inputs"]]
    outputs = [TensorSpec.from_manifest(o) for o in entry["outputs"]]
    runner = OnnxRuntimeRunner("fusion", model, inputs, outputs)
    with pytest.raises(RunnerError, match=r"fusion: infer.. on a runner that is not active"):
        runner.infer(feeds_for(entry))
    wrong = OnnxRuntimeRunner("fusion", model, [TensorSpec("x", (1, 64))], outputs)
    with pytest.raises(RunnerError, match="fusion: the ONNX model's I/O"):
        wrong.activate()
    assert not wrong.active
    with pytest.raises(RunnerError, match="fusion: ONNX Runtime cannot load the model"):
        OnnxRuntimeRunner("fusion", b"not a model", inputs, outputs).activate()


# ---------------------------------------------------------------- providers and threads


def test_providers_auto_and_explicit() -> None:
    have = ort.get_available_providers()
    auto = choose_providers("auto")
    names = [p if isinstance(p, str) else p[0] for p in auto]
    assert names[-1] == CPU_EP and all(n in have for n in names)
    assert names == [p for p in (TRT_EP, "CUDAExecutionProvider", CPU_EP) if p in have]
    assert choose_providers(["cpu"]) == [CPU_EP]
    if "CUDAExecutionProvider" not in have:
        with pytest.raises(RunnerError, match=r"CUDAExecutionProvider not available .*onnxruntime-gpu"):
            choose_providers(["cuda"])


def test_tensorrt_ep_options(tmp_path: Path) -> None:
    profiles = {"log_mel": ((1, 28, 40), (1, 248, 40), (1, 798, 40)), "h": ((1, 64),) * 3}
    opts = tensorrt_ep_options(fp16=False, int8=True, cache_dir=tmp_path / "c", profiles=profiles, device_id=1)
    assert opts["trt_fp16_enable"] is True and opts["trt_int8_enable"] is True and opts["device_id"] == 1
    assert opts["trt_engine_cache_enable"] is True and opts["trt_engine_cache_path"] == str(tmp_path / "c")
    assert opts["trt_profile_min_shapes"] == "log_mel:1x28x40"  # static inputs need no profile
    assert opts["trt_profile_opt_shapes"] == "log_mel:1x248x40"
    assert opts["trt_profile_max_shapes"] == "log_mel:1x798x40"
    plain = tensorrt_ep_options()
    assert plain["trt_fp16_enable"] is False and "trt_engine_cache_path" not in plain
    assert "trt_profile_min_shapes" not in tensorrt_ep_options(profiles={"h": ((1, 64),) * 3})


def test_trt_ep_cache_is_bundle_independent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert trt_ep_cache_root() == tmp_path / "edge-mmer" / "trt-ep"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert trt_ep_cache_root() == Path.home() / ".cache" / "edge-mmer" / "trt-ep"


def test_threads_reach_the_session(demo: Bundle) -> None:
    loaded = load_runners(demo, backend="onnxruntime", threads=1, networks=["fusion"])
    with loaded:
        runner = loaded["fusion"]
        assert isinstance(runner, OnnxRuntimeRunner)
        opts = runner.session.get_session_options()
        assert opts.intra_op_num_threads == 1 and opts.inter_op_num_threads == 1
        assert runner.description == f"onnxruntime ({CPU_EP}, 1 thread)"
    assert not runner.active
    with pytest.raises(RunnerError, match="threads must be an integer >= 0"):
        load_runners(demo, threads=-1)


# ---------------------------------------------------------------- precision selection


def test_fp32_everywhere(demo: Bundle) -> None:
    runners, notes = load_runners(demo, precision="fp32")
    loaded = load_runners(demo, precision="fp32")
    assert set(runners) == set(NETWORKS) and loaded.backend == "onnxruntime"
    assert loaded.artifacts == dict.fromkeys(NETWORKS, "onnx-fp32")
    assert all(r.active for r in runners.values())
    assert any("ONNX Runtime providers: CPUExecutionProvider" in n for n in notes)
    loaded.close()
    for r in runners.values():
        r.deactivate()


def test_fp16_uses_fp16_artifacts(demo: Bundle) -> None:
    loaded = load_runners(demo, precision="fp16")
    assert loaded.artifacts == dict.fromkeys(NETWORKS, "onnx-fp16")
    out = loaded["face_encoder"].infer(feeds_for(demo.networks["face_encoder"]))
    assert out["embedding"].dtype == np.float32  # FP16 inside, float32 I/O
    assert any("fp16 on the CPU" in n for n in loaded.notes)
    loaded.close()


def test_int8_on_cpu_takes_int8_cpu_and_lstms_stay_fp32(demo: Bundle, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="edge_mmer.runtime.runners.load"):
        loaded = load_runners(demo, precision="int8")
    assert loaded.artifacts == {"speech_encoder": "int8-cpu", "face_encoder": "int8-cpu", "fusion": "int8-cpu",
                                "speech_context": "onnx-fp32", "face_context": "onnx-fp32"}
    lstm = [n for n in loaded.notes if "never quantized" in n]
    assert lstm == ["speech_context, face_context: no INT8 artifact (LSTM step graphs are never quantized); "
                    "running onnx-fp32"]
    assert sum("never quantized" in r.getMessage() for r in caplog.records) == 1  # said once
    assert "int8-cpu" in loaded.describe() and "speech_context: onnx-fp32 on onnxruntime" in loaded.describe()
    loaded.close()


def test_non_deployable_int8_is_refused_with_fallback(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = copy_bundle(tmp_path)
    arts = dict(read_bundle(path).networks["face_encoder"]["artifacts"])
    arts["int8-cpu"] = {**arts["int8-cpu"], "deployable": False,
                        "not_deployable_because": ["end-to-end agreement 0.9500 < 0.99"]}
    update_manifest(path, "networks.face_encoder.artifacts", arts)
    with caplog.at_level(logging.WARNING, logger="edge_mmer.runtime.runners.load"):
        loaded = load_runners(path, precision="int8")
    assert loaded.artifacts["face_encoder"] == "onnx-fp32"
    assert loaded.artifacts["speech_encoder"] == "int8-cpu" and loaded.artifacts["fusion"] == "int8-cpu"
    refused = [n for n in loaded.notes if "refusing" in n]
    assert len(refused) == 1
    assert refused[0].startswith("face_encoder: refusing INT8 artifact 'int8-cpu'")
    assert "agreement 0.9500 < 0.99" in refused[0] and "running onnx-fp32 instead" in refused[0]
    assert [r.levelno for r in caplog.records if "refusing" in r.getMessage()] == [logging.WARNING]
    loaded.close()


def test_drift_figures_named_when_no_reason_recorded(tmp_path: Path) -> None:
    path = copy_bundle(tmp_path)
    arts = dict(read_bundle(path).networks["fusion"]["artifacts"])
    arts["int8-cpu"] = {**arts["int8-cpu"], "deployable": False, "not_deployable_because": []}
    update_manifest(path, "networks.fusion.artifacts", arts)
    loaded = load_runners(path, precision="int8", activate=False)
    note = next(n for n in loaded.notes if "refusing" in n)
    assert note.startswith("fusion:") and "output cosine 0.999966" in note and "end-to-end agreement 1.0000" in note
    assert not any(r.active for r in loaded.runners.values())


# ---------------------------------------------------------------- backends


def test_auto_here_is_onnxruntime_with_a_note(demo: Bundle) -> None:
    loaded = load_runners(demo, backend="auto", activate=False)
    assert loaded.backend == "onnxruntime"
    why = [n for n in loaded.notes if n.startswith("backend auto")]
    assert len(why) == 1 and "ONNX Runtime, not TensorRT" in why[0] and "--tensorrt" in why[0]


def test_backend_tensorrt_here_says_why(demo: Bundle) -> None:
    try:
        import tensorrt  # noqa: F401
        have_trt = True
    except Exception:
        have_trt = False
    with pytest.raises(RunnerError, match="backend tensorrt cannot run here") as err:
        load_runners(demo, backend="tensorrt")
    text = str(err.value)
    assert "no TensorRT tensorrt-fp32 plan for any network" in text and "--plan-precision fp32" in text
    if not have_trt:
        assert "'tensorrt' cannot be imported" in text


def test_bad_arguments(demo: Bundle) -> None:
    with pytest.raises(RunnerError, match="backend must be one of auto, onnxruntime, tensorrt"):
        load_runners(demo, backend="openvino")
    with pytest.raises(RunnerError, match="precision must be one of fp32, fp16, int8"):
        load_runners(demo, precision="bf16")
    with pytest.raises(RunnerError, match=r"network.s. voice_encoder not in the bundle"):
        load_runners(demo, networks=["voice_encoder"])


def test_bundle_without_onnx_tells_to_convert(tmp_path: Path) -> None:
    path = copy_bundle(tmp_path)
    bundle = read_bundle(path)
    for name, entry in bundle.networks.items():
        files = [a["file"] for a in entry["artifacts"].values()]
        update_manifest(path, f"networks.{name}.artifacts", {}, remove_files=files)
    with pytest.raises(RunnerError, match=rf"no ONNX artifacts.*edge-mmer convert --bundle {path}"):
        load_runners(path)
    with pytest.raises(RunnerError, match="no ONNX artifacts"):
        load_runners(path, backend="onnxruntime", precision="int8")


def test_corrupted_model_file_is_caught_by_its_hash(tmp_path: Path) -> None:
    from edge_mmer.bundle import BundleError

    path = copy_bundle(tmp_path)
    bundle = read_bundle(path)
    target = path / bundle.networks["fusion"]["artifacts"]["onnx-fp32"]["file"]
    data = bytearray(target.read_bytes())
    data[-5] ^= 1
    target.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"fusion\.fp32\.onnx"):
        load_runners(bundle, backend="onnxruntime", networks=["fusion"])


# ---------------------------------------------------------------- recorded TensorRT plans


def orin_facts(precision: str) -> dict[str, Any]:
    l4t = read_l4t_release((JETSON / "nv_tegra_release_r36.4.3").read_text())
    return {"format": "tensorrt-plan", "precision": precision, "tensorrt_version": "10.3.0", "gpu_name": "Orin",
            "compute_capability": "8.7", "l4t_release": l4t, "jetpack_hint": "6.2", "cuda_version": "12.6",
            "builder_flags": ["FP16"], "dla": None, "profiles": {}}


def add_fake_plans(path: Path, networks: list[str], precision: str = "fp16") -> None:
    bundle = read_bundle(path)
    for name in networks:
        rel = f"tensorrt/{name}.{precision}.plan"
        arts = dict(bundle.networks[name]["artifacts"])
        arts[f"tensorrt-{precision}"] = {"file": rel, **orin_facts(precision)}
        update_manifest(path, f"networks.{name}.artifacts", arts, new_files={rel: b"not a real plan " + name.encode()})


def test_plans_for_another_device(tmp_path: Path) -> None:
    path = copy_bundle(tmp_path)
    add_fake_plans(path, list(NETWORKS))
    loaded = load_runners(path, backend="auto", precision="fp16")
    assert loaded.backend == "onnxruntime" and loaded.artifacts["fusion"] == "onnx-fp16"
    why = [n for n in loaded.notes if n.startswith("backend auto")]
    assert len(why) == 1
    assert "plans built for another device" in why[0]
    assert "GPU name: plan built with Orin" in why[0] and "L4T release: plan built on 36.4.3" in why[0]
    assert "speech_encoder (tensorrt-fp16)" in why[0]
    loaded.close()
    with pytest.raises(RunnerError, match=r"backend tensorrt cannot run here.*GPU name: plan built with Orin"):
        load_runners(path, backend="tensorrt", precision="fp16")
    # fp32 has no plans at all: said as such
    with pytest.raises(RunnerError, match="no TensorRT tensorrt-fp32 plan for any network"):
        load_runners(path, backend="tensorrt", precision="fp32")


def test_plans_for_some_networks_only(tmp_path: Path) -> None:
    path = copy_bundle(tmp_path)
    add_fake_plans(path, ["speech_encoder", "face_encoder"])
    loaded = load_runners(path, backend="auto", precision="fp16", activate=False)
    assert loaded.backend == "onnxruntime"
    why = next(n for n in loaded.notes if n.startswith("backend auto"))
    assert "plan for speech_context, face_context, fusion" in why


def test_int8_plan_chain_with_a_refused_int8_artifact(tmp_path: Path) -> None:
    """INT8 on TensorRT: tensorrt-int8 where it exists, the FP16 plan for the LSTMs and for a refused INT8."""
    path = copy_bundle(tmp_path)
    add_fake_plans(path, ["speech_encoder", "face_encoder", "fusion"], precision="int8")
    add_fake_plans(path, list(NETWORKS), precision="fp16")
    arts = dict(read_bundle(path).networks["fusion"]["artifacts"])
    arts["int8-trt"] = {**arts["int8-trt"], "deployable": False, "not_deployable_because": ["cosine 0.9 < 0.99"]}
    update_manifest(path, "networks.fusion.artifacts", arts)
    with pytest.raises(RunnerError) as err:
        load_runners(path, backend="tensorrt", precision="int8")
    text = str(err.value)
    assert "speech_encoder (tensorrt-int8), face_encoder (tensorrt-int8)" in text
    assert "speech_context (tensorrt-fp16)" in text and "fusion (tensorrt-fp16)" in text
    # auto falls back to ONNX Runtime; the TensorRT-side choices are not reported as if they ran
    loaded = load_runners(path, backend="auto", precision="int8", activate=False)
    assert loaded.backend == "onnxruntime" and loaded.artifacts["fusion"] == "int8-cpu"
    assert not any("tensorrt-fp16 instead" in n for n in loaded.notes)


def test_a_plan_that_failed_its_own_check_is_refused(tmp_path: Path) -> None:
    """D8: a plan recorded ``deployable: false`` by its check against FP32 ONNX is not run; the next plan is."""
    from edge_mmer.runtime.runners.choose import choose_plans

    path = copy_bundle(tmp_path)
    add_fake_plans(path, list(NETWORKS), precision="fp16")
    add_fake_plans(path, list(NETWORKS), precision="fp32")
    arts = dict(read_bundle(path).networks["fusion"]["artifacts"])
    arts["tensorrt-fp16"] = {**arts["tensorrt-fp16"], "deployable": False,
                             "not_deployable_because": ["y cosine 0.95 < 0.999"]}
    update_manifest(path, "networks.fusion.artifacts", arts)
    bundle = read_bundle(path)
    choice = choose_plans(bundle.network_specs, list(NETWORKS), "fp16", bundle.path)
    assert choice.kinds["fusion"] == "tensorrt-fp32" and choice.kinds["speech_encoder"] == "tensorrt-fp16"
    assert any("refusing plan 'tensorrt-fp16'" in t and "y cosine 0.95 < 0.999" in t for t in choice.notes.items)


def test_tensorrt_runner_refuses_a_plan_for_another_device() -> None:
    """Before TensorRT is imported: the recorded facts are compared with this device."""
    runner = TensorRTRunner("face_encoder", b"plan", [TensorSpec("face", ("batch", 3, 96, 96))],
                            [TensorSpec("embedding", ("batch", 128))], build_facts=orin_facts("fp16"))
    with pytest.raises(RunnerError, match=r"face_encoder: this TensorRT plan was built for another device: .*Orin"):
        runner.activate()
    assert not runner.active
    with pytest.raises(RunnerError, match="empty TensorRT plan"):
        TensorRTRunner("x", b"", [], [])


def test_loaded_runners_unpack_and_context(demo: Bundle) -> None:
    loaded = load_runners(demo, networks=["speech_context"], activate=False)
    assert isinstance(loaded, LoadedRunners)
    runners, notes = loaded
    assert list(runners) == ["speech_context"] and notes is loaded.notes
    with loaded as active:
        assert active["speech_context"].active
    assert not runners["speech_context"].active


def test_runners_import_without_torch() -> None:
    mods = ("edge_mmer.runtime.runners.select, edge_mmer.runtime.runners.tensorrt_runner, "
            "edge_mmer.runtime.runners.onnxruntime_runner")
    code = (f"import sys, {mods}\n"
            "from edge_mmer.runtime.runners.select import load_runners\n"
            f"load_runners({str(DEMO)!r}, precision='int8').close()\n"
            "print([m for m in ('torch', 'tensorrt', 'pycuda') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# ---------------------------------------------------------------- TensorRT itself (GPU + TensorRT only)


@pytest.mark.needs_tensorrt
def test_tensorrt_runner_matches_onnxruntime(demo: Bundle, tmp_path: Path) -> None:
    pytest.importorskip("pycuda.driver", reason="the TensorRT runner needs pycuda (pip install edge-mmer[tensorrt])")
    from edge_mmer.bundle.shapes import derive_profiles
    from edge_mmer.convert.tensorrt_build import TensorRTBuildOptions, build_plan

    for name in ("speech_encoder", "face_encoder", "fusion"):
        entry = demo.networks[name]
        rel = entry["artifacts"]["onnx-fp32"]["file"]
        plan, facts = build_plan(demo.file(rel), TensorRTBuildOptions(
            precision="fp32", profiles=derive_profiles(name, entry, demo.config)))
        assert facts["cleared_flags"] == ["TF32"] and facts["tf32"] is False  # FP32 is FP32 (D3)
        inputs = [TensorSpec.from_manifest(i) for i in entry["inputs"]]
        outputs = [TensorSpec.from_manifest(o) for o in entry["outputs"]]
        direct = OnnxRuntimeRunner(name, demo.read_bytes(rel), inputs, outputs)
        with TensorRTRunner(name, plan, inputs, outputs, build_facts=facts) as trt_runner, direct:
            assert trt_runner.description.startswith("tensorrt ")
            for size in (2, 6, 40, 1):  # the buffers grow for 40 and are reused for 1
                # the speech encoder (dynamic time, LSTM over time, Gather(-1)) at 57, 799 and 28 frames
                feeds = feeds_for(entry, seed=size, batch=size, time={2: 57, 6: 799, 40: 28, 1: 248}[size])
                got, want = trt_runner.infer(feeds), direct.infer(feeds)
                for out in outputs:
                    assert got[out.name].shape == want[out.name].shape
                    np.testing.assert_allclose(got[out.name], want[out.name], rtol=1e-3, atol=1e-3)
            if name == "face_encoder":
                with pytest.raises(RunnerError, match="outside the plan's optimization profile"):
                    trt_runner.infer(feeds_for(entry, batch=41))


def test_a_runner_set_activates_all_or_none() -> None:
    """One runner that fails to load leaves none of the others active (Networks and LoadedRunners share it)."""
    from edge_mmer.runner import RunnerSet

    class _Fake(Runner):
        backend = "fake"

        def __init__(self, network: str, broken: bool = False) -> None:
            super().__init__(network, [], [])
            self.broken = broken

        def _activate(self) -> None:
            if self.broken:
                raise RunnerError(f"{self.network}: cannot load")

        def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:  # pragma: no cover - never called
            return {}

        def _deactivate(self) -> None:
            pass

    good = _Fake("a")
    runners = RunnerSet({"a": good, "b": _Fake("b", broken=True)})
    with pytest.raises(RunnerError, match="b: cannot load"):
        runners.activate()
    assert not good.active
    assert isinstance(load_runners(DEMO, networks=["fusion"], activate=False), RunnerSet)
