"""Hostile and broken input, one table: every case exits 2 with one line naming the problem.

No case may print a traceback or leave an output folder behind. Ctrl-C exits 130, a full disk
is simulated by a write that fails with ENOSPC, and a pickle that would run code is refused
before it can.
"""

from __future__ import annotations

import errno
import gzip
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from cli import main
from robustinv.attacks.fgsm import Fgsm
from robustinv.checkpoints import load_state_file
from robustinv.errors import ModelError

from conftest import TINY_SUITE

Setup = Callable[[Path], str]  # writes what the case needs into a folder, returns the suite text

USER_MODELS = '''
import torch
from torch import nn

from robustinv import model_builder


class NaNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(64, 10)

    def forward(self, x):
        return self.linear(x.flatten(1)) * float("nan")


@model_builder
def nan_model():
    return NaNNet()


@model_builder
def seven_classes():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 7))


@model_builder
def rgb_only():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(10))


@model_builder
def plain():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
'''


def suite(edit: Callable[[str], str] = lambda t: t) -> Setup:
    return lambda folder: edit(TINY_SUITE)


def with_model(spec: str) -> Setup:
    def setup(folder: Path) -> str:
        (folder / "usermodels.py").write_text(USER_MODELS)
        text = TINY_SUITE.replace('name = "smallcnn"', f'name = "m"\n{spec}')
        return text.replace("[models.train]\nepochs = 2\nbatch_size = 64\n", "") if "weights" in spec else text
    return setup


def with_npz(make: Callable[[np.random.Generator], dict[str, np.ndarray]] | None, *, raw: bytes | None = None) -> Setup:
    def setup(folder: Path) -> str:
        path = folder / "data.npz"
        if raw is not None:
            path.write_bytes(raw)
        else:
            assert make is not None
            np.savez(path, **make(np.random.default_rng(0)))
        return TINY_SUITE.replace('name = "digits"\nn_eval = 60', 'name = "npz"\nroot = "data.npz"')
    return setup


