"""scikit-learn's bundled 8×8 handwritten digits: the embedded default, no files needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robustinv.data.dataset import Dataset, bundled, from_arrays, register_dataset

SPLIT_SEED = 0  # fixed, so every run and every machine sees the same train/test split
TEST_FRACTION = 0.2


@register_dataset("digits")
@bundled
def load_digits(root: Path | None, *, download: bool) -> Dataset:
    """1,797 grey 8×8 digits with values 0–16, scaled to [0, 1]; a stratified 80/20 split."""
    from sklearn.datasets import load_digits as sklearn_digits  # on use: scikit-learn costs a second to import
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    x = (bunch.images / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=y
    )
    return from_arrays("digits", x_train, y_train, x_test, y_test, num_classes=10)
