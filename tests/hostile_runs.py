"""Setups of the hostile-input table for runs that must be refused or fail cleanly: user models that raise,
exit or kill their worker under every executor, absurd resource values, files that are no files, damaged
stores and manifests, data files that inflate far beyond their size, strings where numbers belong.

Each returns a `Setup` of `tests/test_hostile_input.py`: it writes what the case needs into a fresh folder
and returns the command line.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import sqlite3
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.lib.format as npy

from conftest import TINY_SUITE

Setup = Callable[[Path, Callable[[], Path]], list[str]]

WORKER_MODELS = '''
import os
import signal
import sys

from torch import nn

from robustinv import model_builder


class Escape(BaseException):
    """Not an Exception: what a model might raise to leave a loop."""


class Unpicklable(Exception):
    """Pickles, but cannot be unpickled (its __init__ takes two arguments, its args hold one)."""

    def __init__(self, a, b):
        super().__init__(f"{a} and {b}")


class Misbehaves(nn.Module):
    """Fine on the driver's two-image probe; on a real batch it does what `how` says."""

    how = "raise"

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(64, 10)

    def forward(self, x):
        if len(x) > 8:
            if self.how == "exit":
                sys.exit(3)
            if self.how == "os_exit":
                os._exit(3)
            if self.how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if self.how == "escape":
                raise Escape("leaving")
            raise RuntimeError("CUDA out of memory (simulated)")
        return self.linear(x.flatten(1))


class Exits(Misbehaves):
    how = "exit"


class OsExits(Misbehaves):
    how = "os_exit"


class KillsItself(Misbehaves):
    how = "kill"


class Escapes(Misbehaves):
    how = "escape"


class TrainRaises(Misbehaves):
    """Its train() override raises an exception that cannot be unpickled: outside the checked forward pass."""

    def train(self, mode=True):
        if mode:
            raise Unpicklable("train", "mode")
        return super().train(mode)


class ExitsOnProbe(nn.Module):
    def forward(self, x):
        sys.exit(3)


@model_builder
def exits_when_built():
    sys.exit(4)
