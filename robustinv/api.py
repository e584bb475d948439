"""The Python API on the model in hand: `evaluate(model, data, ...)` and `gate(result, policy)`.

    import robustinv
    result = robustinv.evaluate(model, (x_test, y_test), eps=[0.1, 0.3], attacks=["fgsm", "pgd"])
    result.to_frame()                                  # the results.csv table
    verdict = robustinv.gate(result, "gate.toml")      # or a dict of rules
    assert verdict.passed, verdict.summary

`evaluate` builds the suite a user would write for this model and data and runs it exactly as
`robustinv run` does: the same cells, keys, sanity checks, worst case and results store. The
data is written once, content-addressed, to the cache as an `npz` dataset (the arrays given are
the test split; `train_data`, or else the test data, is what learning attacks train on); the
model is held in memory (`robustinv.models.held`) and fingerprinted by its class and state, so
it gives the numbers `robustinv run` gives for the same weights loaded from a file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from robustinv.checkpoints import content_key
from robustinv.errors import DataError, RobustinvError
from robustinv.files import atomic_write
from robustinv.models.held import ARCH, hold
from robustinv.paths import cache_dir
from robustinv.records import GateVerdict, RunResult
from robustinv.suite import Suite, dump_suite, parse_suite

log = logging.getLogger(__name__)

Data = Union[tuple[Any, Any], Iterable[Any]]  # (x, y) as tensors or arrays, or a DataLoader of (x, y) batches
AttackEntry = Union[str, Mapping[str, Any]]


def evaluate(
    model: nn.Module, data: Data, *, name: str = "model", eps: float | Sequence[float] | None = None,
    attacks: Sequence[AttackEntry] = ("fgsm", "pgd"), seed: int = 0, out: Path | str | None = None,
    store: Path | str | None = None, train_data: Data | None = None, **suite_keys: Any,
) -> RunResult:
    """Attack `model` on `data` (images in [0, 1], NCHW) and judge it as a suite would.

    `attacks` takes names (with `eps`) or `[[attacks]]` tables as dicts (their own `eps`, or
    `eps`). Other suite keys (`n_explain`, `eval_batch_size`, `guard`, `device`, `threads`,
    `cache_dir`, …) pass through. `out` writes the run folder (report.html and the rest) and keeps
    the run in the results store (`store`, default `reports/robustinv.db`).
    """
    suite = _suite(model, data, name=name, eps=eps, attacks=attacks, seed=seed, train_data=train_data,
                   keys=suite_keys)
    from robustinv.run import run_suite

    if out is None:
        return run_suite(suite, executor="serial")
    from robustinv.report import write_run
    from robustinv.store import DEFAULT_STORE, Store
    from robustinv.store.folder_lock import folder_lock

    out_dir = Path(out)
    with Store(Path(store) if store is not None else DEFAULT_STORE) as opened, \
            folder_lock(out_dir, command="run", suite=suite.name, runs=opened):
        result = run_suite(suite, store=opened, out_dir=out_dir, executor="serial")
        write_run(result, dump_suite(suite), out_dir)
    return result


def gate(run: RunResult | Path | str, policy: Path | str | Mapping[str, Any], *,
         baseline: RunResult | Path | str | None = None, store: Path | str | None = None) -> GateVerdict:
    """The verdict of a policy (a file, or a dict of `rules`) on a run (a `RunResult` or a run folder).

    For a pytest test in a model repository: `assert verdict.passed, verdict.summary`. A run
    folder is checked against the results store (`store`, default `reports/robustinv.db`, when
    it exists) as `robustinv gate` checks it; the verdict says whether its rows were verified.
    """
    from robustinv.gating import Policy, PolicyError, gate_run, load_policy
    from robustinv.tomlfile import format_validation_error

    if isinstance(policy, Mapping):
        from pydantic import ValidationError

        try:
            rules = Policy.model_validate(dict(policy))
        except ValidationError as exc:
            raise PolicyError(format_validation_error("<policy>", exc)) from None
        policy_name = "<policy>"
    else:
        rules, policy_name = load_policy(Path(policy)), str(policy)
    judged = _judged(run, store)
    base = None if baseline is None else _judged(baseline, store)
    return gate_run(rules, judged[0], policy_name=policy_name, baseline=None if base is None else base[0],
                    baseline_name=None if base is None else base[2],
                    provenance=(judged[1],) + (() if base is None else (base[1],)))


def _judged(run: RunResult | Path | str, store: Path | str | None) -> tuple[list[Any], Any, str]:
    """A run's rows, how they were verified, and its name: a result of this process, or a folder checked against the store."""
    from robustinv.gating.provenance import computed_here, verify_rows

    if isinstance(run, RunResult):
        return run.rows, computed_here(run.info.run_id), f"run {run.info.run_id}"
    from robustinv.report import load_run
    from robustinv.store import DEFAULT_STORE, Store

    folder = Path(run)
    stored = load_run(folder)
    store_path = Path(store) if store is not None else DEFAULT_STORE
    subject = f"run {stored.info.run_id}"
    if not store_path.exists():
        return stored.rows, verify_rows(None, store_path, stored.info.run_id, stored.rows, folder, subject=subject), \
            str(folder)
    with Store(store_path) as opened:
        return stored.rows, verify_rows(opened, store_path, stored.info.run_id, stored.rows, folder,
                                        subject=subject), str(folder)


