"""robustinv: how robust is this classifier release, where does it break, did it get worse.

    import robustinv
    result = robustinv.evaluate(model, (x_test, y_test), eps=[0.1, 0.3])     # the model in hand
    result = robustinv.run_suite(robustinv.load_suite(Path("benchmarks/quickstart.toml")))  # a suite
    verdict = robustinv.gate(result, "gate.toml")

The public names load on first use (PEP 562), so the records, the store, the gate and the
reports, which need no torch, import without it.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("robustinv")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"

if TYPE_CHECKING:
    from robustinv.api import evaluate, gate
    from robustinv.attacks import ATTACKS, build_attack
    from robustinv.data import DATASETS, load_dataset
    from robustinv.errors import RobustinvError
    from robustinv.models import MODELS, model_builder
    from robustinv.records import RunResult
    from robustinv.run import run_suite
    from robustinv.suite import Suite, load_suite, parse_suite
    from robustinv.training import DEFENSES, prepare_model, prepare_models, train

# Public name → the module that defines it.
_SOURCES: dict[str, str] = {
    "evaluate": "robustinv.api", "gate": "robustinv.api",
    "ATTACKS": "robustinv.attacks", "build_attack": "robustinv.attacks",
    "DATASETS": "robustinv.data", "load_dataset": "robustinv.data",
    "RobustinvError": "robustinv.errors",
    "MODELS": "robustinv.models", "model_builder": "robustinv.models", "prepare_model": "robustinv.training",
    "prepare_models": "robustinv.training",
    "RunResult": "robustinv.records",
    "run_suite": "robustinv.run",
    "Suite": "robustinv.suite", "load_suite": "robustinv.suite", "parse_suite": "robustinv.suite",
    "DEFENSES": "robustinv.training", "train": "robustinv.training",
}

__all__ = [
    "ATTACKS", "DATASETS", "DEFENSES", "MODELS", "RobustinvError", "RunResult", "Suite", "__version__",
    "build_attack", "evaluate", "gate", "load_dataset", "load_suite", "model_builder", "parse_suite", "prepare_model", "prepare_models", "run_suite",
    "train",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module the first time the name is asked for, and keep the name here."""
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(source), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
