"""How much one data file may hold, checked from its header before anything is read or inflated.

A compressed file (a gzipped IDX file, an npz, which is a zip) can inflate to far more than it
occupies on disk: a few megabytes of gzip hold gigabytes of zeros. Readers therefore check the
header's dimensions first, refuse an array of more than `MAX_VALUES` numbers, allocate the array
the header promises and read into it, and refuse a file that holds more than its header says
without inflating the rest.
"""

from __future__ import annotations

import math
from pathlib import Path

from robustinv.errors import DataError

MAX_VALUES = 2**28
"""Numbers in one array of a data file: 268 M, 1 GiB once images become float32 (MNIST's 60,000 training images
hold 47 M)."""


def checked_count(path: Path, shape: tuple[int, ...], what: str = "an array") -> int:
    """The number of values an array of `shape` holds; a DataError when it exceeds `MAX_VALUES`."""
    count = math.prod(shape)
    if count > MAX_VALUES:
        raise DataError(f"{path}: its header promises {what} of shape {shape}, {count:,} values; robustinv "
                        f"reads at most {MAX_VALUES:,} per array (split the data into smaller files)")
    return count