def _suite(model: nn.Module, data: Data, *, name: str, eps: float | Sequence[float] | None,
           attacks: Sequence[AttackEntry], seed: int, train_data: Data | None, keys: Mapping[str, Any]) -> Suite:
    reserved = {"name", "seed", "dataset", "models", "attacks", "executor"} & set(keys)
    if reserved:
        raise RobustinvError(f"evaluate(): {', '.join(sorted(reserved))} are set by evaluate() itself")
    cache = Path(keys["cache_dir"]) if "cache_dir" in keys else cache_dir()
    x, y = _tensors(data, "data")
    x_train, y_train = (x, y) if train_data is None else _tensors(train_data, "train_data")
    if x_train.shape[1:] != x.shape[1:]:
        raise DataError(f"evaluate(): train_data images are {tuple(x_train.shape[1:])}, data images "
                        f"{tuple(x.shape[1:])}")
    dataset = _npz(cache, x_train, y_train, x, y)
    weights = _weights(cache, model)
    entries = [_attack(entry, eps, i) for i, entry in enumerate(attacks)]
    suite = {
        "name": name, "seed": seed, "executor": "serial", **keys,
        "dataset": {"name": "npz", "root": str(dataset)},
        "models": [{"name": name, "arch": ARCH, "arch_kwargs": {"key": weights.stem}, "weights": str(weights)}],
        "attacks": entries,
    }
    return parse_suite(suite)


def _tensors(data: Data, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) as float32 NCHW images and int64 labels, from a pair of tensors/arrays or a DataLoader."""
    if isinstance(data, tuple) and len(data) == 2:
        pairs = [data]
    else:
        try:
            pairs = [tuple(batch)[:2] for batch in data]  # type: ignore[union-attr]
        except TypeError:
            raise DataError(f"evaluate(): {what} must be (x, y) or a DataLoader of (x, y) batches, "
                            f"got {type(data).__name__}") from None
    if not pairs:
        raise DataError(f"evaluate(): {what} holds no images")
    x = torch.cat([torch.as_tensor(np.asarray(b[0]) if not isinstance(b[0], torch.Tensor) else b[0]) for b in pairs])
    y = torch.cat([torch.as_tensor(np.asarray(b[1]) if not isinstance(b[1], torch.Tensor) else b[1]) for b in pairs])
    if x.ndim != 4 or not x.is_floating_point():
        raise DataError(f"evaluate(): {what} images must be float NCHW in [0, 1], got {x.dtype} {tuple(x.shape)}")
    if y.ndim != 1 or y.is_floating_point() or len(y) != len(x):
        raise DataError(f"evaluate(): {what} labels must be {len(x)} integers, got {y.dtype} {tuple(y.shape)}")
    return x.detach().cpu().float().contiguous(), y.detach().cpu().long()


def _npz(cache: Path, x_train: torch.Tensor, y_train: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> Path:
    """The data as an npz dataset in the cache, named by its content (written once)."""
    arrays = {"x": x_train.numpy(), "y": y_train.numpy(), "x_test": x.numpy(), "y_test": y.numpy()}
    key = content_key({name: _digest(array) for name, array in arrays.items()})
    path = cache / "data" / f"evaluate-{key}.npz"
    if not path.is_file():
        atomic_write(path, lambda tmp: _save_npz(tmp, arrays))
    return path


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with path.open("wb") as handle:
        np.savez(handle, x=arrays["x"], y=arrays["y"], x_test=arrays["x_test"], y_test=arrays["y_test"])


def _weights(cache: Path, model: nn.Module) -> Path:
    """The model's weights as safetensors named by its key (class and state), and the model held under that key."""
    key = hold(model)
    path = cache / "models" / f"{key}.safetensors"
    if not path.is_file():
        state = {name: t.detach().cpu().clone().contiguous() for name, t in model.state_dict().items()}
        atomic_write(path, lambda tmp: save_file(state, str(tmp)))
    return path


def _attack(entry: AttackEntry, eps: float | Sequence[float] | None, index: int) -> dict[str, Any]:
    table: dict[str, Any] = {"name": entry} if isinstance(entry, str) else dict(entry)
    if "eps" not in table:
        if eps is None:
            raise RobustinvError(f"evaluate(): attacks[{index}] ({table.get('name')!r}) has no eps; pass eps=")
        table["eps"] = [eps] if isinstance(eps, (int, float)) else list(eps)
    return table


def _digest(array: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(array).tobytes() + str((array.dtype, array.shape)).encode()).hexdigest()
