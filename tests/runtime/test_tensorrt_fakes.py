"""The TensorRT runner's CUDA context and logger discipline (D6, D11), with stand-ins for ``tensorrt`` and
``pycuda.driver`` at their API boundary: the calls the runner makes, with the driver's context stack
and TensorRT's one-logger rule modelled. The real runs are in test_runners.py (skipped without a GPU).
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from edge_mmer.runtime.runners import trt_process
from edge_mmer.runtime.runners.base import RunnerError, TensorSpec
from edge_mmer.runtime.runners.fit import ShapeFit
from edge_mmer.runtime.runners.tensorrt_runner import TensorRTRunner


class _Driver:
    """pycuda.driver: a per-thread context stack, retains and releases counted, memory as numpy arrays."""

    def __init__(self) -> None:
        self.stack: list[Any] = []
        self.retains = 0
        self.detaches = 0
        self.memory: dict[int, np.ndarray] = {}
        driver = self

        class Ctx:
            def push(self) -> None:
                driver.stack.append(self)

            def detach(self) -> None:
                # pycuda's context::detach when not current: cuCtxPushCurrent, then cuDevicePrimaryCtxRelease,
                # which "does not pop the context from stack in any circumstances"
                driver.stack.append(self)
                driver.detaches += 1

        class Context:
            @staticmethod
            def pop() -> None:
                driver.stack.pop()

        class Device:
            def __init__(self, n: int) -> None:
                self.n = n

            def name(self) -> str:
                return "Orin"

            def retain_primary_context(self) -> Ctx:
                driver.retains += 1
                return Ctx()

        class Alloc:
            def __init__(self, nbytes: int) -> None:
                self.addr = 0x1000 + len(driver.memory) * 0x1000
                driver.memory[self.addr] = np.zeros(nbytes, np.uint8)

            def __int__(self) -> int:
                return self.addr

            def free(self) -> None:
                driver.memory.pop(self.addr, None)

        class Stream:
            handle = 1

            def synchronize(self) -> None:
                assert driver.stack, "synchronize without a current context"

        self.Context, self.Device, self.Stream = Context, Device, Stream
        self.mem_alloc = Alloc

    def init(self) -> None:
        pass

    def pagelocked_empty(self, n: int, dtype: Any) -> np.ndarray:
        return np.empty(n, dtype)

    def memcpy_htod_async(self, dev: Any, host: np.ndarray, stream: Any) -> None:
        assert self.stack, "a copy without a current context"
        raw = host.view(np.uint8)
        self.memory[int(dev)][: raw.size] = raw

    def memcpy_dtoh_async(self, host: np.ndarray, dev: Any, stream: Any) -> None:
        raw = host.view(np.uint8)
        raw[...] = self.memory[int(dev)][: raw.size]


def _tensorrt(driver: _Driver, batch: int) -> types.ModuleType:
    """tensorrt: one engine ``y = 2 x`` over ``x [batch, 4]`` with a static batch (a DLA plan)."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.3.0"  # type: ignore[attr-defined]
    trt.loggers = []  # type: ignore[attr-defined]

    severity = types.SimpleNamespace(INTERNAL_ERROR=0, ERROR=1, WARNING=2, INFO=3, VERBOSE=4)

    class ILogger:
        Severity = severity

        def __init__(self) -> None:
            pass

    class TensorIOMode:
        INPUT, OUTPUT = "in", "out"

    class Context:
        def __init__(self) -> None:
            self.shapes: dict[str, tuple[int, ...]] = {}
            self.addr: dict[str, int] = {}

        def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
            if shape != (batch, 4):
                return False
            self.shapes = {"x": shape, "y": shape}
            return True

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            return self.shapes[name]

        def set_tensor_address(self, name: str, addr: int) -> None:
            self.addr[name] = addr

        def execute_async_v3(self, handle: int) -> bool:
            assert driver.stack, "execute without a current context"
            n = batch * 4 * 4
            x = driver.memory[self.addr["x"]][:n].view(np.float32)
            driver.memory[self.addr["y"]][:n] = (2 * x).view(np.uint8)
            return True

    class Engine:
        num_io_tensors = 2

        def get_tensor_name(self, i: int) -> str:
            return ["x", "y"][i]

        def get_tensor_mode(self, name: str) -> str:
            return TensorIOMode.INPUT if name == "x" else TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name: str) -> str:
            return "float32"

        def get_tensor_profile_shape(self, name: str, profile: int) -> tuple[tuple[int, ...], ...]:
            return ((batch, 4),) * 3

        def create_execution_context(self) -> Context:
            return Context()

    class Runtime:
        def __init__(self, logger: Any) -> None:
            trt.loggers.append(logger)
            self.DLA_core = -1

        def deserialize_cuda_engine(self, plan: bytes) -> Engine:
            return Engine()

    trt.ILogger, trt.TensorIOMode, trt.Runtime = ILogger, TensorIOMode, Runtime  # type: ignore[attr-defined]
    trt.nptype = lambda dtype: np.float32  # type: ignore[attr-defined]
    trt.Logger = type("Logger", (), {"WARNING": 2, "ERROR": 1, "__init__": lambda self, sev=2: None})  # type: ignore[attr-defined]
    return trt


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[_Driver, types.ModuleType]]:
    driver = _Driver()
    trt = _tensorrt(driver, batch=6)
    pycuda = types.ModuleType("pycuda")
    pycuda.driver = driver  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setitem(sys.modules, "pycuda", pycuda)
    monkeypatch.setitem(sys.modules, "pycuda.driver", driver)
    monkeypatch.setattr(trt_process, "_logger", None)
    monkeypatch.setattr(trt_process, "_contexts", {})
    yield driver, trt


