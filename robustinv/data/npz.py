"""Arrays in a NumPy .npz file: `x`, `y` and optionally `x_test`, `y_test`."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from robustinv.data.dataset import Dataset, from_arrays, register_dataset
from robustinv.errors import DataError

SPLIT_SEED = 0
TEST_FRACTION = 0.2


@register_dataset("npz")
def load_npz(root: Path | None, *, download: bool) -> Dataset:
    """`x` as float NCHW in [0, 1] or uint8 NHWC, `y` integer labels; no pickled objects.

    Without `x_test`/`y_test` the file is split 80/20 by a fixed seeded permutation.
    """
    if root is None:
        raise DataError("dataset 'npz' needs a root: the path of the .npz file")
    if not root.is_file():
        raise DataError(f"dataset 'npz': file {root} does not exist")
    try:
        with np.load(root, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read {root} as a .npz of plain arrays: {exc}") from None
    missing = [key for key in ("x", "y") if key not in arrays]
    if missing:
        raise DataError(f"{root} lacks the array(s) {', '.join(missing)}; found {', '.join(arrays) or 'none'}")
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
