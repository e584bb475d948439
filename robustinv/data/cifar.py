"""CIFAR-10's python batches read without unpickling arbitrary objects.

torchvision's `CIFAR10` loads `cifar-10-batches-py/*` with `pickle.load`, and a pickle can run
any code while it is read: a data folder from elsewhere would be code. The batches hold only a
dict of bytes, a list of labels and one uint8 array, so `read_batch` unpickles them with an
allow-list that admits exactly numpy's array reconstruction, and refuses any other global by name
(`os.system`, `builtins.eval`, …) before it could be called.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from robustinv.errors import DataError

FOLDER = "cifar-10-batches-py"
TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST = ("test_batch",)
# The only globals a CIFAR batch needs: numpy's array reconstruction (numpy 1 and 2 spell the module apart).
ALLOWED = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
})
MAX_BATCH_BYTES = 200 * 1024 * 1024  # a CIFAR-10 batch is 31 MB


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refuses to load {module}.{name}: a CIFAR batch holds only arrays and labels")


def read_batch(path: Path) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """One batch as (N, 32, 32, 3) uint8 images and (N,) labels; DataError for anything else."""
    try:
        if path.stat().st_size > MAX_BATCH_BYTES:
            raise DataError(f"cifar10: {path} is larger than any CIFAR-10 batch ({MAX_BATCH_BYTES} bytes)")
        with path.open("rb") as handle:
            batch = _ArraysOnly(io.BufferedReader(handle), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, OSError) as exc:
        raise DataError(f"cifar10: cannot read {path} as a CIFAR-10 batch: {exc}") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"cifar10: {path} is not a CIFAR-10 batch (no data and labels)")
    data, labels = batch[b"data"], batch[b"labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"cifar10: {path}: the images are not uint8 rows of 3,072 values")
    labels = np.asarray(labels)
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"cifar10: {path}: {labels.shape} labels for {len(data)} images")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels.astype(np.int64)


def read_split(folder: Path, names: tuple[str, ...]) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    parts = [read_batch(folder / name) for name in names]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def has_batches(root: Path) -> bool:
    return all((root / FOLDER / name).is_file() for name in (*TRAIN, *TEST))
