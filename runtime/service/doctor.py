"""``edge-mmer doctor``'s checks: is this unit ready to be left alone with these settings?

:func:`run_doctor` looks at the bundle (it verifies, what it was trained on), the backends (ONNX
Runtime's providers, TensorRT's version, whether each TensorRT plan fits this device and why not,
and the runners actually loaded as ``run`` would load them), the cameras and microphones (found,
and the configured ones opened), the MQTT broker (reached with the configured credentials and TLS),
the spool's folder, on a Jetson the power mode and clocks, and the versions. It only reads: nothing
is written but a temporary file in the spool's folder, no event is published.

The device facts and plan rules are the ones the runners use (:func:`edge_mmer.bundle.plans.probe_device_facts`,
:func:`~edge_mmer.bundle.plans.plan_compatibility`), so the doctor and ``run`` cannot disagree.
"""

from __future__ import annotations

import logging
import platform
from pathlib import Path

from edge_mmer.bundle import Bundle, BundleError, read_bundle, verify_bundle
from edge_mmer.bundle.plans import DeviceFacts, plan_compatibility, probe_device_facts
from edge_mmer.errors import EdgeMmerError
from edge_mmer.runtime.settings import RuntimeSettings, repo_demo_dir

from .probes import check_broker, check_sources, check_spool
from .report import ABSENT, FAIL, INFO, OK, WARN, Check

log = logging.getLogger(__name__)

__all__ = ["bundle_path", "check_backends", "check_bundle", "check_jetson", "check_versions", "run_doctor"]

PLAN_FIX = "build the plans on this device: edge-mmer convert --bundle DIR --tensorrt"
VERIFY_FIX = "copy the bundle again from where it was built; `edge-mmer bundle verify DIR` lists every problem"


def bundle_path(settings: RuntimeSettings) -> Path:
    """The bundle ``run`` would load: ``[run] bundle``, else the committed demo bundle."""
    return Path(settings.run.bundle) if settings.run.bundle else repo_demo_dir() / "bundle"


def check_bundle(path: Path) -> tuple[Check, Bundle | None]:
    """Every file against the manifest's hashes, then what the model is and what it was trained on."""
    problems = [p for p in verify_bundle(path) if not p.startswith("warning: ")]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return Check("bundle", FAIL, f"{path} does not verify: {problems[0]}{more}", fix=VERIFY_FIX,
                     data={"problems": problems}), None
    try:
        bundle = read_bundle(path)
    except BundleError as exc:
        return Check("bundle", FAIL, f"{path}: {exc}", fix=VERIFY_FIX), None
    dataset = bundle.provenance.get("dataset")
    trained_on = (dataset.get("path") or dataset.get("generator")) if isinstance(dataset, dict) else dataset
    detail = (f"{path}: {bundle.model_id}, labels {', '.join(bundle.labels)}; trained on {trained_on or 'unknown'}"
              f"{' (SYNTHETIC data)' if bundle.synthetic else ''}")
    data = {"model_id": bundle.model_id, "synthetic": bundle.synthetic, "labels": list(bundle.labels),
            "trained_on": trained_on}
    if bundle.synthetic:
        return Check("bundle", WARN, detail, fix="the demo model shows the loop works, not how well it recognises "
                     "people: deploy a bundle trained on real data", data=data), bundle
    return Check("bundle", OK, detail, data=data), bundle


def _plan_checks(bundle: Bundle, facts: DeviceFacts, backend: str) -> list[Check]:
    rows = []
    for network, spec in bundle.network_specs.items():
        for kind, artifact in spec.artifacts.items():
            if not kind.is_plan:
                continue
            why = plan_compatibility(artifact.facts, facts)
            name = f"plan {network} {kind.value}"
            if not why:
                rows.append(Check(name, OK, "fits this device"))
            else:
                needed = backend == "tensorrt"
                rows.append(Check(name, FAIL if needed else WARN, "; ".join(why),
                                  fix=PLAN_FIX + ("; or set [run] backend = \"auto\"" if needed else
                                                  " (the ONNX models run meanwhile)")))
    return rows


