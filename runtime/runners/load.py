"""``load_runners(bundle, backend, precision)``: the runners of a bundle, on this machine.

:mod:`.choose` says which artifact each network runs; this module probes the machine (ONNX Runtime's
providers, TensorRT, the GPU and the plans' build facts) and constructs the runners.

* backend ``auto``: TensorRT when every needed plan is in the bundle, ``tensorrt`` and ``pycuda``
  import, a GPU is present and every plan's build facts match this device; else ONNX Runtime. Which,
  and why, is said exactly once (INFO log and ``notes``). ``tensorrt`` asked for explicitly never
  falls back: it raises :class:`RunnerError` with every reason. During the run, a plan that fails
  repeatedly hands its network to ONNX Runtime under ``auto`` and stops the run under ``tensorrt``
  (:mod:`.fallback`).

Model bytes come through :meth:`Bundle.read_bytes`, so every file's sha256 is verified; nothing is
unpickled. Torch is never imported.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_mmer.bundle import Bundle, read_bundle
from edge_mmer.bundle.plans import plan_compatibility, probe_device_facts
from edge_mmer.bundle.shapes import derive_profiles
from edge_mmer.bundle.views import ArtifactSpec
from edge_mmer.networks import Networks
from edge_mmer.vocab import BACKENDS, NETWORKS, ONNX_KINDS, PRECISIONS, ArtifactKind

from .base import Runner, RunnerError, RunnerSet
from .choose import Notes, choose_onnx, choose_plans, missing_plans_reason
from .fallback import FallbackRunner
from .fit import fit_runner
from .onnxruntime_runner import (
    CPU_EP,
    TRT_EP,
    OnnxRuntimeRunner,
    ShapeRanges,
    choose_providers,
    provider_names,
    trt_ep_cache_root,
)
from .tensorrt_runner import TensorRTRunner, import_tensorrt
from .trt_process import dla_core_count

__all__ = ["BACKENDS", "NETWORKS", "PRECISIONS", "LoadedRunners", "load_runners"]

log = logging.getLogger(__name__)


@dataclass
class LoadedRunners(RunnerSet):
    """The runners of a bundle and what was chosen. Unpacks as ``runners, notes = load_runners(...)``;
    a context manager that activates every runner and deactivates them on exit."""

    notes: list[str] = field(default_factory=list)
    backend: str = "onnxruntime"  # "onnxruntime" or "tensorrt"
    precision: str = "fp32"
    artifacts: dict[str, ArtifactKind] = field(default_factory=dict)  # network -> artifact kind it runs

    def __iter__(self) -> Iterator[Any]:
        yield self.runners
        yield self.notes

    def describe(self) -> str:
        """One line per network: artifact and where it runs."""
        return "\n".join(f"{name}: {self.artifacts.get(name, '?')} on {r.description}"
                         for name, r in self.runners.items())

    def networks(self) -> Networks:
        """The decision path's view of these runners (the bundle's networks; their states start at zero),
        each call fitted to the shapes its plan or model takes (:mod:`.fit`)."""
        return Networks({name: fit_runner(r) for name, r in self.runners.items()})

    def close(self) -> None:
        self.deactivate()


def _say(notes: Notes) -> list[str]:
    """Log each note once (INFO, or WARNING for a refused artifact); the texts, in order."""
    for text, level in notes:
        log.log(level, "%s", text)
    return list(notes.items)


def _artifact(bundle: Bundle, name: str, kind: ArtifactKind) -> ArtifactSpec:
    """An artifact :mod:`.choose` picked (one the network has)."""
    art = bundle.artifact(name, kind)
    if art is None:
        raise RunnerError(f"{bundle.path}: network '{name}' has no '{kind}' artifact")
    return art


# ----------------------------------------------------------------------------------- ONNX Runtime


def _profiles(bundle: Bundle, name: str) -> ShapeRanges | None:
    try:
        return derive_profiles(name, bundle.network(name), bundle.config)
    except Exception as exc:  # an axis the profile rules do not know: let the TensorRT EP find ranges itself
        log.debug("%s: no explicit TensorRT EP profile: %s", name, exc)
        return None


def _onnx_runners(bundle: Bundle, networks: Sequence[str], precision: str, threads: int,
                  providers: str | Sequence[str] | None, device: int,
                  notes: Notes) -> tuple[dict[str, Runner], dict[str, ArtifactKind]]:
    if not any(k in ONNX_KINDS for n in bundle.network_specs.values() for k in n.kinds):
        raise RunnerError(f"{bundle.path}: the bundle has no ONNX artifacts (a bundle straight from training); "
                          f"convert it first: edge-mmer convert --bundle {bundle.path}")
    names = provider_names(choose_providers(providers, device_id=device))
    trt_ep = TRT_EP in names
    notes.add(f"ONNX Runtime providers: {', '.join(names)}" + (f", {threads} intra-op threads" if threads else ""))
    choice = choose_onnx(bundle.network_specs, networks, precision, trt_ep, bundle.path)
    notes.extend(choice.notes)
    runners: dict[str, Runner] = {}
    for name, kind in choice.kinds.items():
        art = _artifact(bundle, name, kind)
        model = bundle.read_bytes(art.file)  # sha256 verified
        provider_list = choose_providers(
            providers, fp16=kind is ArtifactKind.ONNX_FP16, int8=kind.is_int8, device_id=device,
            cache_dir=trt_ep_cache_root() / bundle.sha256(art.file)[:16] if trt_ep else None,
            profiles=_profiles(bundle, name) if trt_ep else None)
        net = bundle.network(name)
        runners[name] = OnnxRuntimeRunner(name, model, net.inputs, net.outputs, providers=provider_list,
                                          threads=threads)
    if precision == "fp16" and names == [CPU_EP]:
        notes.add("fp16 on the CPU: ONNX Runtime runs FP16 graphs there through casts; fp32 is usually as fast")
    return runners, choice.kinds


# ----------------------------------------------------------------------------------- TensorRT


def _any_dla(bundle: Bundle, kinds: Mapping[str, ArtifactKind]) -> bool:
    return any(isinstance(_artifact(bundle, n, k).facts.get("dla"), Mapping) for n, k in kinds.items())


def _tensorrt_plan(bundle: Bundle, networks: Sequence[str], precision: str, device: int,
                   thorough: bool) -> tuple[dict[str, ArtifactKind], list[str], Notes]:
    """(network -> plan kind, reasons TensorRT cannot run them here, notes said only if TensorRT runs).
    ``thorough``: report every reason."""
    choice = choose_plans(bundle.network_specs, networks, precision, bundle.path)
    kinds = choice.kinds
    reasons: list[str] = []
    if choice.missing:
        reasons.append(missing_plans_reason(bundle.path, networks, choice.missing, precision))
        if not thorough and not kinds:
            return kinds, reasons, choice.notes
    try:
        import_tensorrt()
    except RunnerError as exc:
        reasons.append(str(exc))
    facts = probe_device_facts(device, dla_cores=dla_core_count() if _any_dla(bundle, kinds) else None)
    if facts.gpu_name is None:
        reasons.append(f"no CUDA GPU found (device {device}; pycuda or cuda-python probes it)")
    mismatch: dict[str, list[str]] = {}
    for name, kind in kinds.items():
        problems = plan_compatibility(_artifact(bundle, name, kind).facts, facts)
        if problems:
            mismatch.setdefault("; ".join(problems), []).append(f"{name} ({kind})")
    for why, nets in mismatch.items():
        reasons.append(f"plans built for another device: {', '.join(nets)}: {why}")
    return kinds, reasons, choice.notes


def _tensorrt_runners(bundle: Bundle, kinds: Mapping[str, ArtifactKind], device: int,
                      fallback: Callable[[str], Runner] | None) -> dict[str, Runner]:
    """A :class:`FallbackRunner` around each plan's runner: ``fallback(network)`` (an ONNX Runtime runner)
    takes over after repeated failures under ``auto``; None (``tensorrt``) stops the run instead."""
    runners: dict[str, Runner] = {}
    for name, kind in kinds.items():
        art = _artifact(bundle, name, kind)
        net = bundle.network(name)
        plan = TensorRTRunner(name, bundle.read_bytes(art.file), net.inputs, net.outputs, device=device,
                              build_facts=art.to_dict())
        runners[name] = FallbackRunner(plan, None if fallback is None else functools.partial(fallback, name))
    return runners


def _onnx_fallback(bundle: Bundle, precision: str, threads: int, providers: str | Sequence[str] | None,
                   device: int) -> Callable[[str], Runner]:
    def make(name: str) -> Runner:
        notes = Notes()
        runners, _ = _onnx_runners(bundle, [name], precision, threads, providers, device, notes)
        _say(notes)
        return runners[name]

    return make


# ----------------------------------------------------------------------------------- entry point


def _check_request(backend: str, precision: str, threads: int) -> None:
    if backend not in BACKENDS:
        raise RunnerError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if precision not in PRECISIONS:
        raise RunnerError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise RunnerError(f"threads must be an integer >= 0 (0 = ONNX Runtime's default), got {threads!r}")


def _try_tensorrt(b: Bundle, backend: str, precision: str, networks: Sequence[str], device: int, activate: bool,
                  notes: Notes, fallback: Callable[[str], Runner] | None = None) -> LoadedRunners | None:
    """TensorRT's runners when it can run here; else None, with the reason in ``notes``."""
    kinds, reasons, trt_notes = _tensorrt_plan(b, networks, precision, device, thorough=backend == "tensorrt")
    if reasons and backend == "tensorrt":
        raise RunnerError("backend tensorrt cannot run here: " + "; ".join(reasons)
                          + ". Use --backend onnxruntime (or auto)")
    if not reasons:
        loaded = LoadedRunners(_tensorrt_runners(b, kinds, device, fallback if backend == "auto" else None),
                               backend="tensorrt", precision=precision,
                               artifacts=dict(kinds))
        try:
            if activate:
                loaded.activate()
        except RunnerError as exc:
            if backend == "tensorrt":
                raise
            reasons = [f"a plan failed to load: {exc}"]
        else:
            gpu = next(iter(loaded.runners.values())).description if loaded.runners else "TensorRT"
            notes.add(f"backend {backend}: TensorRT {precision} plans ({gpu})" if backend == "auto"
                      else f"backend tensorrt: {precision} plans ({gpu})")
            notes.extend(trt_notes)
            loaded.notes = _say(notes)
            return loaded
    notes.add("backend auto: ONNX Runtime, not TensorRT, because " + "; ".join(reasons))
    return None


