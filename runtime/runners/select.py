"""Which artifact of which network runs on which backend: ``load_runners(bundle, backend, precision)``.

Rules (README "Runtime backends"):

* precision ``fp32`` -> ``onnx-fp32`` (ONNX Runtime) / ``tensorrt-fp32`` (TensorRT);
* ``fp16`` -> ``onnx-fp16`` / ``tensorrt-fp16``;
* ``int8`` -> ``int8-cpu`` for ONNX Runtime on the CPU, ``int8-trt`` when ONNX Runtime has the
  TensorRT EP, a ``tensorrt-int8`` plan for TensorRT. A network without an artifact of that precision
  (the LSTMs are never quantized) runs ``onnx-fp32`` on ONNX Runtime and its ``tensorrt-fp16`` plan on
  TensorRT, and the notes say so once. An INT8 artifact marked ``deployable: false`` (its drift is over
  the conversion's thresholds) is refused, with a warning naming the network and the drift.
* backend ``auto``: TensorRT when every needed plan is in the bundle, ``tensorrt`` and ``pycuda``
  import, a GPU is present and every plan's build facts match this device; else ONNX Runtime. Which,
  and why, is said exactly once (INFO log and ``notes``). ``tensorrt`` asked for explicitly never
  falls back: it raises :class:`RunnerError` with every reason.

Model bytes come through :meth:`Bundle.read_bytes`, so every file's sha256 is verified; nothing is
unpickled. Torch is never imported.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_mmer.bundle import Bundle, read_bundle
from edge_mmer.vocab import BACKENDS, NETWORKS, ONNX_KINDS, PRECISIONS

from .base import Runner, RunnerError, TensorSpec
from .onnxruntime_runner import (
    CPU_EP,
    TRT_EP,
    OnnxRuntimeRunner,
    ShapeRanges,
    choose_providers,
    provider_names,
    trt_ep_cache_root,
)
from .tensorrt_runner import TensorRTRunner

log = logging.getLogger(__name__)


__all__ = ["BACKENDS", "NETWORKS", "PRECISIONS", "LoadedRunners", "load_runners"]


@dataclass
class LoadedRunners:
    """The runners of a bundle and what was chosen. Unpacks as ``runners, notes = load_runners(...)``;
    a context manager that deactivates every runner on exit."""

    runners: dict[str, Runner]
    notes: list[str]
    backend: str  # "onnxruntime" or "tensorrt"
    precision: str
    artifacts: dict[str, str] = field(default_factory=dict)  # network -> artifact kind it runs

    def __iter__(self) -> Iterator[Any]:
        yield self.runners
        yield self.notes

    def __getitem__(self, network: str) -> Runner:
        return self.runners[network]

    def describe(self) -> str:
        """One line per network: artifact and where it runs."""
        return "\n".join(f"{name}: {self.artifacts.get(name, '?')} on {r.description}"
                         for name, r in self.runners.items())

    def close(self) -> None:
        for runner in self.runners.values():
            runner.deactivate()

    def __enter__(self) -> LoadedRunners:
        for runner in self.runners.values():
            runner.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Notes:
    """Notes for the user: each said once, logged once (INFO, or WARNING for a refused artifact).
    ``deferred`` notes are held back until :meth:`merge_into` (a TensorRT plan that may not be used)."""

    def __init__(self, deferred: bool = False) -> None:
        self.items: list[str] = []
        self.levels: list[int] = []
        self.deferred = deferred

    def add(self, text: str, level: int = logging.INFO) -> None:
        if text not in self.items:
            self.items.append(text)
            self.levels.append(level)
            if not self.deferred:
                log.log(level, "%s", text)

    def merge_into(self, other: _Notes) -> None:
        for text, level in zip(self.items, self.levels, strict=True):
            other.add(text, level)


def _specs(entry: Mapping[str, Any]) -> tuple[list[TensorSpec], list[TensorSpec]]:
    return ([TensorSpec.from_manifest(i) for i in entry["inputs"]],
            [TensorSpec.from_manifest(o) for o in entry["outputs"]])


def _drift_text(art: Mapping[str, Any]) -> str:
    reasons = [str(r) for r in art.get("not_deployable_because") or []]
    if reasons:
        return "; ".join(reasons)
    drift = art.get("drift") or {}
    net, e2e = drift.get("network") or {}, drift.get("end_to_end") or {}
    parts = []
    if "cosine" in net:
        parts.append(f"output cosine {net['cosine']:.6f}")
    if "agreement" in e2e:
        parts.append(f"end-to-end agreement {e2e['agreement']:.4f}")
    if "accuracy_delta" in e2e:
        parts.append(f"accuracy change {e2e['accuracy_delta']:+.4f}")
    return ", ".join(parts) or "no drift recorded"


def _group(by_reason: Mapping[str, list[str]]) -> list[str]:
    return [f"{', '.join(nets)}: {reason}" for reason, nets in by_reason.items()]


def _pick(bundle: Bundle, name: str, chain: Sequence[str], notes: _Notes,
          deployable_of: Mapping[str, str] | None = None) -> str | None:
    """The first usable kind of ``chain`` for network ``name``. An INT8 artifact (or a plan built from
    one, ``deployable_of``: plan kind -> its ONNX kind) marked not deployable is refused with a warning."""
    artifacts = bundle.networks[name]["artifacts"]
    refused: list[tuple[str, Mapping[str, Any]]] = []
    for kind in chain:
        art = artifacts.get(kind)
        if art is None:
            continue
        source_kind = (deployable_of or {}).get(kind, kind)
        source = artifacts.get(source_kind, art)
        if source.get("deployable") is False:
            refused.append((source_kind, source))
            continue
        for bad_kind, bad in refused:
            notes.add(f"{name}: refusing INT8 artifact '{bad_kind}' ({bad['file']}): not deployable, its drift is "
                      f"over the conversion's thresholds ({_drift_text(bad)}); running {kind} instead",
                      logging.WARNING)
        return kind
    return None


def _why_not(bundle: Bundle, name: str, wanted: str, precision: str) -> str | None:
    """Why ``wanted`` is not what network ``name`` runs (None when a refusal note said it already)."""
    artifacts = bundle.networks[name]["artifacts"]
    if wanted in artifacts:
        return None  # refused as not deployable: the warning names it
    if precision == "int8" and not any(k in artifacts for k in ("int8-cpu", "int8-trt")):
        return "no INT8 artifact (LSTM step graphs are never quantized)"
    if wanted in ("int8-cpu", "int8-trt"):
        return f"no '{wanted}' artifact (edge-mmer convert --bundle {bundle.path} --precision {wanted} adds it)"
    return f"no '{wanted}' artifact"


# ----------------------------------------------------------------------------------- ONNX Runtime


def _onnx_chain(precision: str, trt_ep: bool) -> list[str]:
    if precision == "fp32":
        return ["onnx-fp32"]
    if precision == "fp16":
        return ["onnx-fp16", "onnx-fp32"]
    return ["int8-trt" if trt_ep else "int8-cpu", "onnx-fp32"]


def _profiles(bundle: Bundle, name: str) -> ShapeRanges | None:
    try:
        from edge_mmer.bundle.shapes import derive_profiles  # torch-free

        return derive_profiles(name, bundle.networks[name], bundle.config)
    except Exception as exc:  # an axis the profile rules do not know: let the TensorRT EP find ranges itself
        log.debug("%s: no explicit TensorRT EP profile: %s", name, exc)
        return None


def _onnx_runners(bundle: Bundle, networks: Sequence[str], precision: str, threads: int,
                  providers: str | Sequence[str] | None, device: int,
                  notes: _Notes) -> tuple[dict[str, Runner], dict[str, str]]:
    if not any(k in ONNX_KINDS for n in bundle.networks.values() for k in n["artifacts"]):
        raise RunnerError(f"{bundle.path}: the bundle has no ONNX artifacts (a bundle straight from training); "
                          f"convert it first: edge-mmer convert --bundle {bundle.path}")
    names = provider_names(choose_providers(providers, device_id=device))
    trt_ep = TRT_EP in names
    notes.add(f"ONNX Runtime providers: {', '.join(names)}"
              + (f", {threads} intra-op threads" if threads else ""))
    chain = _onnx_chain(precision, trt_ep)
    fallback: dict[str, list[str]] = {}
    runners: dict[str, Runner] = {}
    kinds: dict[str, str] = {}
    for name in networks:
        kind = _pick(bundle, name, chain, notes)
        if kind is None:
            have = ", ".join(bundle.networks[name]["artifacts"]) or "none"
            raise RunnerError(f"{bundle.path}: network '{name}' has no usable ONNX artifact for precision {precision} "
                              f"(it has: {have}); run: edge-mmer convert --bundle {bundle.path}")
        why = _why_not(bundle, name, chain[0], precision) if kind != chain[0] else None
        if why:
            fallback.setdefault(f"{why}; running {kind}", []).append(name)
        art = bundle.networks[name]["artifacts"][kind]
        model = bundle.read_bytes(art["file"])  # sha256 verified
        is_int8 = kind.startswith("int8-")
        provider_list = choose_providers(
            providers, fp16=kind == "onnx-fp16", int8=is_int8, device_id=device,
            cache_dir=trt_ep_cache_root() / bundle.files[art["file"]]["sha256"][:16] if trt_ep else None,
            profiles=_profiles(bundle, name) if trt_ep else None)
        inputs, outputs = _specs(bundle.networks[name])
        runners[name] = OnnxRuntimeRunner(name, model, inputs, outputs, providers=provider_list, threads=threads)
        kinds[name] = kind
    for text in _group(fallback):
        notes.add(text)
    if precision == "fp16" and names == [CPU_EP]:
        notes.add("fp16 on the CPU: ONNX Runtime runs FP16 graphs there through casts; fp32 is usually as fast")
    return runners, kinds


# ----------------------------------------------------------------------------------- TensorRT


def _plan_chain(precision: str) -> list[str]:
    return {"fp32": ["tensorrt-fp32"], "fp16": ["tensorrt-fp16", "tensorrt-fp32"],
            "int8": ["tensorrt-int8", "tensorrt-fp16", "tensorrt-fp32"]}[precision]


def _tensorrt_plan(bundle: Bundle, networks: Sequence[str], precision: str, device: int, notes: _Notes,
                   thorough: bool) -> tuple[dict[str, str], list[str]]:
    """(network -> plan kind, reasons TensorRT cannot run them here). ``thorough``: report every reason."""
    chain = _plan_chain(precision)
    kinds: dict[str, str] = {}
    missing: list[str] = []
    fallback: dict[str, list[str]] = {}
    for name in networks:
        kind = _pick(bundle, name, chain, notes, deployable_of={"tensorrt-int8": "int8-trt"})
        if kind is None:
            missing.append(name)
            continue
        why = _why_not(bundle, name, chain[0], precision) if kind != chain[0] else None
        if why:
            fallback.setdefault(f"{why.replace('artifact', 'plan')}; running {kind}", []).append(name)
        kinds[name] = kind
    reasons: list[str] = []
    if missing:
        which = "any network" if len(missing) == len(networks) else ", ".join(missing)
        reasons.append(f"{bundle.path} has no TensorRT {' / '.join(chain)} plan for {which} (build them on this "
                       f"device: edge-mmer convert --bundle {bundle.path} --tensorrt --plan-precision {precision})")
        if not thorough and not kinds:
            return kinds, reasons
    try:
        from .tensorrt_runner import import_tensorrt

        import_tensorrt()
    except RunnerError as exc:
        reasons.append(str(exc))
    from edge_mmer.bundle.plans import plan_compatibility, probe_device_facts  # torch-free

    facts = probe_device_facts(device)
    if facts.gpu_name is None:
        reasons.append(f"no CUDA GPU found (device {device}; pycuda or cuda-python probes it)")
    mismatch: dict[str, list[str]] = {}
    for name, kind in kinds.items():
        problems = plan_compatibility(bundle.networks[name]["artifacts"][kind], facts)
        if problems:
            mismatch.setdefault("; ".join(problems), []).append(f"{name} ({kind})")
    for why, nets in mismatch.items():
        reasons.append(f"plans built for another device: {', '.join(nets)}: {why}")
    for text in _group(fallback):
        notes.add(text)
    return kinds, reasons


def _tensorrt_runners(bundle: Bundle, kinds: Mapping[str, str], device: int) -> dict[str, Runner]:
    runners: dict[str, Runner] = {}
    for name, kind in kinds.items():
        art = bundle.networks[name]["artifacts"][kind]
        inputs, outputs = _specs(bundle.networks[name])
        runners[name] = TensorRTRunner(name, bundle.read_bytes(art["file"]), inputs, outputs, device=device,
                                       build_facts=art)
    return runners


# ----------------------------------------------------------------------------------- entry point


def _activate_all(runners: Mapping[str, Runner]) -> None:
    done: list[Runner] = []
    try:
        for runner in runners.values():
            runner.activate()
            done.append(runner)
    except BaseException:
        for runner in done:
            runner.deactivate()
        raise


def load_runners(bundle: Bundle | str | os.PathLike[str], backend: str = "auto", precision: str = "fp32",
                 threads: int = 0, providers: str | Sequence[str] | None = None, *,
                 networks: Sequence[str] = NETWORKS, device: int = 0, activate: bool = True) -> LoadedRunners:
    """Runners for ``networks`` of ``bundle`` (a :class:`Bundle` or its directory).

    ``backend``: ``auto`` | ``onnxruntime`` | ``tensorrt``; ``precision``: ``fp32`` | ``fp16`` | ``int8``;
    ``threads``: ONNX Runtime intra-op threads (0 = its default); ``providers``: ONNX Runtime providers
    (``None``/``"auto"`` = TensorRT EP, CUDA EP, CPU, as available; or names such as ``["cpu"]``);
    ``device``: the CUDA device. With ``activate`` (default) every runner is loaded now, so a broken
    model fails here, naming its network. Raises :class:`RunnerError` (or ``BundleError`` for a
    corrupted bundle file).
    """
    if backend not in BACKENDS:
        raise RunnerError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if precision not in PRECISIONS:
        raise RunnerError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise RunnerError(f"threads must be an integer >= 0 (0 = ONNX Runtime's default), got {threads!r}")
    b = bundle if isinstance(bundle, Bundle) else read_bundle(Path(bundle))
    absent = [n for n in networks if n not in b.networks]
    if absent:
        raise RunnerError(f"{b.path}: network(s) {', '.join(absent)} not in the bundle "
                          f"(it has {', '.join(b.networks) or 'none'})")
    notes = _Notes()

    if backend != "onnxruntime":
        trt_notes = _Notes(deferred=True)  # said only if TensorRT is what runs
        kinds, reasons = _tensorrt_plan(b, networks, precision, device, trt_notes, thorough=backend == "tensorrt")
        if reasons and backend == "tensorrt":
            raise RunnerError("backend tensorrt cannot run here: " + "; ".join(reasons)
                              + ". Use --backend onnxruntime (or auto)")
        if not reasons:
            runners = _tensorrt_runners(b, kinds, device)
            try:
                if activate:
                    _activate_all(runners)
            except RunnerError as exc:
                if backend == "tensorrt":
                    raise
                reasons = [f"a plan failed to load: {exc}"]
            else:
                gpu = next(iter(runners.values())).description if runners else "TensorRT"
                notes.add(f"backend {backend}: TensorRT {precision} plans ({gpu})" if backend == "auto"
                          else f"backend tensorrt: {precision} plans ({gpu})")
                trt_notes.merge_into(notes)
                return LoadedRunners(runners, notes.items, "tensorrt", precision, dict(kinds))
        notes.add("backend auto: ONNX Runtime, not TensorRT, because " + "; ".join(reasons))
    else:
        notes.add("backend onnxruntime (asked for)")

    runners, kinds = _onnx_runners(b, networks, precision, threads, providers, device, notes)
    if activate:
        _activate_all(runners)
    return LoadedRunners(runners, notes.items, "onnxruntime", precision, kinds)
