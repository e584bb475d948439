"""Dataset loaders: splits, subsets, IDX and npz formats, validation, the offline MNIST path."""

from __future__ import annotations

import gzip
import io
import os
import struct
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.lib.format as npy
import pytest
import torch

from robustinv.data import Dataset, from_arrays, load_dataset
from robustinv.data.idx import read_idx
from robustinv.data.limits import MAX_VALUES
from robustinv.errors import DataError

from conftest import SHARED_DATA, needs_shared

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as handle:
            handle.write(data)
    else:
        path.write_bytes(data)


def write_mnist_like(folder: Path, n_train: int = 20, n_test: int = 10, gz: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    for split, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{split}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28)))
        write_idx(folder / f"{split}-labels-idx1-ubyte{suffix}", np.arange(n) % 10)


def test_digits_split_is_fixed_and_valid(digits: Dataset) -> None:
    assert digits.input_shape == (1, 8, 8) and digits.num_classes == 10
    assert len(digits.y_train) + len(digits.y_test) == 1797
    assert 0.0 <= float(digits.x_train.min()) and float(digits.x_train.max()) <= 1.0
    assert load_dataset("digits").fingerprint == digits.fingerprint


def test_eval_subset_is_seeded(digits: Dataset) -> None:
    x1, y1 = digits.eval_subset(50, seed=3)
    x2, y2 = digits.eval_subset(50, seed=3)
    x3, _ = digits.eval_subset(50, seed=4)
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and not torch.equal(x1, x3)
    assert len(y1) == 50
    assert len(digits.eval_subset(None, seed=0)[1]) == len(digits.y_test)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_roundtrip(tmp_path: Path, gz: bool) -> None:
    write_mnist_like(tmp_path, gz=gz)
    data = load_dataset("idx", tmp_path)
    assert data.x_train.shape == (20, 1, 28, 28) and data.x_test.shape == (10, 1, 28, 28)
    assert data.y_test.tolist() == list(range(10))


def test_truncated_idx_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, np.zeros((4, 28, 28)))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


def test_mnist_reads_local_files_without_downloading(tmp_path: Path) -> None:
    write_mnist_like(tmp_path / "MNIST" / "raw")
    data = load_dataset("mnist", tmp_path, download=False)
    assert len(data.y_train) == 20
    assert sorted(p.name for p in (tmp_path / "MNIST" / "raw").iterdir())[0].endswith(".gz"), "files must stay"


def test_mnist_missing_says_where_to_put_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="MNIST|mnist"):
        load_dataset("mnist", tmp_path, download=False)


def test_partial_mnist_folder_is_an_error_not_a_download(tmp_path: Path) -> None:
    folder = tmp_path / "MNIST" / "raw"
    write_mnist_like(folder)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="only some"):
        load_dataset("mnist", tmp_path, download=True)
    assert (folder / "train-images-idx3-ubyte.gz").exists()


def test_npz_uint8_nhwc_and_float_nchw(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "u8.npz", x=rng.integers(0, 256, (30, 6, 6, 3), dtype=np.uint8), y=np.arange(30) % 3)
    np.savez(tmp_path / "f.npz", x=rng.random((30, 3, 6, 6), dtype=np.float32), y=np.arange(30) % 3)
    for name in ("u8.npz", "f.npz"):
        data = load_dataset("npz", tmp_path / name)
        assert data.input_shape == (3, 6, 6) and data.num_classes == 3
        assert len(data.y_train) == 24 and len(data.y_test) == 6


@pytest.mark.parametrize(
    ("x", "y", "problem"),
    [
        (np.full((4, 1, 2, 2), 1.5, np.float32), np.zeros(4, np.int64), r"\[0, 1\]"),
        (np.full((4, 1, 2, 2), np.nan, np.float32), np.zeros(4, np.int64), "NaN"),
        (np.zeros((4, 1, 2, 2), np.float32), np.array([0, 1, 2, -1]), "labels"),
        (np.zeros((0, 1, 2, 2), np.float32), np.zeros(0, np.int64), "no images"),
    ],
)
def test_bad_arrays_are_refused(x: np.ndarray, y: np.ndarray, problem: str) -> None:
    with pytest.raises(DataError, match=problem):
        from_arrays("bad", x, y, x, y, num_classes=3)