def load_runners(bundle: Bundle | str | os.PathLike[str], backend: str = "auto", precision: str = "fp32",
                 threads: int = 0, providers: str | Sequence[str] | None = None, *,
                 networks: Sequence[str] | None = None, device: int = 0, activate: bool = True) -> LoadedRunners:
    """Runners for ``networks`` of ``bundle`` (a :class:`Bundle` or its directory; None: every network
    it has, the five of a speech + face bundle or the two of a single-modality one).

    ``backend``: ``auto`` | ``onnxruntime`` | ``tensorrt``; ``precision``: ``fp32`` | ``fp16`` | ``int8``;
    ``threads``: ONNX Runtime intra-op threads (0 = its default); ``providers``: ONNX Runtime providers
    (``None``/``"auto"`` = TensorRT EP, CUDA EP, CPU, as available; or names such as ``["cpu"]``);
    ``device``: the CUDA device. With ``activate`` (default) every runner is loaded now, so a broken
    model fails here, naming its network. Raises :class:`RunnerError` (or ``BundleError`` for a
    corrupted bundle file).
    """
    _check_request(backend, precision, threads)
    b = bundle if isinstance(bundle, Bundle) else read_bundle(Path(bundle))
    if networks is None:
        networks = [n for n in NETWORKS if n in b.network_specs]
    absent = [n for n in networks if n not in b.network_specs]
    if absent:
        raise RunnerError(f"{b.path}: network(s) {', '.join(absent)} not in the bundle "
                          f"(it has {', '.join(b.network_specs) or 'none'})")
    notes = Notes()
    try:
        if backend != "onnxruntime":
            trt = _try_tensorrt(b, backend, precision, networks, device, activate, notes,
                                _onnx_fallback(b, precision, threads, providers, device))
            if trt is not None:
                return trt
        else:
            notes.add("backend onnxruntime (asked for)")
        runners, kinds = _onnx_runners(b, networks, precision, threads, providers, device, notes)
        loaded = LoadedRunners(runners, backend="onnxruntime", precision=precision, artifacts=kinds)
        if activate:
            loaded.activate()
    except BaseException:
        _say(notes)  # what was chosen before it failed (a refused INT8 artifact, say) is worth knowing
        raise
    loaded.notes = _say(notes)
    return loaded
