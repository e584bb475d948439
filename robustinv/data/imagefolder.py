"""Images in class folders, torchvision's `ImageFolder` layout: ROOT/train/<class>/*.png and ROOT/test/ (or val/).

Classes are the folder names sorted as torchvision sorts them, so a model trained with
`torchvision.datasets.ImageFolder` on the same folders gets the same class indices. Only PNG and
JPEG files are opened (Pillow is told so), nothing is unpickled and nothing is downloaded. Images
are decoded one at a time into a uint8 array, so a large folder never holds more than one
decoded picture beside the array it fills.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from robustinv.data.dataset import Dataset, from_arrays, register_dataset
from robustinv.errors import DataError
from robustinv.text import first_line

log = logging.getLogger(__name__)

EXTENSIONS = (".png", ".jpg", ".jpeg")  # compared case-insensitively, as torchvision does
FORMATS = ["PNG", "JPEG"]  # what Pillow may identify a file as; anything else is refused
TEST_SPLITS = ("test", "val")  # the first present is the test split
GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N"}
SIXTEEN_BIT_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N"}
NAME = "imagefolder"


@dataclass(frozen=True)
class _Reference:
    """The first image read: every other one must match its size (without resize) and channels (without grayscale)."""

    path: Path
    height: int
    width: int
    channels: int


def load_imagefolder(
    root: Path | None, *, download: bool, resize: tuple[int, int] | None = None, grayscale: bool = False
) -> Dataset:
    """PNG/JPEG files under ROOT/train/<class>/ and ROOT/test/<class>/ (or val/), as float NCHW in [0, 1].

    Args:
        download: ignored; class folders are never downloaded.
        resize: (height, width) every image is resized to (bilinear, with antialiasing, as
            torchvision's `Resize` does on PIL images); without it all images must share one size.
        grayscale: convert every image to one grey channel (ITU-R 601-2 luma); without it all
            images must be grey or all colour. An alpha channel is dropped.
    """
    if root is None:
        raise DataError(f"dataset {NAME!r} needs a root: the folder holding train/ and test/ (or val/)")
    if not root.is_dir():
        raise DataError(f"dataset {NAME!r}: folder {root} does not exist")
    train_dir, test_dir = _split_folders(root)
    classes = _classes(train_dir, test_dir)
    train_files, y_train = _files(train_dir, classes)
    test_files, y_test = _files(test_dir, classes)  # listed before decoding: an empty class fails fast
    x_train, reference = _decode_all(train_files, None, resize=resize, grayscale=grayscale)
    x_test, _ = _decode_all(test_files, reference, resize=resize, grayscale=grayscale)
    return from_arrays(NAME, x_train, y_train, x_test, y_test, num_classes=len(classes))


register_dataset(NAME)(load_imagefolder)  # not as a decorator, so the options stay in the function's type


def _split_folders(root: Path) -> tuple[Path, Path]:
    train_dir = root / "train"
    if not train_dir.is_dir():
        raise DataError(f"dataset {NAME!r}: {root} has no train/ folder (expected train/<class>/*.png and "
                        "test/<class>/*.png, or val/ for test/)")
    tests = [root / split for split in TEST_SPLITS if (root / split).is_dir()]
    if not tests:
        raise DataError(f"dataset {NAME!r}: {root} has no test/ or val/ folder beside train/")
    if len(tests) > 1:
        log.info("dataset %s: %s has both test/ and val/; the test split is test/", NAME, root)
    return train_dir, tests[0]


def _class_folders(folder: Path) -> list[str]:
    """The class names of a split: its subfolders, sorted as `torchvision.datasets.folder.find_classes` sorts them."""
    try:
        with os.scandir(folder) as entries:
            return sorted(entry.name for entry in entries if entry.is_dir())
    except OSError as exc:
        raise DataError(f"dataset {NAME!r}: cannot list {folder}: {exc.strerror or exc}") from None


def _classes(train_dir: Path, test_dir: Path) -> list[str]:
    train, test = _class_folders(train_dir), _class_folders(test_dir)
    for folder, names in ((train_dir, train), (test_dir, test)):
        if not names:
            raise DataError(f"dataset {NAME!r}: {folder} holds no class folders")
    for here, there, names, others in ((train_dir, test_dir, train, test), (test_dir, train_dir, test, train)):
        lone = [name for name in names if name not in others]
        if lone:
            raise DataError(f"dataset {NAME!r}: class {lone[0]!r} has a folder in {here} but none in {there}; "
                            "every class needs images in both splits")
    return train


def _files(folder: Path, classes: list[str]) -> tuple[list[Path], np.ndarray]:
    """Every PNG/JPEG file of each class folder, in torchvision's order (walked recursively, sorted)."""
    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        class_dir = folder / name
        found = [Path(here) / file for here, _, names in sorted(os.walk(class_dir)) for file in sorted(names)
                 if file.lower().endswith(EXTENSIONS)]
        if not found:
            raise DataError(f"dataset {NAME!r}: class folder {class_dir} holds no PNG or JPEG files")
        files += found
        labels += [label] * len(found)
    return files, np.asarray(labels, dtype=np.int64)


def _decode_all(files: list[Path], reference: _Reference | None, *, resize: tuple[int, int] | None,
                grayscale: bool) -> tuple[np.ndarray, _Reference]:
    """The files as one uint8 NHWC array, filled one decoded image at a time."""
    out: np.ndarray | None = None
    for index, path in enumerate(files):
        pixels = _decode(path, resize=resize, grayscale=grayscale)
        if reference is None:
            reference = _Reference(path, pixels.shape[0], pixels.shape[1], pixels.shape[2])
        _check_matches(path, pixels, reference)
        if out is None:
            out = np.empty((len(files), *pixels.shape), dtype=np.uint8)
        out[index] = pixels
    assert out is not None and reference is not None  # every split has at least one file
    return out, reference


def _check_matches(path: Path, pixels: np.ndarray, reference: _Reference) -> None:
    height, width, channels = pixels.shape
    if (height, width) != (reference.height, reference.width):
        raise DataError(f"dataset {NAME!r}: {path} is {width}×{height} pixels but {reference.path} is "
                        f"{reference.width}×{reference.height}; set resize = [H, W] under [dataset]")
    if channels != reference.channels:
        raise DataError(f"dataset {NAME!r}: {path} is {_kind(channels)} but {reference.path} is "
                        f"{_kind(reference.channels)}; set grayscale = true under [dataset], or convert the files")


def _kind(channels: int) -> str:
    return "grey (1 channel)" if channels == 1 else f"colour ({channels} channels)"


def _decode(path: Path, *, resize: tuple[int, int] | None, grayscale: bool) -> np.ndarray:
    """One file as uint8 HWC: grey images keep one channel, colour ones get three (alpha dropped)."""
    try:
        with Image.open(path, formats=FORMATS) as image:
            image.load()
            picture = _eight_bit(image)
            picture = picture.convert("L" if grayscale or picture.mode in GREY_MODES else "RGB")
            if resize is not None:
                height, width = resize
                picture = picture.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.array(picture, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise DataError(f"dataset {NAME!r}: cannot read {path} as a PNG or JPEG image: {first_line(exc)}") from None
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def _eight_bit(image: Image.Image) -> Image.Image:
    """16-bit grey scaled to 8 bits (Pillow's own conversion would clip it at 255 instead)."""
    if image.mode not in SIXTEEN_BIT_MODES:
        return image
    wide = np.asarray(image, dtype=np.float64)
    return Image.fromarray(np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8))
