"""Datasets: one loader per file, all registered in `DATASETS`."""

from robustinv.data import digits, idx, imagefolder, npz, torchvision_sets  # noqa: F401  (fill the registry)
from robustinv.data.dataset import DATASETS, Dataset, from_arrays, load_dataset

__all__ = ["DATASETS", "Dataset", "from_arrays", "load_dataset"]
