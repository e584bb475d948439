"""MNIST, Fashion-MNIST, CIFAR-10 and SVHN in torchvision's folder layouts.

Local files always win: robustinv reads them without asking the network. Only when none are
found (and `download` is on) does it call torchvision's downloader. torchvision's MNIST
downloader, run offline, removes local .gz archives it fails to refresh, so the IDX files are
located and read here directly rather than through `torchvision.datasets.MNIST(download=True)`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from robustinv.data import cifar
from robustinv.data.dataset import Dataset, from_arrays, register_dataset
from robustinv.data.idx import IDX_ROLES, find_idx_files, load_idx_folder
from robustinv.errors import DataError
from robustinv.paths import default_data_root

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def _idx_dataset(
    name: str, folder: str, root: Path | None, download: bool,
    downloader: Callable[[Path], object], extra_places: tuple[Path, ...] = (),
) -> Dataset:
    base = _existing_root(name, root, f"the four IDX files (.gz or not) in {root}/{folder}/raw")
    places = [base / folder / "raw", base / folder, base, *extra_places]
    for place in places:
        found = find_idx_files(place)
        if len(found) == len(IDX_ROLES):
            return load_idx_folder(name, place, num_classes=10)
        if found:
            raise DataError(
                f"{place} holds only some {name} IDX files ({', '.join(p.name for p in found.values())}); "
                "add the missing ones or remove the folder"
            )
    if not download:
        raise DataError(f"{name} IDX files not found in {', '.join(map(str, places))} and download is off")
    try:
        downloader(base)
    except Exception as exc:  # torchvision raises anything from URLError to RuntimeError
        raise DataError(
            f"{name} not found under {base} and downloading it failed ({type(exc).__name__}: {exc}); "
            f"put the four IDX files (.gz or not) in {base / folder / 'raw'}, "
            "or run once where the internet is reachable"
        ) from None
    return load_idx_folder(name, base / folder / "raw", num_classes=10)


def _torchvision_download(cls_name: str) -> Callable[[Path], object]:
    def download(root: Path) -> None:
        import torchvision.datasets as tvd

        dataset_cls = getattr(tvd, cls_name)
        for train in (True, False):
            dataset_cls(str(root), train=train, download=True)

    return download


CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"  # torchvision's source and checksum
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"


@register_dataset("mnist")
def load_mnist(root: Path | None, *, download: bool) -> Dataset:
    """MNIST, 60k/10k grey 28×28 digits; files in ROOT/MNIST/raw (torchvision layout)."""
    return _idx_dataset("mnist", "MNIST", root, download, _torchvision_download("MNIST"))


@register_dataset("fashion-mnist")
def load_fashion_mnist(root: Path | None, *, download: bool) -> Dataset:
    """Fashion-MNIST in ROOT/FashionMNIST/raw, or Debian's `dataset-fashion-mnist` package."""
    return _idx_dataset(
        "fashion-mnist", "FashionMNIST", root, download, _torchvision_download("FashionMNIST"),
        extra_places=(DEBIAN_FASHION_MNIST,),
    )


def _existing_root(name: str, root: Path | None, layout: str) -> Path:
    """A root the suite names must exist (a typo should not trigger a download); None means the cache."""
    if root is None:
        return default_data_root()
    if not root.is_dir():
        raise DataError(
            f"{name}: data root {root} does not exist; put {layout}, "
            "or omit `root` to download into robustinv's cache"
        )
    return root


def _torchvision_arrays(name: str, root: Path | None, download: bool, build: Callable[[str, bool], Dataset]) -> Dataset:
    base = _existing_root(name, root, f"torchvision's {name} files in it")
    try:
        return build(str(base), False)
    except RuntimeError:
        if not download:
            raise DataError(f"{name} not found under {base} and download is off") from None
    try:
        return build(str(base), True)
    except Exception as exc:  # network and archive errors of every kind
        raise DataError(
            f"{name} not found under {base} and downloading it failed ({type(exc).__name__}: {exc}); "
            f"place torchvision's {name} files in {base}, or run once where the internet is reachable"
        ) from None


@register_dataset("cifar10")
def load_cifar10(root: Path | None, *, download: bool) -> Dataset:
    """CIFAR-10, 50k/10k colour 32×32 images; torchvision's `cifar-10-batches-py` under ROOT.

    The batches are read by `robustinv.data.cifar`, which unpickles nothing but numpy arrays;
    torchvision only downloads them (when no local files are found and download is on).
    """
    base = _existing_root("cifar10", root, f"torchvision's {cifar.FOLDER} folder")
    if not cifar.has_batches(base):
        if not download:
            raise DataError(f"cifar10 not found under {base / cifar.FOLDER} and download is off")
        try:
            from torchvision.datasets.utils import download_and_extract_archive

            download_and_extract_archive(CIFAR10_URL, str(base), md5=CIFAR10_MD5)
        except Exception as exc:  # network and archive errors of every kind
            raise DataError(f"cifar10 not found under {base} and downloading it failed ({type(exc).__name__}: "
                            f"{exc}); place torchvision's {cifar.FOLDER} in {base}") from None
    x_train, y_train = cifar.read_split(base / cifar.FOLDER, cifar.TRAIN)
    x_test, y_test = cifar.read_split(base / cifar.FOLDER, cifar.TEST)
    return from_arrays("cifar10", x_train, y_train, x_test, y_test, 10)


@register_dataset("svhn")
def load_svhn(root: Path | None, *, download: bool) -> Dataset:
    """SVHN cropped digits, 73k/26k colour 32×32; torchvision's `train_32x32.mat` under ROOT."""

    def build(path: str, fetch: bool) -> Dataset:
        from torchvision.datasets import SVHN

        train = SVHN(path, split="train", download=fetch)
        test = SVHN(path, split="test", download=fetch)
        # torchvision keeps SVHN as uint8 NCHW; NHWC is what from_arrays expects of uint8.
        return from_arrays(
            "svhn", train.data.transpose(0, 2, 3, 1), train.labels, test.data.transpose(0, 2, 3, 1), test.labels, 10
        )

    return _torchvision_arrays("svhn", root, download, build)