def test_pickled_npz_is_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "obj.npz", x=np.array([object()], dtype=object), y=np.zeros(1))
    with pytest.raises(DataError, match="plain arrays"):
        load_dataset("npz", tmp_path / "obj.npz")


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_debian_package() -> None:
    data = load_dataset("idx", DEBIAN_FASHION)
    assert data.x_train.shape == (60000, 1, 28, 28) and data.num_classes == 10
    assert load_dataset("fashion-mnist", None, download=False).fingerprint == data.fingerprint


@needs_shared
def test_shared_mnist_loads_offline() -> None:
    data = load_dataset("mnist", SHARED_DATA, download=False)
    assert data.x_train.shape == (60000, 1, 28, 28) and data.x_test.shape == (10000, 1, 28, 28)
    assert data.y_test[:5].tolist() == [7, 2, 1, 0, 4]


# Files that inflate: headers are checked first, and a file is read no further than its header promises -----

BOMB_ZEROS = 64 << 20  # what the bombs below inflate to beyond their 20 images


def idx_bomb(path: Path, shape: tuple[int, ...] = (20, 8, 8), trailing: int = BOMB_ZEROS) -> Path:
    """A gzipped IDX file whose header promises `shape` and whose body inflates `trailing` zero bytes further."""
    with gzip.open(path, "wb", compresslevel=1) as handle:
        handle.write(bytes([0, 0, 0x08, len(shape)]) + b"".join(struct.pack(">I", d) for d in shape))
        handle.write(np.zeros((20, 8, 8), np.uint8).tobytes())
        zeros = bytes(1 << 20)
        for _ in range(trailing // len(zeros)):
            handle.write(zeros)
    return path


def peak_bytes(work: Callable[[], object]) -> int:
    """The most memory Python and NumPy held at once while `work` ran (NumPy reports its arrays to tracemalloc)."""
    tracemalloc.start()
    try:
        work()
    except DataError:
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def test_an_idx_file_larger_than_its_header_is_refused_without_inflating_it(tmp_path: Path) -> None:
    bomb = idx_bomb(tmp_path / "train-images-idx3-ubyte.gz")
    assert bomb.stat().st_size < BOMB_ZEROS // 100, "a real bomb: a small file that inflates a lot"
    with pytest.raises(DataError, match=r"holds more than its header promises \(1280 bytes of \(20, 8, 8\)\)"):
        read_idx(bomb)
    assert peak_bytes(lambda: read_idx(bomb)) < 4 << 20  # it was the whole 64 MB (and 3.6 GB for 1.5 GB)


def test_an_idx_header_promising_too_many_values_is_refused_before_reading(tmp_path: Path) -> None:
    promising = idx_bomb(tmp_path / "x.gz", shape=(23_437_500, 8, 8), trailing=0)  # 1.5 G values
    with pytest.raises(DataError, match=f"reads at most {MAX_VALUES:,} per array"):
        read_idx(promising)
    assert peak_bytes(lambda: read_idx(promising)) < 4 << 20


@pytest.mark.parametrize("gz", [True, False])
def test_idx_reads_what_its_header_promises_in_any_byte_order(tmp_path: Path, gz: bool) -> None:
    values = np.arange(-12, 12, dtype=">i4").reshape(2, 12)
    data = bytes([0, 0, 0x0C, 2]) + struct.pack(">II", 2, 12) + values.tobytes()
    path = tmp_path / ("v.gz" if gz else "v")
    path.write_bytes(gzip.compress(data) if gz else data)
    read = read_idx(path)
    assert read.dtype == np.dtype("int32") and read.dtype.isnative and np.array_equal(read, values)
    path.write_bytes(gzip.compress(data + b"\x00") if gz else data + b"\x00")
    with pytest.raises(DataError, match="holds more than its header promises"):
        read_idx(path)


def npz_with(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def npy_bytes(array: np.ndarray) -> bytes:
    stream = io.BytesIO()
    np.save(stream, array)
    return stream.getvalue()


def promising(shape: tuple[int, ...], body: int) -> bytes:
    """An .npy member whose header promises `shape` of float32 and whose body holds `body` zero bytes."""
    stream = io.BytesIO()
    npy.write_array_header_1_0(stream, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return stream.getvalue() + bytes(body)


def test_an_npz_member_promising_too_many_values_is_refused_before_reading(tmp_path: Path) -> None:
    path = npz_with(tmp_path / "d.npz", {"x.npy": promising((10**9, 1, 8, 8), 1 << 20),
                                         "y.npy": npy_bytes(np.arange(40) % 10)})
    with pytest.raises(DataError, match=r"'x' of shape \(1000000000, 1, 8, 8\), 64,000,000,000 values"):
        load_dataset("npz", path)  # it was a MemoryError: an internal error


def test_an_npz_reads_only_its_arrays_and_no_further_than_their_headers(tmp_path: Path) -> None:
    x = np.random.default_rng(0).random((40, 1, 8, 8), dtype=np.float32)
    path = npz_with(tmp_path / "d.npz", {"x.npy": npy_bytes(x) + bytes(BOMB_ZEROS),
                                         "y.npy": npy_bytes(np.arange(40) % 10),
                                         "junk.npy": promising((BOMB_ZEROS // 4,), BOMB_ZEROS)})
    assert path.stat().st_size < BOMB_ZEROS // 200
    data = load_dataset("npz", path)
    assert len(data.y_train) + len(data.y_test) == 40
    assert peak_bytes(lambda: load_dataset("npz", path)) < 16 << 20  # it read the 64 MB junk member whole


def test_labels_of_one_class_are_refused_before_training() -> None:
    x = np.zeros((4, 1, 2, 2), np.float32)
    with pytest.raises(DataError, match="a classifier needs at least 2"):
        from_arrays("one", x, np.zeros(4, np.int64), x, np.zeros(4, np.int64))  # ART refused it after training


@pytest.mark.parametrize("make", ["fifo", "folder", "device"])
def test_an_npz_root_that_is_no_regular_file_is_named(tmp_path: Path, make: str) -> None:
    path = tmp_path / "d.npz"
    {"fifo": lambda: os.mkfifo(path), "folder": path.mkdir, "device": lambda: path.symlink_to("/dev/zero")}[make]()
    expected = {"fifo": "is a FIFO", "folder": "is a folder", "device": "character device"}[make]
    with pytest.raises(DataError, match=expected):
        load_dataset("npz", path)


def _cifar_folder(root: Path, batch: object) -> Path:
    import pickle

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"):
        with (folder / name).open("wb") as handle:
            pickle.dump(batch, handle, protocol=2)
    return root


def test_cifar10_batches_are_read_without_unpickling_code(tmp_path: Path) -> None:
    import numpy as np

    images = np.arange(4 * 3072, dtype=np.int64).astype(np.uint8).reshape(4, 3072)
    root = _cifar_folder(tmp_path / "ok", {b"data": images, b"labels": [0, 1, 2, 9], b"batch_label": b"x"})
    data = load_dataset("cifar10", root, download=False)
    assert data.x_train.shape == (20, 3, 32, 32) and data.y_test.tolist() == [0, 1, 2, 9]
    assert float(data.x_test[0, 0, 0, 1]) == pytest.approx(1 / 255)  # red channel, second pixel


def test_a_cifar10_batch_that_would_run_code_is_refused(tmp_path: Path) -> None:
    import os

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return os.system, (f"touch {tmp_path / 'ran'}",)

    root = _cifar_folder(tmp_path / "evil", {b"data": Payload(), b"labels": [0]})
    with pytest.raises(DataError, match="refuses to load posix.system|refuses to load os.system"):
        load_dataset("cifar10", root, download=False)
    assert not (tmp_path / "ran").exists()
