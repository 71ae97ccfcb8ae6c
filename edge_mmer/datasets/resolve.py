"""A bundle's own dataset, found and opened again: for conversion parity, INT8 calibration and drift.

The dataset is the one the bundle was trained on: ``provenance.dataset.spec`` (``KIND:PATH[?options]``,
any kind of :mod:`edge_mmer.datasets.registry`) or, for the synthetic set and bundles that predate
the spec, ``provenance.dataset.path``; ``--data`` replaces the recorded path (the kind and options
are kept) or gives a whole ``KIND:PATH`` spec (:func:`resolve_dataset`). :func:`open_bundle_dataset`
loads it and checks that it fits the bundle; :func:`prepare_split` runs ``N`` utterances of a split
through the training front ends (:func:`edge_mmer.datasets.frontend.extract_all`, the code
``edge-mmer train`` runs: log-mel, Haar crops; clips longer than the dataset's ``max_clip_s``
skipped, optionally through the feature cache), skipping and counting defective utterances as
training does.

A bundle trained on precomputed features (CMU-MOSI ``.csd`` files, MMSA / MulT pickles) has no
encoders: :func:`require_encoders` refuses it (nothing a device could feed from a camera and a
microphone). Torch-free.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from edge_mmer.bundle import Bundle
from edge_mmer.datasets.base import DatasetError, LoadedDataset
from edge_mmer.datasets.frontend import UtteranceInput, extract_all
from edge_mmer.datasets.registry import KINDS, open_dataset, parse_spec
from edge_mmer.errors import DatasetMissingError, DatasetUnusableError, FeatureBundleError
from edge_mmer.networks import bundle_modalities
from edge_mmer.vocab import ENCODERS, MODALITIES

log = logging.getLogger(__name__)

__all__ = [
    "DatasetMissingError",
    "DatasetUnusableError",
    "FeatureBundleError",
    "open_bundle_dataset",
    "prepare_split",
    "require_encoders",
    "resolve_dataset",
    "usable_split",
]


def require_encoders(bundle: Bundle, action: str = "conversion") -> None:
    """Raise :class:`FeatureBundleError` when the bundle lacks the encoder of a modality it has (trained
    on precomputed features): its context / fusion LSTMs take a feature dataset's pooled vectors, which
    no device computes from a camera and a microphone, so there is nothing deployable to convert. A
    single-modality bundle needs only its own modality's encoder."""
    modalities = bundle_modalities(bundle.network_specs) or MODALITIES
    missing = [n for n in ENCODERS if n.removesuffix("_encoder") in modalities and n not in bundle.network_specs]
    if not missing:
        return
    prov = bundle.provenance.get("dataset")
    spec = prov.get("spec") or prov.get("path") if isinstance(prov, dict) else prov
    raise FeatureBundleError(
        f"{bundle.path}: {action} needs the encoders of its modalities, and this bundle has no "
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
        where = ("given with --data" if given
                 else "recorded in provenance.dataset.path, relative to the current directory")
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
    :class:`~edge_mmer.errors.DatasetError` (malformed) or :class:`DatasetUnusableError`."""
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
                    log.debug("%s: skipped (%s: %s)", utt.id, reason, entry.detail)
                    continue
                items.append(UtteranceInput(uid=utt.id, label=utt.label_index, mel=entry.mel, faces=entry.faces))
            left -= len(items)
            if items:
                out.append(items)
    if counts:
        log.warning("%s: %d %s utterances skipped (%s), as training skips them", ds.spec, sum(counts.values()),
                    split, ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return out


def usable_split(bundle: Bundle, ds: LoadedDataset, split: str, n: int | None, *, dataset: Path | str,
                 purpose: str = "", workers: int = 1, cache_dir: Path | None = None,
                 progress: bool = False) -> tuple[list[list[UtteranceInput]], dict[str, int]]:
    """:func:`prepare_split` of a split that must give something: (sessions, skipped per reason).

    Raises :class:`DatasetUnusableError` naming ``dataset``, the split, what it is for (``purpose``,
    e.g. ``" to measure INT8 drift on"``) and what was skipped."""
    skipped: dict[str, int] = {}
    sessions = prepare_split(bundle, ds, split, n, workers=workers, cache_dir=cache_dir, progress=progress,
                             skipped=skipped)
    if not sessions:
        why = f" ({', '.join(f'{k} {v}' for k, v in sorted(skipped.items()))} skipped)" if skipped else ""
        raise DatasetUnusableError(f"dataset {dataset} has no usable {split} utterances{purpose}{why}")
    return sessions, skipped
