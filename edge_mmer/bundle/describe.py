"""A bundle as a human summary: ``edge-mmer bundle show DIR`` (:func:`describe_bundle`).

One line per fact, one block per network; the synthetic-model warning comes first when it applies.
Networks, their tensors and artifacts, the selection and the SVMs come from the typed views; the
free-form sections (config front ends, fuzzy measure, metrics, provenance) from the raw manifest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edge_mmer.bundle.manifest import MANIFEST, _is_num, _short
from edge_mmer.bundle.reader import Bundle
from edge_mmer.bundle.views import NetworkSpec

__all__ = ["describe_bundle"]

_PROVENANCE_KEYS = ("dataset", "seed", "code_version", "git_commit", "git_dirty", "python", "torch",
                    "calibration_set_sha256")


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def _shape(shape: tuple[Any, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _scalars(obj: Any, prefix: str = "", depth: int = 0) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    if isinstance(obj, dict) and depth < 3:
        for key, value in obj.items():
            out.extend(_scalars(value, f"{prefix}{key}." if isinstance(value, dict) else f"{prefix}{key}", depth + 1))
    elif not isinstance(obj, (dict, list)):
        out.append((prefix.rstrip("."), obj))
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return _short(value, 80) if not isinstance(value, str) else value


def _extras(facts: Mapping[str, Any]) -> str:
    """``k=v, ...`` of the scalar facts (``file`` and nested objects or lists left out), or ""."""
    shown = ", ".join(f"{k}={_fmt(v)}" for k, v in facts.items() if k != "file" and not isinstance(v, (Mapping, tuple)))
    return f" ({shown})" if shown else ""


def _header(bundle: Bundle) -> list[str]:
    m = bundle.manifest
    lines = [f"bundle      {bundle.path}", f"model id    {m['model_id']}"]
    if m["synthetic"]:
        lines.append(
            "synthetic   YES  *** SYNTHETIC MODEL: trained on generated data, NOT a real emotion recogniser ***"
        )
    else:
        lines.append(f"synthetic   no (dataset: {_fmt(m['provenance'].get('dataset', 'unknown'))})")
    if m.get("description"):
        lines.append(f"description {m['description']}")
    lines.append(f"created     {m['created']}")
    lines.append(f"labels      {', '.join(m['labels'])}")
    cfg = m["config"]
    audio = cfg.get("audio", {}) if isinstance(cfg, dict) else {}
    face = cfg.get("face", {}) if isinstance(cfg, dict) else {}
    if audio:
        lines.append(
            f"audio       {audio.get('sample_rate')} Hz, {audio.get('n_mels')} mels, hop {audio.get('hop_length')}, "
            f"utterances {audio.get('min_utterance_s')}-{audio.get('max_utterance_s')} s"
        )
    if face:
        lines.append(
            f"face        {face.get('detector')} detector, crop {face.get('crop_size')} px, "
            f"{face.get('analysis_fps')} fps, {face.get('frames_per_utterance')} frames/utterance"
        )
    return lines


def _network(bundle: Bundle, net: NetworkSpec) -> list[str]:
    size = bundle.manifest["files"].get(net.weights, {}).get("bytes", 0)
    lines = [f"  {net.name}: {net.weights} ({_size(size)})"]
    for specs, arrow in ((net.inputs, "in "), (net.outputs, "out")):
        for io in specs:
            lines.append(f"    {arrow} {io.name} {io.dtype} {_shape(io.shape)}")
    if net.artifact_entries:
        for art, facts in net.artifact_entries.items():
            lines.append(f"    artifact {art}: {facts['file']}" + _extras(facts))
    else:
        lines.append("    artifacts: none (run the converter)")
    return lines


def _decision(bundle: Bundle) -> list[str]:
    lines = []
    if bundle.selection_specs:
        parts = [f"{s.modality}: {s.file}" + _extras(s.facts) for s in bundle.selection_specs.values()]
        lines.append("selection   " + "; ".join(parts))
    lines.append("svms" if bundle.svm_specs else "svms        none")
    for svm in bundle.svm_specs.values():
        lines.append(
            f"  {svm.channel}: C={svm.c:g} gamma={svm.gamma:g} cv accuracy={svm.cv_accuracy:.3f} "
            f"features={svm.n_features} ({svm.model})"
        )
    fuzzy = bundle.manifest["fuzzy"]
    if fuzzy:
        method = fuzzy.get("integral", fuzzy.get("method", "?"))
        parts = [f"{method} integral"]
        if "channels" in fuzzy:
            parts.append(f"channels {_fmt(fuzzy['channels'])}")
        parts.extend(f"{key} {_fmt(fuzzy[key])}" for key in ("densities", "lambdas", "lambda") if key in fuzzy)
        lines.append("fuzzy       " + ", ".join(parts))
    else:
        lines.append("fuzzy       none")
    return lines


def _results(bundle: Bundle) -> list[str]:
    m = bundle.manifest
    lines = []
    accuracy = m["metrics"].get("test_accuracy")
    if isinstance(accuracy, dict) and all(_is_num(v) for v in accuracy.values()):
        shown = ", ".join(f"{k} {100 * v:.1f} %" for k, v in accuracy.items())
        where = m["metrics"].get("split", "test")
        lines.append(f"accuracy    {shown} ({where})")
    metrics = _scalars(m["metrics"])
    if metrics:
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in metrics[:8])
        lines.append(f"metrics     {shown}" + (f" (+{len(metrics) - 8} more)" if len(metrics) > 8 else ""))
    total = sum(int(e["bytes"]) for e in m["files"].values())
    lines.append(f"files       {len(m['files'])} files, {_size(total)} (+ {MANIFEST})")
    prov = m["provenance"]
    if prov:
        shown = ", ".join(f"{k}={_fmt(prov[k])}" for k in _PROVENANCE_KEYS if k in prov and prov[k] is not None)
        lines.append(f"provenance  {shown}")
    return lines


def describe_bundle(bundle: Bundle) -> str:
    """A human summary (``edge-mmer bundle show DIR``)."""
    lines = _header(bundle)
    lines.append("networks" if bundle.network_specs else "networks    none")
    for net in bundle.network_specs.values():
        lines.extend(_network(bundle, net))
    lines.extend(_decision(bundle))
    lines.extend(_results(bundle))
    lines.extend(f"warning     {w}" for w in bundle.warnings)
    return "\n".join(lines)
