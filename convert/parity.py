"""ONNX Runtime against PyTorch on real samples from the bundle's own dataset.

The dataset is the one the bundle was trained on: ``provenance.dataset.spec`` (``KIND:PATH[?options]``,
any kind of :mod:`edge_mmer.datasets.registry`) or, for the synthetic set and bundles that predate
the spec, ``provenance.dataset.path``; ``--data`` replaces the recorded path (the kind and options
are kept) or gives a whole ``KIND:PATH`` spec (:func:`resolve_dataset`). ``N`` utterances of a split
go through the training front ends (:func:`edge_mmer.datasets.frontend.extract_all`, the code
``edge-mmer train`` runs: log-mel, Haar crops; media utterances on the runtime's frame grid, clips
longer than the dataset's ``max_clip_s`` skipped, optionally through the feature cache); an
utterance whose media is defective is skipped and counted, as in training (:func:`prepare_split`).

The samples are every network's feeds on the decision path over the torch networks
(:func:`edge_mmer.calibration.from_dataset.inputs_from_dataset`). :func:`measure_parity` gives them
to the torch network (:class:`~edge_mmer.models.torch_runner.TorchRunner`) and to the ONNX artifact
(:class:`~edge_mmer.runtime.runners.onnxruntime_runner.OnnxRuntimeRunner`), Polygraphy-style: the
encoders one utterance at a time; the step graphs stepped through each session from a zero state,
each runner carrying its own ``h``/``c``, so an error that builds up in the state shows. The outputs
go through the one comparator (:mod:`edge_mmer.convert.compare`). Per network: the largest absolute
difference over every output (for a step graph ``y``, ``h_out`` and ``c_out`` at every step) and the
mean cosine similarity of the first output's vectors.

A bundle trained on precomputed features (CMU-MOSI ``.csd`` files, MMSA / MulT pickles) has no
encoders: :func:`require_encoders` refuses it (nothing a device could feed from a camera and a
microphone).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_mmer.bundle import Bundle
from edge_mmer.calibration.inputs import NetworkInputs
from edge_mmer.calibration.tap import TapRunner
from edge_mmer.convert.compare import OutputComparison, compare, compare_arrays
from edge_mmer.errors import DatasetMissingError, DatasetUnusableError, FeatureBundleError
from edge_mmer.networks import StepLSTM
from edge_mmer.runner import Runner
from edge_mmer.vocab import ENCODERS

if TYPE_CHECKING:
    from edge_mmer.datasets.base import LoadedDataset
    from edge_mmer.train import UtteranceInput

logger = logging.getLogger(__name__)

__all__ = [
    "ENCODERS",
    "FP16_WARN",
    "FP32_TOLERANCE",
    "DatasetMissingError",
    "DatasetUnusableError",
    "FeatureBundleError",
    "ParityResult",
    "compare_outputs",
    "measure_parity",
    "open_bundle_dataset",
    "parity_result",
    "prepare_split",
    "require_encoders",
    "resolve_dataset",
]

FP32_TOLERANCE = 1e-4
FP16_WARN = 1e-2


@dataclass(frozen=True)
class ParityResult:
    max_abs: float
    cosine: float
    samples: int

    def to_json(self) -> dict[str, Any]:
        return {"max_abs": self.max_abs, "cosine": self.cosine, "samples": self.samples, "reference": "pytorch"}


def require_encoders(bundle: Bundle, action: str = "conversion") -> None:
    """Raise :class:`FeatureBundleError` when the bundle lacks the speech or face encoder (trained on
    precomputed features): its context / fusion LSTMs take a feature dataset's pooled vectors, which
    no device computes from a camera and a microphone, so there is nothing deployable to convert."""
    missing = [n for n in ENCODERS if n not in bundle.networks]
    if not missing:
        return
    prov = bundle.provenance.get("dataset")
    spec = prov.get("spec") or prov.get("path") if isinstance(prov, dict) else prov
    raise FeatureBundleError(
        f"{bundle.path}: {action} needs the speech and face encoders, and this bundle has no "
        f"{' / '.join(missing)} network: it was trained on precomputed features"
        + (f" ({spec})" if spec else "")
        + " (CMU-MOSI .csd files or an MMSA / MulT pickle), so its context and fusion LSTMs take that dataset's "
        "pooled feature vectors, which the runtime cannot compute from a camera and a microphone. Nothing "
        "deployable to export: measure it with `edge-mmer evaluate`, or train on the dataset's media "
        "(e.g. mosi:DIR with the raw segment videos) to get a bundle that converts")


def _recorded(bundle: Bundle) -> dict[str, Any]:
    prov = bundle.provenance.get("dataset")
    if isinstance(prov, dict):
        return prov
    return {"path": prov} if isinstance(prov, str) else {}


def _as_spec(data: str | os.PathLike[str] | None) -> str | None:
    """``data`` when it is a whole ``KIND:PATH[?options]`` spec (and not an existing path), else None."""
    from edge_mmer.datasets.registry import KINDS

    if data is None:
        return None
    text = os.fspath(data)
    if Path(text).exists():
        return None
    kind, sep, rest = text.partition(":")
    return text if sep and rest and kind.strip().lower() in KINDS else None


def _synthetic_dir(path: Path | None, given: bool, seed: Any, bundle: Bundle) -> Path:
    if path is None:
        raise DatasetMissingError(f"{bundle.path}: the manifest records no dataset path (provenance.dataset.path); "
                                  "pass --data DIR")
    if not (path / "dataset.json").is_file():
        where = "given with --data" if given else "recorded in provenance.dataset.path, relative to the current directory"
        regen = f"edge-mmer synth --out {path}" + (f" --seed {seed}" if seed not in (None, 0) else "")
        raise DatasetMissingError(
            f"parity samples: dataset not found at {path} ({where}). Regenerate the synthetic set with "
            f"`{regen}` (the same seed gives byte-identical files), or pass --data DIR")
    return path


def resolve_dataset(bundle: Bundle, data: str | os.PathLike[str] | None = None) -> Path | str:
    """The bundle's dataset, as :func:`edge_mmer.train.load_dataset` takes it: a synthetic directory
    (a :class:`~pathlib.Path`, which must hold ``dataset.json``) or a ``KIND:PATH[?options]`` spec (a str).

    Without ``data``: ``provenance.dataset.spec`` when its kind is not synthetic, else
    ``provenance.dataset.path`` (both relative to the directory training ran in). ``data`` replaces
    the recorded path (the recorded kind and options are kept), or is a whole spec. Raises
    :class:`DatasetMissingError` saying how to get the data; the result is accepted again as ``data``."""
    from edge_mmer.datasets.base import DatasetError
    from edge_mmer.datasets.registry import parse_spec

    rec = _recorded(bundle)
    kind = str(rec.get("kind") or "synthetic").lower()
    given = _as_spec(data)
    if given is None and kind == "synthetic":
        path = Path(data) if data is not None else Path(rec["path"]) if rec.get("path") else None
        return _synthetic_dir(path, data is not None, rec.get("seed"), bundle)
    if given is None:
        recorded = rec.get("spec") or (f"{kind}:{rec['path']}" if rec.get("path") else None)
        if recorded is None and data is None:
            raise DatasetMissingError(f"{bundle.path}: the manifest records no dataset (provenance.dataset.spec); "
                                      f"pass --data {kind}:PATH")
        if data is None:
            given = str(recorded)
        else:
            query = str(recorded).partition(":")[2].partition("?")[2] if recorded else ""
            given = f"{kind}:{os.fspath(data)}" + (f"?{query}" if query else "")
    try:
        spec = parse_spec(given)
    except DatasetError as exc:
        raise DatasetMissingError(f"dataset {given!r}: {exc}") from None
    if spec.kind == "synthetic":
        return _synthetic_dir(spec.path, data is not None, rec.get("seed"), bundle)
    if not spec.path.exists():
        where = ("given with --data" if data is not None else
                 "recorded in provenance.dataset.spec, relative to the directory training ran in")
        raise DatasetMissingError(
            f"parity samples: the {spec.kind} dataset is not at {spec.path} ({where}). Pass --data PATH (the "
            f"dataset's {'file' if spec.kind == 'csv' else 'root'} on this machine; the recorded kind and options "
            f"are kept) or --data {spec.kind}:PATH[?options]")
    return spec.text


def open_bundle_dataset(bundle: Bundle, dataset: Path | str) -> LoadedDataset:
    """Load ``dataset`` (from :func:`resolve_dataset`) through the datasets registry and check that
    it fits the bundle: the same labels, media (not precomputed features). Raises
    :class:`~edge_mmer.datasets.base.DatasetError` (malformed) or :class:`DatasetUnusableError`."""
    from edge_mmer.datasets.registry import open_dataset

    ds = open_dataset(f"synthetic:{dataset}" if isinstance(dataset, Path) else dataset)
    if tuple(ds.labels) != tuple(bundle.labels):
        raise DatasetUnusableError(f"dataset {dataset} has labels {list(ds.labels)}, the bundle {list(bundle.labels)}")
    if ds.features_only:
        raise DatasetUnusableError(f"dataset {dataset} holds precomputed features, not media: the bundle's encoders "
                                   "need audio and video (pass the dataset's media with --data)")
    return ds


def prepare_split(bundle: Bundle, ds: LoadedDataset, split: str, n: int | None, *, workers: int = 1,
                  cache_dir: Path | None = None, progress: bool = False,
                  skipped: dict[str, int] | None = None) -> list[list[UtteranceInput]]:
    """The first ``n`` usable utterances of ``split`` (all with None; whole sessions in order, the
    last one cut) through the training front ends: :func:`~edge_mmer.datasets.frontend.extract_all`
    with the dataset's ``max_clip_s`` (workers, feature cache), as ``edge-mmer train`` runs them.
    Defective utterances are left out and counted in ``skipped`` (reason -> count), as training does."""
    from edge_mmer.datasets.frontend import extract_all
    from edge_mmer.train import UtteranceInput

    cfg = bundle.config
    left = n if n is not None else 1 << 30
    pending = list(ds.sessions(split))
    out: list[list[UtteranceInput]] = []
    counts = skipped if skipped is not None else {}
    while left > 0 and pending:
        batch: list[list[Any]] = []
        want = left
        while pending and want > 0:  # enough sessions for what is still wanted
            utts = pending.pop(0)[:want]
            batch.append(utts)
            want -= len(utts)
        entries, _ = extract_all([u for s in batch for u in s], cfg, cache_dir=cache_dir, workers=workers,
                                 progress=progress, max_clip_s=ds.max_clip_s, desc=f"front ends ({split})")
        for utts in batch:
            items = []
            for utt in utts[:left]:
                entry = entries[utt.id]
                if entry.error or entry.mel is None:
                    reason = entry.error or "no_audio"
                    counts[reason] = counts.get(reason, 0) + 1
                    logger.debug("%s: skipped (%s: %s)", utt.id, reason, entry.detail)
                    continue
                items.append(UtteranceInput(uid=utt.id, label=utt.label_index, mel=entry.mel, faces=entry.faces))
            left -= len(items)
            if items:
                out.append(items)
    if counts:
        logger.warning("%s: %d %s utterances skipped (%s), as training skips them", ds.spec, sum(counts.values()),
                       split, ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return out


def compare_outputs(ref: list[np.ndarray], got: list[np.ndarray]) -> ParityResult:
    """Rows are output vectors (B, F); max |ref - got| over all, mean cosine over the rows
    (:func:`edge_mmer.convert.compare.compare_arrays`)."""
    result = compare_arrays(ref, got, "parity")
    return ParityResult(max_abs=result.max_abs, cosine=result.cosine, samples=result.samples)


def parity_result(comparisons: Mapping[str, OutputComparison]) -> ParityResult:
    """One network's parity from its per-output comparisons: the largest max-abs of any output; the
    first output's cosine and row count."""
    first = next(iter(comparisons.values()))
    return ParityResult(max_abs=max(c.max_abs for c in comparisons.values()), cosine=first.cosine,
                        samples=first.samples)


