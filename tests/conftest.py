"""Shared fixtures: an isolated cache, the digits data, a small trained model."""

from __future__ import annotations

import os
from pathlib import Path

# One torch thread in this process and in the commands it starts: the tests' tensors are tiny, and
# two threads per process on two shared cores (or beside a second pytest-xdist worker) spend their
# time waiting for each other, up to ten times slower. Suite cells set their own `threads` anyway.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from robustinv.data import Dataset, load_dataset
from robustinv.models.zoo import smallcnn
from robustinv.training import TrainRecipe, train

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"

torch.set_num_threads(1)

needs_shared = pytest.mark.skipif(
    not (SHARED_DATA / "MNIST" / "raw").is_dir(), reason="../shared/data/MNIST is not beside this checkout"
)


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test writes trained models to a throw-away cache unless CI provides one, and runs to a throw-away store."""
    cache = Path(os.environ.get("ROBUSTINV_TEST_CACHE") or tmp_path_factory.mktemp("cache"))
    os.environ["ROBUSTINV_CACHE"] = str(cache)
    os.environ["ROBUSTINV_STORE"] = str(tmp_path_factory.mktemp("store") / "robustinv.db")
    return cache


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return load_dataset("digits")


@pytest.fixture(scope="session")
def digits_model(digits: Dataset) -> torch.nn.Module:
    """smallcnn trained for a few epochs on digits: accurate enough to attack meaningfully."""
    model = smallcnn(digits.input_shape, digits.num_classes)
    train(model, digits.x_train, digits.y_train, TrainRecipe(epochs=8, batch_size=64, lr=2e-3), seed=0)
    return model.eval()


def write_suite(folder: Path, text: str, name: str = "suite.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


TINY_SUITE = """
name = "tiny"
seed = 1

[dataset]
name = "digits"
n_eval = 60

[[models]]
name = "smallcnn"

[models.train]
epochs = 2
batch_size = 64

[[attacks]]
name = "fgsm"
eps = [0.1, 0.3]

[[attacks]]
name = "pgd"
eps = [0.1, 0.3]
steps = 5
step_size = 0.05
"""

