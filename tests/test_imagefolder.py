"""The `imagefolder` dataset on PNGs written from the bundled digits: layout, options, a run, bad input."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from robustinv.cli import main
from robustinv.data import Dataset, load_dataset
from robustinv.data.imagefolder import load_imagefolder
from robustinv.errors import DataError
from robustinv.suite import SuiteError, parse_suite

from conftest import write_suite

# Not in alphabetical order of the digits they name, so a loader that numbered classes itself would be caught.
CLASS_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SORTED = sorted(CLASS_NAMES)

RUN_SUITE = """
name = "folder"
seed = 1
n_explain = 0
cache_dir = "{cache}"

[dataset]
name = "imagefolder"
root = "{root}"
n_eval = 40

[[models]]
name = "smallcnn"
[models.train]
epochs = 1
batch_size = 128

[[attacks]]
name = "fgsm"
eps = [0.1]

[guard]
models = "none"
"""


def write_digits(folder: Path, digits: Dataset, per_split: tuple[int, int] | None = None) -> None:
    """The digits as 8-bit grey PNGs, ROOT/{train,test}/<name>/<index>.png; `per_split`: the first n of each split."""
    for split, x, y in (("train", digits.x_train, digits.y_train), ("test", digits.x_test, digits.y_test)):
        count = len(y) if per_split is None else per_split[split == "test"]
        for index in range(count):
            target = folder / split / CLASS_NAMES[int(y[index])] / f"{index:04d}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(to_bytes(x[index, 0])).save(target)


def to_bytes(image: torch.Tensor) -> np.ndarray:
    return np.rint(image.numpy() * 255).astype(np.uint8)


def expected_order(labels: torch.Tensor) -> torch.Tensor:
    """Indices of a split in the folder's order: classes by sorted name, files by index within each."""
    names = [CLASS_NAMES[int(label)] for label in labels]
    return torch.tensor(sorted(range(len(names)), key=lambda i: (SORTED.index(names[i]), i)))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, digits: Dataset) -> Path:
    root = tmp_path_factory.mktemp("digits-folder")
    write_digits(root, digits)
    return root


@pytest.fixture()
def small(tmp_path: Path, digits: Dataset) -> Path:
    """A copy-editable folder: 60 train and 30 test digits, every class in both splits."""
    root = tmp_path / "small"
    write_digits(root, digits, per_split=(60, 30))
    return root


def test_a_folder_of_digit_pngs_loads_as_the_digits(folder: Path, digits: Dataset) -> None:
    from torchvision.datasets import ImageFolder

    data = load_dataset("imagefolder", folder, download=False)
    assert data.input_shape == (1, 8, 8) and data.num_classes == 10
    assert data.x_train.dtype == torch.float32 and len(data.y_train) == len(digits.y_train)
    reference = ImageFolder(str(folder / "train"))
    assert reference.classes == SORTED
    assert data.y_train.tolist() == [label for _, label in reference.samples]
    for x, y, x_digits, y_digits in ((data.x_train, data.y_train, digits.x_train, digits.y_train),
                                     (data.x_test, data.y_test, digits.x_test, digits.y_test)):
        order = expected_order(y_digits)
        assert y.tolist() == [SORTED.index(CLASS_NAMES[int(label)]) for label in y_digits[order]]
        assert float((x - x_digits[order]).abs().max()) <= 1 / 255