def _step_through(reference: Runner, runner: Runner, sequences: list[np.ndarray]) -> tuple[TapRunner, TapRunner]:
    """Both step graphs over every (L, D) sequence, each from a zero state, each carrying its own."""
    taps = TapRunner(reference, keep_outputs=True), TapRunner(runner, keep_outputs=True)
    steppers = [StepLSTM(tap) for tap in taps]
    for tap in taps:
        tap.activate()
    for seq in sequences:
        for stepper in steppers:
            stepper.reset_states()
            for x_t in seq:
                stepper.step(x_t)
    return taps


def measure_parity(name: str, reference: Runner, runner: Runner, inputs: NetworkInputs) -> ParityResult:
    """``runner`` (the ONNX artifact) against ``reference`` (the torch network) on the real inputs
    for ``name`` (see the module docstring); activates both and leaves them active."""
    if name in ENCODERS:
        reference.activate()
        runner.activate()
        feeds = inputs.feeds.get(name, [])
        ref_runs = [reference.infer(feed) for feed in feeds]
        got_runs = [runner.infer(feed) for feed in feeds]
    else:
        ref_tap, got_tap = _step_through(reference, runner, inputs.sequences(name))
        ref_runs, got_runs = ref_tap.results, got_tap.results
    if not ref_runs:
        raise DatasetUnusableError(f"parity: no real samples for {name} (no face found in the sampled utterances? "
                                   "pass more with --samples)")
    return parity_result(compare(ref_runs, got_runs))
