"""Arrays in a NumPy .npz file: `x`, `y` and optionally `x_test`, `y_test`."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np
import numpy.lib.format as npy

from robustinv.checkpoints import file_problem
from robustinv.data.dataset import Dataset, from_arrays, register_dataset
from robustinv.data.limits import checked_count
from robustinv.errors import DataError

SPLIT_SEED = 0
TEST_FRACTION = 0.2
ARRAYS = ("x", "y", "x_test", "y_test")  # the members read; any other is left unread
_HEADERS = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}


def _read_member(root: Path, archive: zipfile.ZipFile, name: str) -> np.ndarray:
    """One array of the archive: its header checked (plain dtype, at most `MAX_VALUES` values) before its data is read.

    An npz is a zip: a member of a few kilobytes may inflate to gigabytes, so the size its header
    promises is bounded first, and only that much is then inflated.
    """
    with archive.open(name) as member:
        version = npy.read_magic(member)
        if version not in _HEADERS:
            raise ValueError(f"{name}: .npy format version {version} is not supported")
        shape, _, dtype = _HEADERS[version](member)
    if dtype.hasobject:
        raise ValueError(f"{name} holds Python objects, which loading would unpickle")
    checked_count(root, tuple(shape), f"'{name.removesuffix('.npy')}'")
    with archive.open(name) as member:
        return npy.read_array(member, allow_pickle=False)


@register_dataset("npz")
def load_npz(root: Path | None, *, download: bool) -> Dataset:
    """`x` as float NCHW in [0, 1] or uint8 NHWC, `y` integer labels; no pickled objects.

    Without `x_test`/`y_test` the file is split 80/20 by a fixed seeded permutation.
    """
    if root is None:
        raise DataError("dataset 'npz' needs a root: the path of the .npz file")
    problem = file_problem(root)
    if problem is not None:
        raise DataError(f"dataset 'npz': {root} {problem}")
    try:
        with zipfile.ZipFile(root) as archive:
            members = {name.removesuffix(".npy"): name for name in archive.namelist() if name.endswith(".npy")}
            arrays = {key: _read_member(root, archive, members[key]) for key in ARRAYS if key in members}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"cannot read {root} as a .npz of plain arrays: {exc}") from None
    missing = [key for key in ("x", "y") if key not in arrays]
    if missing:
        raise DataError(f"{root} lacks the array(s) {', '.join(missing)}; found {', '.join(members) or 'none'}")
    for key, shapes in (("x", "(N, H, W), (N, C, H, W) or (N, H, W, C)"), ("y", "(N,)"), ("x_test", ""), ("y_test", "")):
        if key in arrays and arrays[key].ndim == 0:
            raise DataError(f"{root}: '{key}' is a single value, not an array{' of shape ' + shapes if shapes else ''}")
    if ("x_test" in arrays) != ("y_test" in arrays):
        present, absent = ("x_test", "y_test") if "x_test" in arrays else ("y_test", "x_test")
        raise DataError(f"{root} has '{present}' but no '{absent}': give both for a test split, or neither")
    x, y = arrays["x"], arrays["y"]
    if len(x) != len(y):
        raise DataError(f"{root}: {len(x)} images in 'x' but {len(y)} labels in 'y'")
    if "x_test" in arrays:
        return from_arrays("npz", x, y, arrays["x_test"], arrays["y_test"])
    order = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    n_test = max(1, int(round(len(x) * TEST_FRACTION))) if len(x) > 1 else 0
    test, train = order[:n_test], order[n_test:]
    return from_arrays("npz", x[train], y[train], x[test], y[test])
