"""Dataset loaders (torch-free): the synthetic set, RAVDESS, CREMA-D, MELD, CMU-MOSI and CSV manifests.

``open_dataset("KIND:PATH[?options]")`` (:mod:`.registry`) loads any of them into a
:class:`~edge_mmer.datasets.base.LoadedDataset`, the one dataset type, whose utterances share
:class:`~edge_mmer.datasets.base.BaseUtterance`; :mod:`.frontend` runs the training front ends over
its utterances with worker processes and the feature cache (:mod:`.cache`); :mod:`.resolve` finds a
bundle's own dataset again (conversion parity, calibration, INT8 drift).
"""

from edge_mmer.datasets.base import (
    BaseUtterance,
    DatasetError,
    DefectSummary,
    FeatureUtterance,
    LoadedDataset,
    MediaUtterance,
)
from edge_mmer.datasets.registry import KINDS, DatasetSpec, open_dataset, parse_spec
from edge_mmer.datasets.synthetic import SyntheticDataset, Utterance, load_synthetic

__all__ = [
    "KINDS",
    "BaseUtterance",
    "DatasetError",
    "DatasetSpec",
    "DefectSummary",
    "FeatureUtterance",
    "LoadedDataset",
    "MediaUtterance",
    "SyntheticDataset",
    "Utterance",
    "load_synthetic",
    "open_dataset",
    "parse_spec",
]