def check_backends(settings: RuntimeSettings, bundle: Bundle | None) -> list[Check]:
    """ONNX Runtime and its providers, TensorRT, each plan against this device, and the runners loaded."""
    rows = []
    try:
        import onnxruntime as ort

        providers = list(ort.get_available_providers())
        rows.append(Check("onnxruntime", OK, f"{ort.__version__}, providers {', '.join(providers)}",
                          data={"version": str(ort.__version__), "providers": providers}))
    except Exception as exc:  # ImportError, or a GPU build that cannot load its libraries
        rows.append(Check("onnxruntime", FAIL, f"cannot be imported: {exc}",
                          fix="pip install edge-mmer (on a Jetson: NVIDIA's onnxruntime-gpu wheel; docs/device.md)"))
    facts = probe_device_facts()
    if facts.tensorrt_version:
        gpu = f" on {facts.gpu_name} (compute {facts.compute_capability})" if facts.gpu_name else " (no GPU found)"
        rows.append(Check("tensorrt", OK, f"{facts.tensorrt_version}{gpu}", data=facts.to_record()))
    else:
        rows.append(Check("tensorrt", ABSENT, "not installed (the ONNX models run on ONNX Runtime)",
                          data=facts.to_record()))
    if bundle is None:
        return rows
    rows.extend(_plan_checks(bundle, facts, settings.run.backend))
    run = settings.run
    try:
        from edge_mmer.runtime.runners.load import load_runners

        loaded = load_runners(bundle, backend=run.backend, precision=run.precision, threads=run.threads)
        try:
            rows.append(Check("runners", OK, f"{loaded.backend} {loaded.precision}: " +
                              "; ".join(f"{n} on {r.description}" for n, r in loaded.runners.items()),
                              data={"backend": loaded.backend, "precision": loaded.precision,
                                    "notes": list(loaded.notes)}))
        finally:
            loaded.close()
    except (EdgeMmerError, OSError) as exc:
        rows.append(Check("runners", FAIL, f"backend {run.backend} precision {run.precision}: {exc}",
                          fix="pick a backend / precision the bundle has ([run] backend, precision; "
                              "`edge-mmer bundle show DIR` lists its artifacts)"))
    return rows


def check_jetson() -> Check:
    """On a Jetson: the power mode (nvpmodel) and whether the clocks are pinned (jetson_clocks)."""
    from edge_mmer.runtime.profiling.device import is_jetson, jetson_facts

    if not is_jetson():
        return Check("jetson", ABSENT, "not a Jetson (no /etc/nv_tegra_release)")
    facts = jetson_facts()
    nvp = facts.get("nvpmodel") or {}
    mode = f"power mode {nvp.get('mode')} (id {nvp.get('id')})" if nvp else "power mode unknown (nvpmodel absent)"
    pinned = facts.get("clocks_pinned")
    detail = (f"L4T {facts.get('l4t_release')} (JetPack {facts.get('jetpack_hint')}), {mode}, clocks "
              f"{'pinned' if pinned else 'not pinned' if pinned is False else 'unknown'}")
    if pinned is not True:
        return Check("jetson", WARN, detail, fix="for steady latency: sudo nvpmodel -m 0 && sudo jetson_clocks",
                     data=facts)
    return Check("jetson", OK, detail, data=facts)


def check_versions() -> Check:
    """Python, the OS and the libraries (what a bug report needs first)."""
    from edge_mmer.runtime.profiling.device import library_facts

    libs = library_facts()
    text = ", ".join(f"{k} {v}" for k, v in libs.items() if isinstance(v, str))
    return Check("versions", INFO, f"{platform.system()} {platform.release()} {platform.machine()}; {text}",
                 data={"os": f"{platform.system()} {platform.release()}", "machine": platform.machine(), **libs})


def run_doctor(settings: RuntimeSettings, *, open_sources: bool = True, broker_timeout_s: float = 5.0) -> list[Check]:
    """Every check, in the order a person reads them."""
    path = bundle_path(settings)
    bundle_row, bundle = check_bundle(path)
    rows = [bundle_row, *check_backends(settings, bundle)]
    rows.extend(check_sources(settings) if open_sources else [])
    rows.append(check_broker(settings, timeout_s=broker_timeout_s))
    rows.append(check_spool(settings))
    rows.append(check_jetson())
    rows.append(check_versions())
    return rows

