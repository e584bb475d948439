"""Models: zoo shapes, bring-your-own architectures and weights, TorchScript, caching, safe loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from robustinv import parse_suite, run_suite
from robustinv.checkpoints import load_state_file
from robustinv.data import Dataset
from robustinv.errors import ModelError
from robustinv.models import MODELS
from robustinv.training import ModelSpec, prepare_model

USER_MODULE = '''
from torch import nn

from robustinv import model_builder

@model_builder
def build(hidden=32, classes=10):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, classes))

@model_builder
def mnist_only():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
'''


class Evil:
    """Unpickling this would create a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 12, 20)])
def test_zoo_adapts_to_input_shape(name: str, shape: tuple[int, int, int]) -> None:
    model = MODELS.get(name)(shape, 7)
    assert model(torch.rand(2, *shape)).shape == (2, 7)
    assert model.features(torch.rand(2, *shape)).ndim == 2  # type: ignore[operator]


def test_zoo_rejects_too_small_images() -> None:
    with pytest.raises(ModelError, match="at least 4×4"):
        MODELS.get("lenet5")((1, 3, 3), 10)


def _train_user_model(tmp_path: Path, digits: Dataset) -> nn.Module:
    (tmp_path / "usernet.py").write_text(USER_MODULE)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        loss = nn.functional.cross_entropy(model(digits.x_train), digits.y_train)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def _plain_fgsm_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> tuple[float, float]:
    x = x.clone().requires_grad_(True)
    logits = model(x)
    nn.functional.cross_entropy(logits, y).backward()
    x_adv = (x + eps * x.grad.sign()).clamp(0, 1).detach()  # type: ignore[union-attr]
    clean_ok = logits.argmax(1) == y
    robust_ok = clean_ok & (model(x_adv).argmax(1) == y)
    return float(clean_ok.double().mean()), float(robust_ok.double().mean())


@pytest.mark.parametrize("fmt", ["pt", "safetensors"])
def test_user_model_matches_plain_pytorch(tmp_path: Path, digits: Dataset, fmt: str) -> None:
    model = _train_user_model(tmp_path, digits)
    if fmt == "pt":
        torch.save(model.state_dict(), tmp_path / "weights.pt")
    else:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "weights.safetensors"))
    suite = parse_suite({
        "name": "byo", "seed": 3, "device": "cpu",
        "dataset": {"name": "digits", "n_eval": 200},
        "models": [{"name": "mine", "arch": "usernet:build", "weights": f"weights.{fmt}"}],
        "attacks": [{"name": "fgsm", "eps": [0.05, 0.1]}],
    }, source=tmp_path / "suite.toml")
    result = run_suite(suite, base_dir=tmp_path)
    x, y = digits.eval_subset(200, seed=3)
    for row in result.rows:
        clean, robust = _plain_fgsm_accuracy(model, x, y, row.eps)
        assert row.model_source == "weights"
        assert row.clean_acc == pytest.approx(clean, abs=1e-12)
        assert row.robust_acc == pytest.approx(robust, abs=1e-12)
    assert result.rows[0].robust_acc < result.rows[0].clean_acc


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_torchscript_model(tmp_path: Path, digits: Dataset) -> None:
    model = _train_user_model(tmp_path, digits)
    torch.jit.script(model).save(str(tmp_path / "model.ts"))
    prepared = prepare_model(ModelSpec(name="ts", torchscript=tmp_path / "model.ts"), digits,
                             seed=0, device=torch.device("cpu"), cache_dir=tmp_path)
    assert prepared.source == "torchscript"
    assert torch.allclose(prepared.module(digits.x_test[:5]), model(digits.x_test[:5]))


def test_trained_model_is_cached(tmp_path: Path, digits: Dataset) -> None:
    spec = ModelSpec.model_validate({"name": "smallcnn", "train": {"epochs": 1}})
    args = {"seed": 0, "device": torch.device("cpu"), "cache_dir": tmp_path}
    first = prepare_model(spec, digits, **args)  # type: ignore[arg-type]
    second = prepare_model(spec, digits, **args)  # type: ignore[arg-type]
    assert (first.source, second.source) == ("trained", "cache")
    assert first.fingerprint == second.fingerprint
    assert torch.equal(first.module(digits.x_test[:8]), second.module(digits.x_test[:8]))
    other_seed = prepare_model(spec, digits, **{**args, "seed": 1})  # type: ignore[arg-type]
    assert other_seed.source == "trained" and other_seed.fingerprint != first.fingerprint


