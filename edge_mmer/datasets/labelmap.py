"""Label maps for cross-corpus work: rename and drop labels when a dataset is loaded, so corpora that
name one emotion differently (RAVDESS ``fearful``, CREMA-D ``fear``; MELD ``joy``, the others
``happy``) or have extra classes (RAVDESS ``calm`` and ``surprised``) share one label vocabulary.

Three dataset options (after ``?`` in the spec, any kind but ``synthetic``):

- ``map=OLD:NEW,OLD:NEW``: rename labels (two old labels may map to one new one: ``calm:neutral``);
- ``drop=LABEL,LABEL``: leave the utterances of these labels out (named after the mapping);
- ``labels=A,B,C``: exactly these labels, in this order (what a bundle trained on another corpus
  has); utterances of any other label are left out.

Dropped utterances are counted in the dataset's defect summary as ``handled label_dropped``. A map
or drop naming a label the dataset does not have is an error naming it and the known ones.
:func:`shared_labels` is what ``edge-mmer evaluate`` uses to score a bundle on another corpus over
the classes both have.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence

from edge_mmer.datasets.base import DatasetError, LoadedDataset
from edge_mmer.datasets.options import Options

log = logging.getLogger(__name__)

__all__ = ["LabelMap", "apply_label_map", "label_map_from_options", "relabel", "shared_labels"]


@dataclasses.dataclass(frozen=True)
class LabelMap:
    """``rename`` old -> new, ``drop`` (new names), ``order`` (None: the dataset's order, renamed)."""

    rename: Mapping[str, str] = dataclasses.field(default_factory=dict)
    drop: frozenset[str] = frozenset()
    order: tuple[str, ...] | None = None

    @property
    def empty(self) -> bool:
        return not self.rename and not self.drop and self.order is None


def _items(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def label_map_from_options(opts: Options) -> LabelMap:
    """The ``map``, ``drop`` and ``labels`` options (see the module docstring)."""
    rename: dict[str, str] = {}
    for pair in _items(opts.string("map")):
        old, sep, new = pair.partition(":")
        if not sep or not old.strip() or not new.strip():
            raise DatasetError(f"dataset option 'map' of '{opts.kind}': expected OLD:NEW pairs joined by ',', "
                               f"got {pair!r}")
        rename[old.strip()] = new.strip()
    order = _items(opts.string("labels"))
    return LabelMap(rename, frozenset(_items(opts.string("drop"))), tuple(order) if order else None)


def relabel(ds: LoadedDataset, order: Sequence[str]) -> LoadedDataset:
    """``ds`` with exactly the labels ``order`` (renumbered), its other utterances left out."""
    return apply_label_map(ds, LabelMap(order=tuple(order)))


def apply_label_map(ds: LoadedDataset, lm: LabelMap) -> LoadedDataset:
    """The dataset with ``lm`` applied (itself when ``lm`` is empty). Raises :class:`DatasetError`
    for a label the dataset does not have, or when no label is left."""
    if lm.empty:
        return ds
    unknown = [k for k in lm.rename if k not in ds.labels]
    if unknown:
        raise DatasetError(f"{ds.spec}: map: label(s) {', '.join(unknown)} not in the dataset "
                           f"(its labels: {', '.join(ds.labels)})")
    renamed = list(dict.fromkeys(lm.rename.get(lab, lab) for lab in ds.labels))
    bad_drop = sorted(lm.drop - set(renamed))
    if bad_drop:
        raise DatasetError(f"{ds.spec}: drop: label(s) {', '.join(bad_drop)} not in the dataset "
                           f"(its labels after the map: {', '.join(renamed)})")
    labels = tuple(lm.order) if lm.order is not None else tuple(lab for lab in renamed if lab not in lm.drop)
    if lm.order is not None and len(set(lm.order)) != len(lm.order):
        raise DatasetError(f"{ds.spec}: labels: a label is named twice in {', '.join(lm.order)}")
    if not set(labels) & set(renamed):
        raise DatasetError(f"{ds.spec}: no label left (its labels after the map: {', '.join(renamed)})")
    index = {lab: i for i, lab in enumerate(labels)}
    kept = []
    for u in ds.all_utterances:
        new = lm.rename.get(u.label, u.label)
        if new in lm.drop or new not in index:
            ds.summary.handle("label_dropped", u.id)
            continue
        kept.append(dataclasses.replace(u, label=new, label_index=index[new]) if new != u.label
                    or index[new] != u.label_index else u)
    log.info("%s: labels %s (%d of %d utterances kept)", ds.spec, ", ".join(labels), len(kept),
             len(ds.all_utterances))
    return dataclasses.replace(ds, labels=labels, all_utterances=tuple(kept))


def shared_labels(dataset: Sequence[str], bundle: Sequence[str]) -> tuple[str, ...]:
    """The bundle's labels the dataset also has, in the bundle's order."""
    have = set(dataset)
    return tuple(lab for lab in bundle if lab in have)