def test_resize_grayscale_and_jpeg(small: Path) -> None:
    for path in sorted(small.rglob("*.png"))[::7]:  # some colour JPEGs among the grey PNGs
        grey = np.asarray(Image.open(path))
        Image.fromarray(np.stack([grey, grey // 2, 255 - grey], axis=-1)).save(path.with_suffix(".JPG"), quality=95)
        path.unlink()
    with pytest.raises(DataError, match=r"is (grey|colour).* but .* is (grey|colour).*set grayscale = true"):
        load_imagefolder(small, download=False)
    data = load_imagefolder(small, download=False, grayscale=True, resize=(12, 10))
    assert data.input_shape == (1, 12, 10) and len(data.y_train) == 60 and len(data.y_test) == 30
    assert 0.0 <= float(data.x_train.min()) and float(data.x_train.max()) <= 1.0


@pytest.mark.parametrize(("mode", "channels"), [("I;16", 1), ("1", 1), ("LA", 1), ("P", 3), ("RGBA", 3)])
def test_pixel_formats_become_grey_or_colour_bytes(mode: str, channels: int, small: Path) -> None:
    """16-bit grey is scaled (not clipped) to 8 bits, bilevel is 0 or 255, alpha is dropped, a palette is colour."""
    files = sorted(small.rglob("*.png"))
    for path in files:
        grey = np.asarray(Image.open(path))
        image = Image.fromarray(grey.astype(np.uint16) * 257) if mode == "I;16" else Image.fromarray(grey).convert(mode)
        image.save(path)
    assert Image.open(files[0]).mode == mode
    data = load_imagefolder(small, download=False)
    assert data.input_shape == (channels, 8, 8)
    decoded = Image.open(files[0]).convert("L" if channels == 1 else "RGB")
    first = torch.from_numpy(np.asarray(decoded, dtype=np.float32))
    if mode == "I;16":
        first = torch.from_numpy(np.rint(np.asarray(Image.open(files[0]), dtype=np.float32) / 257))
    assert torch.equal(data.x_test[0].permute(1, 2, 0).reshape(first.shape), first / 255)


def test_the_fingerprint_follows_the_pixels_and_the_options(small: Path) -> None:
    plain = load_imagefolder(small, download=False)
    assert load_imagefolder(small, download=False).fingerprint == plain.fingerprint
    assert load_imagefolder(small, download=False, resize=(9, 9)).fingerprint != plain.fingerprint
    path = sorted((small / "test").rglob("*.png"))[0]
    pixels = np.asarray(Image.open(path)).copy()
    pixels[0, 0] ^= 0xFF
    Image.fromarray(pixels).save(path)
    assert load_imagefolder(small, download=False).fingerprint != plain.fingerprint


def test_suite_keys_reach_the_loader_and_only_a_loader_that_takes_them(small: Path) -> None:
    base = {"name": "s", "models": [{"name": "smallcnn"}], "attacks": [{"name": "fgsm", "eps": [0.1]}]}
    spec = parse_suite({**base, "dataset": {"name": "imagefolder", "root": str(small), "resize": [16, 16],
                                            "grayscale": True}}).dataset
    assert spec.load().input_shape == (1, 16, 16)
    for dataset, problem in (({"name": "mnist", "resize": [8, 8]}, "dataset.resize: dataset 'mnist' takes no 'resize'; "
                              "it applies to imagefolder"),
                             ({"name": "imagefolder", "resize": [8]}, "dataset.resize: expected [H, W]"),
                             ({"name": "imagefolder", "grayscale": 1}, "dataset.grayscale: Input should be a valid "
                              "boolean")):
        with pytest.raises(SuiteError, match=r"^<suite>: " + problem.replace("[", r"\[").replace("]", r"\]")):
            parse_suite({**base, "dataset": dataset})


def test_a_run_over_an_image_folder(folder: Path, tmp_path: Path) -> None:
    suite = write_suite(tmp_path, RUN_SUITE.format(cache=tmp_path / "cache", root=folder))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(suite), "--out", str(out), "--store", str(tmp_path / "r.db")])
    assert result.exit_code == 0, result.stderr
    assert "dataset imagefolder: 360 test images of shape (1, 8, 8), 10 classes; attacking 40" in result.stderr
    rows = [row.split(",") for row in (out / "results.csv").read_text().splitlines()[1:]]
    assert [(row[1], row[4]) for row in rows] == [("imagefolder", "fgsm"), ("imagefolder", "worst_case")]


def test_a_run_applies_the_suites_resize(small: Path, tmp_path: Path) -> None:
    text = RUN_SUITE.format(cache=tmp_path / "cache", root=small)
    text = text.replace("n_eval = 40", "n_eval = 20\nresize = [10, 10]")
    result = CliRunner().invoke(main, ["run", str(write_suite(tmp_path, text)), "--out", str(tmp_path / "out"),
                                       "--store", str(tmp_path / "r.db")])
    assert "test images of shape (1, 10, 10)" in result.stderr, result.stderr


def _cut(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:60])


def _replace_with_text(path: Path) -> None:
    path.write_text("not an image")


def _grow(path: Path) -> None:
    Image.new("L", (9, 8)).save(path)


def _colour(path: Path) -> None:
    Image.new("RGB", (8, 8), (10, 200, 30)).save(path)


def _empty_class(path: Path) -> None:
    for file in path.parent.iterdir():
        file.unlink()


def _lone_class(path: Path) -> None:
    (path.parent.parent.parent / "train" / "ten").mkdir()
    shutil.copy(path, path.parent.parent.parent / "train" / "ten" / "a.png")


def _no_test_split(path: Path) -> None:
    shutil.rmtree(path.parent.parent.parent / "test")


BAD: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated": (_cut, r"cannot read {file} as a PNG or JPEG image: image file is truncated"),
    "not an image": (_replace_with_text, r"cannot read {file} as a PNG or JPEG image: cannot identify"),
    "other size": (_grow, r"{file} is 9×8 pixels but .* is 8×8; set resize = \[H, W\]"),
    "other channels": (_colour, r"{file} is colour \(3 channels\) but .* is grey \(1 channel\); set grayscale = true"),
    "empty class": (_empty_class, r"class folder {folder} holds no PNG or JPEG files"),
    "one split only": (_lone_class, r"class 'ten' has a folder in .*train but none in .*test"),
    "no test split": (_no_test_split, r"has no test/ or val/ folder beside train/"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_exit_2(case: str, small: Path, tmp_path: Path) -> None:
    edit, message = BAD[case]
    file = sorted((small / "test").rglob("*.png"))[-1]
    edit(file)
    suite = write_suite(tmp_path, RUN_SUITE.format(cache=tmp_path / "cache", root=small))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["-q", "run", str(suite), "--out", str(out), "--store", str(tmp_path / "r.db")])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    pattern = message.format(file=str(file).replace("\\", "\\\\"), folder=str(file.parent))
    assert len(lines) == 1 and lines[0].startswith("error: dataset 'imagefolder': "), lines
    assert re.search(pattern, lines[0]), lines[0]
    assert not out.exists()
