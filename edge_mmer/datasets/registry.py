"""``KIND:PATH[?key=value&...]`` dataset specs and the loader for each kind.

=============  =====================================================================================
kind           PATH
=============  =====================================================================================
synthetic      a directory written by ``edge-mmer synth``
ravdess        the RAVDESS root (any layout; ``MM-VC-EE-II-SS-RR-AA.mp4`` found recursively)
cremad         the CREMA-D root with ``AudioWAV/`` and ``VideoFlash/``
meld           the MELD root: ``{train,dev,test}_sent_emo.csv`` and the clip folders
mosi           CMU-MOSI: raw segment videos, ``.csd`` feature files, or an MMSA / MulT pickle
csv            a manifest ``path,label[,session,start,end]`` (users' own recordings)
=============  =====================================================================================

Options (after ``?``) are per kind; a common one is ``max_clip_s`` (skip media longer than this,
default 60 s; ``none`` to keep all). Torch-free.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

from edge_mmer.datasets.base import DatasetError, LoadedDataset
from edge_mmer.datasets.cremad import load_cremad
from edge_mmer.datasets.csv_manifest import load_csv_manifest
from edge_mmer.datasets.labelmap import apply_label_map, label_map_from_options
from edge_mmer.datasets.meld import load_meld
from edge_mmer.datasets.mosi import load_mosi
from edge_mmer.datasets.options import Options
from edge_mmer.datasets.ravdess import load_ravdess
from edge_mmer.datasets.synthetic import load_synthetic

log = logging.getLogger(__name__)

__all__ = ["KINDS", "DatasetSpec", "open_dataset", "parse_spec"]

KINDS = ("synthetic", "ravdess", "cremad", "meld", "mosi", "csv")
DEFAULT_MAX_CLIP_S = 60.0


@dataclass(frozen=True)
class DatasetSpec:
    kind: str
    path: Path
    options: dict[str, str]
    text: str

    def __str__(self) -> str:
        return self.text


def parse_spec(text: str, default_synthetic: Path | None = None) -> DatasetSpec:
    """``KIND:PATH[?k=v&...]`` -> :class:`DatasetSpec`. ``synthetic`` alone means ``default_synthetic``."""
    raw = text.strip()
    kind, sep, rest = raw.partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise DatasetError(f"dataset {text!r}: unknown kind {kind!r}; expected KIND:PATH with KIND one of "
                           f"{', '.join(KINDS)} (e.g. synthetic:DIR, ravdess:DIR, meld:DIR?target=sentiment, "
                           "mosi:FILE.pkl, csv:FILE.csv)")
    path_text, _, query = rest.partition("?")
    if not sep or not path_text:
        if kind == "synthetic" and default_synthetic is not None:
            path_text = str(default_synthetic)
        else:
            raise DatasetError(f"dataset {text!r}: expected {kind}:PATH")
    try:
        pairs = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError as exc:
        raise DatasetError(f"dataset {text!r}: "
                           f"options after '?' must be key=value pairs joined by '&' ({exc})") from None
    return DatasetSpec(kind=kind, path=Path(path_text).expanduser(), options=pairs, text=raw)


def open_dataset(spec: str | DatasetSpec) -> LoadedDataset:
    """Load the dataset a spec names. Raises :class:`DatasetError` naming the file or option at fault."""
    s = parse_spec(spec) if isinstance(spec, str) else spec
    opts = Options(s.options, s.kind)
    text = s.text
    if s.kind == "synthetic":
        opts.check_used()
        return load_synthetic(s.path, spec=text)
    label_map = label_map_from_options(opts)  # read before a loader checks that every option was used
    max_clip = opts.number("max_clip_s", DEFAULT_MAX_CLIP_S)
    if s.kind == "mosi":  # the raw segment clips get the length check; feature files have no media
        mosi = load_mosi(s.path, opts, text)
        mosi.max_clip_s = None if mosi.features_only else max_clip
        return apply_label_map(mosi, label_map)
    if s.kind == "ravdess":
        ds = load_ravdess(s.path, opts, text)
    elif s.kind == "cremad":
        ds = load_cremad(s.path, opts, text)
    elif s.kind == "meld":
        ds = load_meld(s.path, opts, text)
    else:
        ds = load_csv_manifest(s.path, opts, text)
    ds.max_clip_s = max_clip
    return apply_label_map(ds, label_map)
