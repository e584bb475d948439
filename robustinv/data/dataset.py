"""The dataset record every loader returns, validated once, and the dataset registry."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from robustinv.errors import DataError
from robustinv.registry import Registry


@dataclass(frozen=True)
class Dataset:
    """Images as float32 tensors in [0, 1], NCHW; labels as int64 in [0, num_classes)."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        for split, x, y in (("train", self.x_train, self.y_train), ("test", self.x_test, self.y_test)):
            _check_split(self.name, split, x, y, self.num_classes)
        if self.num_classes < 2:
            raise DataError(f"dataset {self.name!r}: its labels name {self.num_classes} class; a classifier "
                            "needs at least 2 (and ART refuses fewer)")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise DataError(
                f"dataset {self.name!r}: train images {tuple(self.x_train.shape[1:])} and test images "
                f"{tuple(self.x_test.shape[1:])} differ in shape"
            )
        object.__setattr__(self, "fingerprint", _fingerprint(self))

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.x_test.shape[1:]
        return int(c), int(h), int(w)

    def eval_subset(self, n_eval: int | None, seed: int, *, shuffled: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The first `n_eval` test images of a seeded permutation, in their original order (`shuffled`: in its order).

        A sequential gate looks at the inputs in the permutation's order, so that every prefix
        of them is a random sample of the test split.
        """
        n = len(self.y_test)
        if (n_eval is None or n_eval >= n) and not shuffled:
            return self.x_test, self.y_test
        generator = torch.Generator().manual_seed(seed)
        index = torch.randperm(n, generator=generator)[:n_eval]
        if not shuffled:
            index = index.sort().values
        return self.x_test[index], self.y_test[index]


def _check_split(name: str, split: str, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> None:
    where = f"dataset {name!r} ({split} split)"
    if x.ndim != 4:
        raise DataError(f"{where}: images must be NCHW, got shape {tuple(x.shape)}")
    if len(x) == 0:
        raise DataError(f"{where}: no images")
    if min(x.shape[1:]) == 0:
        raise DataError(f"{where}: images of shape {tuple(x.shape[1:])} have no pixels (C, H and W must be at least 1)")
    if len(x) != len(y):
        raise DataError(f"{where}: {len(x)} images but {len(y)} labels")
    if x.dtype != torch.float32 or y.dtype != torch.int64:
        raise DataError(f"{where}: expected float32 images and int64 labels, got {x.dtype} and {y.dtype}")
    if not torch.isfinite(x).all():
        raise DataError(f"{where}: images contain NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise DataError(f"{where}: pixel values must lie in [0, 1], found [{lo:g}, {hi:g}]")
    if int(y.min()) < 0 or int(y.max()) >= num_classes:
        raise DataError(
            f"{where}: labels must lie in [0, {num_classes - 1}], found [{int(y.min())}, {int(y.max())}]"
        )


def _fingerprint(dataset: Dataset) -> str:
    digest = hashlib.sha256()
    for tensor in (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test):
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def from_arrays(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    num_classes: int | None = None,
) -> Dataset:
    """Build a Dataset from uint8 NHWC/NHW or float NCHW arrays (the layouts loaders meet)."""
    for split, labels in (("train", y_train), ("test", y_test)):
        if np.asarray(labels).ndim == 0:
            raise DataError(f"dataset {name!r} ({split} split): labels must be an array, got a single value")
    labels = np.concatenate([np.asarray(y_train).ravel(), np.asarray(y_test).ravel()])
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"dataset {name!r}: labels must be integers, got {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= MAX_CLASSES):
        raise DataError(f"dataset {name!r}: labels must lie in [0, {MAX_CLASSES - 1}] (class indices), found "
                        f"[{labels.min()}, {labels.max()}]")
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    return Dataset(
        name=name,
        x_train=to_images(name, x_train),
        y_train=torch.from_numpy(np.asarray(y_train).astype(np.int64).ravel()),
        x_test=to_images(name, x_test),
        y_test=torch.from_numpy(np.asarray(y_test).astype(np.int64).ravel()),
        num_classes=num_classes,
    )


def to_images(name: str, x: np.ndarray) -> torch.Tensor:
    """uint8 (N,H,W) / (N,H,W,C) → /255, NCHW; float (N,H,W) / (N,C,H,W) kept as they are."""
    x = np.asarray(x)
    if x.ndim == 0:
        raise DataError(f"dataset {name!r}: images must be an array of images, got a single value")
    if x.dtype == np.uint8:
        if x.ndim == 3:
            x = x[:, None]
        elif x.ndim == 4:
            x = x.transpose(0, 3, 1, 2)
        else:
            raise DataError(f"dataset {name!r}: uint8 images must be (N,H,W) or (N,H,W,C), got {x.shape}")
        return torch.from_numpy(np.ascontiguousarray(x)).float().div_(255.0)
    if np.issubdtype(x.dtype, np.floating):
        if x.ndim == 3:
            x = x[:, None]
        elif x.ndim != 4:
            raise DataError(f"dataset {name!r}: float images must be (N,H,W) or (N,C,H,W), got {x.shape}")
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    raise DataError(f"dataset {name!r}: images must be uint8 or float, got {x.dtype}")


MAX_CLASSES = 100_000  # more classes than any real label set (ImageNet-21k has 21,841): a label beyond is a mistake


class Loader(Protocol):
    def __call__(self, root: Path | None, *, download: bool) -> Dataset: ...


def takes_root(loader: Loader) -> bool:
    """Whether a dataset reads files from `root` (a capability a bundled dataset turns off)."""
    return bool(getattr(loader, "takes_root", True))


def bundled(loader: Loader) -> Loader:
    """Mark a loader whose data ships with a package: it reads no files, so a `root` would be ignored."""
    setattr(loader, "takes_root", False)
    return loader


DATASETS: Registry[Loader] = Registry("dataset")


def load_dataset(name: str, root: Path | None = None, *, download: bool = True) -> Dataset:
    """Load a registered dataset; `root` is where its files are (or go, when downloading)."""
    return DATASETS.get(name)(root, download=download)


register_dataset: Callable[[str], Callable[[Loader], Loader]] = DATASETS.register