def _runner(name: str) -> TensorRTRunner:
    facts = {"precision": "fp16", "dla": {"core": 0, "gpu_fallback": True},
             "profiles": {"x": {"min": [6, 4], "opt": [6, 4], "max": [6, 4]}}}
    runner = TensorRTRunner(name, b"plan", [TensorSpec("x", ("batch", 4))], [TensorSpec("y", ("batch", 4))],
                            build_facts=facts)
    runner.check_device = lambda: None  # type: ignore[method-assign]  # the build facts are not the point here
    return runner


def test_context_stack_balanced_one_retain_no_release_per_runner(fakes: tuple[_Driver, Any]) -> None:
    """D6: five runners activated, run and released leave nothing pushed, retain once, never detach."""
    driver, _ = fakes
    runners = [_runner(f"net{i}") for i in range(5)]
    for r in runners:
        r.activate()
        assert driver.stack == []
    x = np.arange(24, dtype=np.float32).reshape(6, 4)
    for r in runners:
        np.testing.assert_array_equal(r.infer({"x": x})["y"], 2 * x)
        assert driver.stack == []
    for r in runners:
        r.deactivate()
    runners[0].activate()  # re-activated in the same process: the same retained context
    runners[0].deactivate()
    assert driver.stack == [] and driver.retains == 1 and driver.detaches == 0 and driver.memory == {}


def test_context_popped_when_a_call_fails(fakes: tuple[_Driver, Any]) -> None:
    driver, _ = fakes
    r = _runner("face_encoder")
    r.activate()
    with pytest.raises(RunnerError, match=r"shape \[2, 4\] is outside the plan's optimization profile.*min \[6, 4\]"):
        r.infer({"x": np.zeros((2, 4), np.float32)})
    assert driver.stack == []
    # D1 through the runner: ShapeFit pads 2 rows to the static 6 and drops the padding
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(ShapeFit(r).infer({"x": x})["y"], 2 * x)
    assert r.description == "tensorrt 10.3.0 (fp16, DLA core 0 + Orin)"
    r.deactivate()


def test_one_tensorrt_logger_per_process(fakes: tuple[_Driver, Any]) -> None:
    """D11: every runtime gets the same logger (TensorRT keeps the first one it is given)."""
    _, trt = fakes
    runners = [_runner(f"net{i}") for i in range(3)]
    for r in runners:
        r.activate()
    assert len(trt.loggers) == 3 and len({id(x) for x in trt.loggers}) == 1
    assert trt.loggers[0] is trt_process.trt_logger(trt)
    for r in runners:
        r.deactivate()


class _Config:
    def __init__(self, raises: bool = False, accept: bool = True) -> None:
        self.cleared: list[str] = []
        self.raises, self.accept, self.caches = raises, accept, []  # type: ignore[var-annotated]

    def clear_flag(self, flag: str) -> None:
        self.cleared.append(flag)

    def create_timing_cache(self, data: bytes) -> object:
        if self.raises and data:
            raise RuntimeError("bad timing cache")
        self.caches.append(data)
        return object()

    def set_timing_cache(self, cache: object, ignore_mismatch: bool) -> bool:
        return self.accept


def test_fp32_plans_clear_tf32_and_timing_cache_robust(tmp_path: Any) -> None:
    """D3: TF32 cleared (and recorded) for fp32 only; D13: a corrupted timing cache starts an empty one."""
    from edge_mmer.convert.tensorrt_build import TensorRTBuildOptions, _clear_tf32, _load_timing_cache

    trt = types.SimpleNamespace(BuilderFlag=types.SimpleNamespace(TF32="TF32"))
    config = _Config()
    assert _clear_tf32(trt, config, TensorRTBuildOptions(precision="fp32")) == ["TF32"] and config.cleared == ["TF32"]
    assert _clear_tf32(trt, _Config(), TensorRTBuildOptions(precision="fp16")) == []
    bad = tmp_path / "t.cache"
    bad.write_bytes(b"not a cache")
    config = _Config(raises=True)
    assert _load_timing_cache(config, bad) is False and config.caches == [b""]
    config = _Config(accept=False)
    assert _load_timing_cache(config, bad) is False and config.caches == [b"not a cache", b""]
    assert _load_timing_cache(_Config(), bad) is True