def test_training_is_reproducible(tmp_path: Path, digits: Dataset) -> None:
    spec = ModelSpec.model_validate({"name": "smallcnn", "train": {"epochs": 1}})
    first, second = (
        prepare_model(spec, digits, seed=5, device=torch.device("cpu"), cache_dir=tmp_path / name)
        for name in ("a", "b")
    )
    assert (first.source, second.source) == ("trained", "trained")
    for (name, a), b in zip(first.module.state_dict().items(), second.module.state_dict().values()):
        assert torch.equal(a, b), f"{name} differs between two trainings with the same seed"


def test_pickle_that_would_run_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    torch.save({"weight": torch.zeros(1), "payload": Evil(marker)}, tmp_path / "evil.pt")
    with pytest.raises(ModelError, match="arbitrary unpickling"):
        load_state_file(tmp_path / "evil.pt")
    assert not marker.exists()


def test_corrupt_checkpoints_are_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 20)
    (tmp_path / "bad.pt").write_bytes(b"not a zip")
    for name in ("bad.safetensors", "bad.pt"):
        with pytest.raises(ModelError, match="corrupt or truncated"):
            load_state_file(tmp_path / name)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "m", "arch": "usernet:mnist_only"}, r"does not accept digits images of shape \(1, 8, 8\)"),
        ({"name": "m", "arch": "usernet:build", "arch_kwargs": {"classes": 5}}, "expected .* 10 classes"),
        ({"name": "m", "arch": "usernet:nothing"}, "no callable 'nothing'"),
        ({"name": "m", "arch": "nosuchmodule:build"}, "cannot import 'nosuchmodule'"),
        ({"name": "m", "arch": "usernet:build", "weights": "missing.pt"}, "does not exist"),
    ],
)
def test_model_errors(tmp_path: Path, digits: Dataset, spec: dict[str, object], message: str) -> None:
    (tmp_path / "usernet.py").write_text(USER_MODULE)
    model_spec = ModelSpec.model_validate(spec, context={"base_dir": tmp_path})
    with pytest.raises(ModelError, match=message):
        prepare_model(model_spec, digits, seed=0, device=torch.device("cpu"), cache_dir=tmp_path, base_dir=tmp_path)


def test_weights_that_do_not_fit(tmp_path: Path, digits: Dataset) -> None:
    (tmp_path / "usernet.py").write_text(USER_MODULE)
    torch.save({"0.weight": torch.zeros(3, 3)}, tmp_path / "w.pt")
    spec = ModelSpec.model_validate({"name": "m", "arch": "usernet:build", "weights": "w.pt"},
                                    context={"base_dir": tmp_path})
    with pytest.raises(ModelError, match="do not fit the architecture"):
        prepare_model(spec, digits, seed=0, device=torch.device("cpu"), cache_dir=tmp_path, base_dir=tmp_path)


def test_same_module_name_in_two_suite_folders(tmp_path: Path, digits: Dataset) -> None:
    built = []
    for width in (8, 16):
        folder = tmp_path / f"w{width}"
        folder.mkdir()
        (folder / "samename.py").write_text(
            f"from torch import nn\nfrom robustinv import model_builder\n\n@model_builder\ndef build():\n    return nn.Sequential(nn.Flatten(), nn.Linear(64, {width}), nn.ReLU(), nn.Linear({width}, 10))\n"
        )
        spec = ModelSpec.model_validate({"name": "m", "arch": "samename:build", "train": {"epochs": 1}})
        built.append(prepare_model(spec, digits, seed=0, device=torch.device("cpu"), cache_dir=tmp_path, base_dir=folder))
    assert [p.module.model[1].out_features for p in built] == [8, 16]  # type: ignore[index]


@pytest.mark.parametrize("arch", ["torch.nn:Linear", "torchvision.models:resnet18"])
def test_module_classes_and_torchvision_builders_may_be_called(arch: str) -> None:
    from robustinv.models.user import import_builder

    builder = import_builder(arch, None)
    assert builder.code  # the defining module's source is fingerprinted


def test_a_marked_builder_is_called_and_an_unmarked_one_is_refused_before_it_runs(tmp_path: Path) -> None:
    from robustinv.models.user import import_builder

    (tmp_path / "builders.py").write_text(
        "from pathlib import Path\nfrom torch import nn\nfrom robustinv import model_builder\n\n"
        "@model_builder\ndef marked(width=4):\n    return nn.Linear(64, width)\n\n"
        "def unmarked(path):\n    Path(path).touch()\n"
    )
    assert import_builder("builders:marked", tmp_path).build({"width": 3}).out_features == 3
    with pytest.raises(ModelError, match="neither a torch.nn.Module subclass nor a function marked"):
        import_builder("builders:unmarked", tmp_path)
    assert not list(tmp_path.glob("sentinel*"))
