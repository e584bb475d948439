"""MNIST-format IDX files (gzipped or not): the reader and the `idx` folder dataset."""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

import numpy as np

from robustinv.data.dataset import Dataset, from_arrays, register_dataset
from robustinv.data.limits import checked_count
from robustinv.errors import DataError

_IDX_DTYPES: dict[int, np.dtype | type] = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

MAX_IDX_DIMS = 4
READ_CHUNK = 1 << 20  # bytes inflated at a time

# Roles and the file-name stems that fill them (torchvision's and Debian's names).
IDX_ROLES = {
    "x_train": ("train-images-idx3-ubyte",),
    "y_train": ("train-labels-idx1-ubyte",),
    "x_test": ("t10k-images-idx3-ubyte", "test-images-idx3-ubyte"),
    "y_test": ("t10k-labels-idx1-ubyte", "test-labels-idx1-ubyte"),
}


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file, streaming: the header is checked before the body is read (see `robustinv.data.limits`).

    A wrong magic number, a header promising more than `MAX_VALUES` values, a truncated body or
    bytes beyond what the header promises are a DataError; a gzipped file is never inflated past
    one byte more than its header promises.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            return _read_idx(path, handle)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(f"cannot read IDX file {path}: {exc}") from None


def _read_idx(path: Path, handle: io.BufferedIOBase) -> np.ndarray:
    magic = handle.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    dtype, ndim = np.dtype(_IDX_DTYPES[magic[2]]), magic[3]
    if not 1 <= ndim <= MAX_IDX_DIMS:
        raise DataError(f"IDX file {path} has {ndim} dimensions; labels have 1, images 3 or 4")
    dims = handle.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise DataError(f"IDX file {path} is truncated (header cut short)")
    shape = tuple(int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(ndim))
    array = np.empty(checked_count(path, shape), dtype=dtype)
    body = array.view(np.uint8).data
    filled = 0
    while filled < len(body):
        got = handle.readinto(body[filled : filled + READ_CHUNK])
        if not got:
            raise DataError(f"IDX file {path} is truncated: its header promises {len(body)} bytes, found {filled}")
        filled += got
    if handle.read(1):
        raise DataError(f"IDX file {path} holds more than its header promises ({len(body)} bytes of {shape}); "
                        "refused without reading the rest")
    if dtype.byteorder == ">":  # IDX is big-endian; swapped in place, no second copy
        array = array.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return array.reshape(shape)


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