'''

EXITS_ON_IMPORT = "import sys\nsys.exit(5)\n"


def _run_args(folder: Path, text: str, *extra: str) -> list[str]:
    (folder / "workermodels.py").write_text(WORKER_MODELS, encoding="utf-8")
    (folder / "exits_on_import.py").write_text(EXITS_ON_IMPORT, encoding="utf-8")
    (folder / "suite.toml").write_text(text, encoding="utf-8")
    return ["run", str(folder / "suite.toml"), "--out", str(folder / "out"), *extra]


def suite_run(edit: Callable[[str], str], *extra: str) -> Setup:
    """`run` of an edited tiny suite, with more arguments (`--executor process`, `--workers 1`)."""
    return lambda folder, finished: _run_args(folder, edit(TINY_SUITE), *extra)


def model_run(arch: str, *extra: str) -> Setup:
    """`run` of the tiny suite with model `m` built by `arch` of the user's module."""
    return suite_run(lambda t: t.replace('name = "smallcnn"', f'name = "m"\narch = "{arch}"'), *extra)


PROCESS = ("--executor", "process", "--workers", "1")


def weights_at(make: Callable[[Path], Path], key: str = "weights") -> Setup:
    """`run` with a model whose weights (or TorchScript) file is what `make` leaves at the returned path."""
    def setup(folder: Path, finished: Callable[[], Path]) -> list[str]:
        path = make(folder)
        if key == "weights":
            model = f'name = "m"\narch = "smallcnn"\nweights = "{path}"'
        else:
            model = f'name = "m"\ntorchscript = "{path}"'
        return _run_args(folder, without_training(TINY_SUITE.replace('name = "smallcnn"', model)))
    return setup


def without_training(text: str) -> str:
    return text.replace("[models.train]\nepochs = 2\nbatch_size = 64\n", "")


def fifo(folder: Path, name: str = "w.safetensors") -> Path:
    os.mkfifo(folder / name)
    return folder / name


def fifo_script(folder: Path) -> Path:
    return fifo(folder, "m.ts")


def symlink_loop(folder: Path) -> Path:
    (folder / "a.pt").symlink_to(folder / "b.pt")
    (folder / "b.pt").symlink_to(folder / "a.pt")
    return folder / "a.pt"


def device(folder: Path) -> Path:
    (folder / "w.pt").symlink_to("/dev/zero")
    return folder / "w.pt"


def a_folder(folder: Path) -> Path:
    (folder / "w.safetensors").mkdir()
    return folder / "w.safetensors"


def under_a_loop(folder: Path, finished: Callable[[], Path]) -> list[str]:
    """Weights named by a relative path through a symlink to itself: resolving it never ends."""
    (folder / "loop").symlink_to("loop")
    model = 'name = "m"\narch = "smallcnn"\nweights = "loop/w.pt"'
    return _run_args(folder, without_training(TINY_SUITE.replace('name = "smallcnn"', model)))


def cache_is_a_file(folder: Path, finished: Callable[[], Path]) -> list[str]:
    (folder / "cache").write_text("not a folder")
    return _run_args(folder, 'cache_dir = "cache"\n' + TINY_SUITE)


def damaged_store(folder: Path, finished: Callable[[], Path]) -> list[str]:
    """A results store whose header keeps robustinv's mark but says schema -1 (as a flipped byte would)."""
    store = folder / "damaged.db"
    with sqlite3.connect(store) as db:
        db.execute("CREATE TABLE runs (run_id TEXT)")
        db.execute(f"PRAGMA application_id = {0x52424956}")
        db.execute("PRAGMA user_version = -1")
    db.close()
    return [*_run_args(folder, TINY_SUITE), "--store", str(store)]


INVERSION = '\n[[attacks]]\nname = "inversion"\neps = [0.3]\nsamples_per_input = 2\n\n[attacks.train]\nsteps = 5\n'


def generate_into(manifest: str) -> Setup:
    """`generate` into a folder whose manifest.json holds `manifest`."""
    def setup(folder: Path, finished: Callable[[], Path]) -> list[str]:
        samples = folder / "samples"
        samples.mkdir()
        (samples / "manifest.json").write_text(manifest, encoding="utf-8")
        args = _run_args(folder, TINY_SUITE + INVERSION)
        return ["generate", args[1], "--model", "smallcnn", "--n", "4", "--out", str(samples)]
    return setup


def _idx_header(shape: tuple[int, ...]) -> bytes:
    return bytes([0, 0, 0x08, len(shape)]) + b"".join(struct.pack(">I", d) for d in shape)


def idx_folder(images_header: tuple[int, ...], trailing: int) -> Setup:
    """An `idx` folder whose training images have this header and `trailing` zero bytes beyond 20 images."""
    def setup(folder: Path, finished: Callable[[], Path]) -> list[str]:
        data = folder / "idx"
        data.mkdir()
        rng = np.random.default_rng(0)
        for split in ("train", "t10k"):
            header = images_header if split == "train" else (20, 8, 8)
            with gzip.open(data / f"{split}-images-idx3-ubyte.gz", "wb", compresslevel=1) as handle:
                handle.write(_idx_header(header) + rng.integers(0, 255, (20, 8, 8), dtype=np.uint8).tobytes())
                zeros = bytes(1 << 20)
                for _ in range(trailing // len(zeros) if split == "train" else 0):
                    handle.write(zeros)
            with gzip.open(data / f"{split}-labels-idx1-ubyte.gz", "wb") as handle:
                handle.write(_idx_header((20,)) + (np.arange(20) % 10).astype(np.uint8).tobytes())
        text = TINY_SUITE.replace('name = "digits"\nn_eval = 60', f'name = "idx"\nroot = "{data.as_posix()}"')
        return _run_args(folder, text)
    return setup


def npz_promising(shape: tuple[int, ...]) -> Setup:
    """An npz whose `x` member's header promises `shape` (far more than the member holds)."""
    def setup(folder: Path, finished: Callable[[], Path]) -> list[str]:
        header = io.BytesIO()
        npy.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
        labels = io.BytesIO()
        npy.write_array(labels, np.arange(40) % 10)
        with zipfile.ZipFile(folder / "data.npz", "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("x.npy", header.getvalue() + bytes(1 << 16))
            archive.writestr("y.npy", labels.getvalue())
        text = TINY_SUITE.replace('name = "digits"\nn_eval = 60', 'name = "npz"\nroot = "data.npz"')
        return _run_args(folder, text)
    return setup


def one_class(folder: Path, finished: Callable[[], Path]) -> list[str]:
    rng = np.random.default_rng(0)
    np.savez(folder / "data.npz", x=rng.random((40, 1, 8, 8), dtype=np.float32), y=np.zeros(40, dtype=np.int64))
    return _run_args(folder, TINY_SUITE.replace('name = "digits"\nn_eval = 60', 'name = "npz"\nroot = "data.npz"'))


def manifest_of_another_kind() -> str:
    return json.dumps(["not", "a", "manifest"])
