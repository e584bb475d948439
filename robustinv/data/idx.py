"""MNIST-format IDX files (gzipped or not): the reader and the `idx` folder dataset."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from robustinv.data.dataset import Dataset, from_arrays, register_dataset
from robustinv.errors import DataError

_IDX_DTYPES: dict[int, np.dtype | type] = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

# Roles and the file-name stems that fill them (torchvision's and Debian's names).
IDX_ROLES = {
    "x_train": ("train-images-idx3-ubyte",),
    "y_train": ("train-labels-idx1-ubyte",),
    "x_test": ("t10k-images-idx3-ubyte", "test-images-idx3-ubyte"),
    "y_test": ("t10k-labels-idx1-ubyte", "test-labels-idx1-ubyte"),
}


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file; a wrong magic number or a truncated body is a DataError."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read IDX file {path}: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"IDX file {path} is truncated (header cut short)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"IDX file {path} is truncated or padded: header promises {expected} bytes, found {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def find_idx_files(folder: Path) -> dict[str, Path]:
    """The IDX files of the four roles present in `folder` (plain or .gz)."""
    found: dict[str, Path] = {}
    for role, stems in IDX_ROLES.items():
        for stem in stems:
            for candidate in (folder / stem, folder / f"{stem}.gz"):
                if candidate.is_file() and role not in found:
                    found[role] = candidate
    return found


def load_idx_folder(name: str, folder: Path, num_classes: int | None = None) -> Dataset:
    """A dataset from a folder holding all four IDX files."""
    files = find_idx_files(folder)
    missing = [IDX_ROLES[role][0] for role in IDX_ROLES if role not in files]
    if missing:
        raise DataError(f"{folder} lacks the IDX file(s) {', '.join(missing)} (plain or .gz)")
    arrays = {role: read_idx(path) for role, path in files.items()}
    return from_arrays(name, arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"], num_classes)


@register_dataset("idx")
def load_idx(root: Path | None, *, download: bool) -> Dataset:
    """A folder of MNIST-format IDX files, e.g. Debian's /usr/share/datasets/fashion-mnist."""
    if root is None:
        raise DataError("dataset 'idx' needs a root: the folder holding the four IDX files")
    if not root.is_dir():
        raise DataError(f"dataset 'idx': folder {root} does not exist")
    return load_idx_folder("idx", root)
