"""Dataset loaders (torch-free)."""

from edge_mmer.datasets.synthetic import DatasetError, SyntheticDataset, Utterance, load_synthetic

__all__ = ["DatasetError", "SyntheticDataset", "Utterance", "load_synthetic"]