def truncated_npz() -> Setup:
    def setup(folder: Path) -> str:
        full = folder / "full.npz"
        np.savez(full, x=np.random.default_rng(0).random((40, 1, 8, 8), dtype=np.float32), y=np.arange(40) % 10)
        data = full.read_bytes()
        return with_npz(None, raw=data[: len(data) // 2])(folder)
    return setup


def truncated_idx(folder: Path) -> str:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (20, 8, 8), dtype=np.uint8)
    labels = (np.arange(20) % 10).astype(np.uint8)
    for split in ("train", "t10k"):
        image_bytes = bytes([0, 0, 8, 3, 0, 0, 0, 20, 0, 0, 0, 8, 0, 0, 0, 8]) + images.tobytes()
        if split == "t10k":
            image_bytes = image_bytes[:100]  # cut inside the pixel data
        (folder / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(image_bytes))
        (folder / f"{split}-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 20]) + labels.tobytes()))
    return TINY_SUITE.replace('name = "digits"\nn_eval = 60', f'name = "idx"\nroot = "{folder.as_posix()}"')


def images(x: np.ndarray) -> Callable[[np.random.Generator], dict[str, np.ndarray]]:
    return lambda rng: {"x": x, "y": np.arange(len(x)) % 10}


def with_weights(write: Callable[[Path], None], name: str) -> Setup:
    def setup(folder: Path) -> str:
        (folder / "usermodels.py").write_text(USER_MODELS)
        write(folder / name)
        return with_model(f'arch = "usermodels:plain"\nweights = "{name}"')(folder)
    return setup


def nan_model(folder: Path) -> str:
    save_file({"linear.weight": torch.zeros(10, 64), "linear.bias": torch.zeros(10)}, str(folder / "w.safetensors"))
    return with_model('arch = "usermodels:nan_model"\nweights = "w.safetensors"')(folder)


def truncated_pt(path: Path) -> None:
    torch.save({"1.weight": torch.zeros(10, 64), "1.bias": torch.zeros(10)}, path)
    path.write_bytes(path.read_bytes()[:300])


GOOD_IMAGES = np.random.default_rng(0).random((40, 1, 8, 8), dtype=np.float32)

CASES: dict[str, tuple[Setup, str]] = {
    "malformed TOML": (suite(lambda t: t.replace("[[attacks]]", "[[attacks", 1)), "malformed TOML"),
    "truncated TOML": (suite(lambda t: t[: t.index("steps = 5") + 6]), "malformed TOML"),
    "wrong type": (suite(lambda t: t.replace("seed = 1", 'seed = "one"')), "seed: Input should be a valid integer"),
    "unknown key": (suite(lambda t: t.replace("epochs = 2", "epoch = 2")), "did you mean 'epochs'?"),
    "eps zero": (suite(lambda t: t.replace("eps = [0.1, 0.3]", "eps = [0.0]", 1)), "every ε must be > 0"),
    "eps above one": (suite(lambda t: t.replace("eps = [0.1, 0.3]", "eps = [1.5]", 1)), "Linf ε above 1"),
    "k below one": (suite(lambda t: t + '[[attacks]]\nname = "inversion"\neps = 0.3\nsamples_per_input = 0\n'),
                    "samples_per_input"),
    "restarts below one": (suite(lambda t: t.replace("steps = 5", "steps = 5\nrestarts = 0")), "restarts"),
    "empty dataset": (with_npz(images(np.zeros((0, 1, 8, 8), np.float32))), "no images"),
    "truncated npz": (truncated_npz(), "cannot read"),
    "truncated IDX": (truncated_idx, "truncated"),
    "labels out of range": (with_npz(lambda rng: {"x": GOOD_IMAGES, "y": np.arange(40) % 10 - 1}), "labels must lie in"),
    "images above one": (with_npz(images(GOOD_IMAGES + 1)), "must lie in [0, 1]"),
    "NaN images": (with_npz(images(np.where(GOOD_IMAGES > 0.5, np.nan, GOOD_IMAGES).astype(np.float32))),
                   "NaN or infinite"),
    "model returns NaN": (nan_model, "NaN"),
    "wrong number of classes": (with_model('arch = "usermodels:seven_classes"'), "expected (2, 10) logits"),
    "channel mismatch": (with_model('arch = "usermodels:rgb_only"'), "does not accept"),
    "corrupt checkpoint": (with_weights(lambda p: p.write_bytes(b"\x00garbage" * 10), "w.safetensors"),
                           "corrupt or truncated"),
    "truncated checkpoint": (with_weights(truncated_pt, "w.pt"), "corrupt or truncated"),
}


def invoke(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stdout, result.stderr


def assert_one_clear_line(code: int, stdout: str, stderr: str, message: str, out: Path, expected_code: int = 2) -> None:
    assert code == expected_code, stderr
    assert message in stderr, stderr
    assert "Traceback" not in stdout + stderr
    assert len([line for line in stderr.splitlines() if line.startswith(("error:", "interrupted"))]) == 1
    # Only the results store's committed cells (what a rerun resumes from) may be left behind.
    left = {p.name for p in out.iterdir()} if out.exists() else set()
    assert left <= {"cells"}, f"half-written outputs left behind: {sorted(left)}"


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_one_line(tmp_path: Path, case: str) -> None:
    setup, message = CASES[case]
    text = setup(tmp_path)
    (tmp_path / "suite.toml").write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    code, stdout, stderr = invoke(["run", str(tmp_path / "suite.toml"), "--out", str(out)])
    assert_one_clear_line(code, stdout, stderr, message, out)


def test_unwritable_output_folder(tmp_path: Path) -> None:
    (tmp_path / "suite.toml").write_text(TINY_SUITE, encoding="utf-8")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "out"  # a folder cannot be made inside a file, even by root
    code, stdout, stderr = invoke(["run", str(tmp_path / "suite.toml"), "--out", str(out)])
    assert code == 2 and "cannot write results" in stderr and "Traceback" not in stdout + stderr


def test_full_disk_leaves_no_output_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pd.DataFrame, "to_csv", no_space)
    (tmp_path / "suite.toml").write_text(TINY_SUITE, encoding="utf-8")
    out = tmp_path / "out"
    code, stdout, stderr = invoke(["run", str(tmp_path / "suite.toml"), "--out", str(out)])
    assert_one_clear_line(code, stdout, stderr, "No space left on device", out)


def test_ctrl_c_during_a_run_exits_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Fgsm, "generate", interrupt)
    (tmp_path / "suite.toml").write_text(TINY_SUITE, encoding="utf-8")
    out = tmp_path / "out"
    code, stdout, stderr = invoke(["run", str(tmp_path / "suite.toml"), "--out", str(out)])
    assert_one_clear_line(code, stdout, stderr, "interrupted", out, expected_code=130)


class _CreatesFile:
    """Unpickling this object would create a file: what a malicious checkpoint does."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (Path.write_text, (Path(self.target), "pwned"))  # type: ignore[return-value]


def test_a_pickle_that_would_run_code_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "created-by-unpickling"
    evil = tmp_path / "model.pt"
    with evil.open("wb") as handle:
        pickle.dump({"weight": _CreatesFile(str(target))}, handle)
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(_CreatesFile(str(proof))))
    assert proof.read_text() == "pwned", "the payload is real: plain unpickling creates a file"
    with pytest.raises(ModelError, match="refusing to load .* arbitrary unpickling.*Re-save it"):
        load_state_file(evil)  # a raw pickle; tests/test_models.py covers torch.save's zip format
    assert not target.exists()
    # The same through the CLI: one line, exit 2, no file.
    suite_text = with_model('arch = "usermodels:plain"\nweights = "model.pt"')(tmp_path)
    (tmp_path / "suite.toml").write_text(suite_text, encoding="utf-8")
    out = tmp_path / "out"
    code, stdout, stderr = invoke(["run", str(tmp_path / "suite.toml"), "--out", str(out)])
    assert_one_clear_line(code, stdout, stderr, "refusing to load", out)
    assert not target.exists()
