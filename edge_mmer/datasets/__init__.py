"""Dataset loaders (torch-free): the synthetic set, RAVDESS, CREMA-D, MELD, CMU-MOSI and CSV manifests.

``open_dataset("KIND:PATH[?options]")`` (:mod:`.registry`) loads any of them into a
:class:`~edge_mmer.datasets.base.LoadedDataset`; :mod:`.frontend` runs the training front ends over
its utterances with worker processes and the feature cache (:mod:`.cache`).
"""

from edge_mmer.datasets.base import DatasetError, DefectSummary, FeatureUtterance, LoadedDataset, MediaUtterance
from edge_mmer.datasets.registry import KINDS, DatasetSpec, open_dataset, parse_spec
from edge_mmer.datasets.synthetic import SyntheticDataset, Utterance, load_synthetic

__all__ = [
    "KINDS",
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
