"""Runs Croce & Hein's reference AutoAttack code (the `pyautoattack` package) and keeps what it said.

Every attack of the AutoAttack family (`autoattack`, `apgd`, `square`, `fab`) goes through
`AutoAttack.run_standard_evaluation`, the reference entry point: the same seeding, batching,
attack order and built-in checks as a direct call, so a robustinv row equals the number the
reference code prints. Components run as AutoAttack's `custom` version with their own settings.

AutoAttack reports its checks (randomized or dynamic defenses, probability outputs, zero
gradients, Square beating the white-box attacks) and its per-attack robust accuracy only
through its logger. `run_reference` captures those records and returns them as diagnostics:
`checks` (which check spoke, and its message) and `log` (robust accuracy after each member).
Whether a check means something is wrong is decided later, with calibration, in
`robustinv.judge.sanity`.
"""

from __future__ import annotations

import logging
import re
from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import torch
from pydantic import Field
from pyautoattack import AutoAttack
from pyautoattack import checks as aa_checks
from torch import nn

from robustinv.attacks.base import Attack, AttackConfig, Candidates, Norm
from robustinv.errors import ModelError
from robustinv.runtime import model_device

PACKAGE = "pyautoattack"
LOGGER = "auto-attack"  # the reference code's logger
AA_NORMS: dict[Norm, str] = {Norm.linf: "Linf", Norm.l2: "L2"}
_AFTER = re.compile(r"robust accuracy after (\S+): ([0-9.]+)%")
_INITIAL = re.compile(r"initial accuracy: ([0-9.]+)%")


def package_version() -> str:
    try:
        return version(PACKAGE)
    except PackageNotFoundError:  # pragma: no cover - the package is a dependency
        return "unknown"


@dataclass
class Diagnostics:
    """What the reference code said during one evaluation."""

    checks: list[dict[str, str]] = field(default_factory=list)  # {"check": function name, "message": text}
    log: dict[str, float] = field(default_factory=dict)  # "clean", then each member: robust accuracy after it

    def as_dict(self) -> dict[str, Any]:
        return {"checks": self.checks, "log": self.log}


class _Capture(logging.Handler):
    def __init__(self, into: Diagnostics) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            self.into.checks.append({"check": record.funcName, "message": message})
        elif match := _AFTER.match(message):
            self.into.log[match.group(1).lower()] = float(match.group(2)) / 100
        elif match := _INITIAL.match(message):
            self.into.log["clean"] = float(match.group(1)) / 100


@contextmanager
def _captured(logger: logging.Logger) -> Iterator[Diagnostics]:
    """Collect the reference code's records instead of letting its debug chatter reach the user's handlers."""
    diagnostics = Diagnostics()
    handler = _Capture(diagnostics)
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield diagnostics
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def reference_adversary(
    model: nn.Module, *, eps: float, norm: Norm, seed: int, version: str = "standard",
    attacks: list[str] | None = None,
) -> AutoAttack:
    """The reference `AutoAttack` object exactly as a user of the package would build it (quietly)."""
    with _captured(logging.getLogger(LOGGER)):
        return AutoAttack(model, norm=AA_NORMS[norm], eps=eps, seed=seed, version=version, attacks=attacks,
                          device=model_device(model))


def run_reference(
    adversary: AutoAttack, x: torch.Tensor, y: torch.Tensor, *, batch_size: int,
) -> tuple[torch.Tensor, Diagnostics]:
    """`adversary.run_standard_evaluation` on `x`, `y` (CPU in, CPU out), with its log captured."""
    # The dynamic-defense check counts calls in a module-level table it never resets: one
    # dynamic model would make every later model in the process look dynamic too.
    for name in aa_checks.funcs:
        aa_checks.funcs[name] = 0
    device = model_device(adversary.model)
    with _captured(adversary.logger) as diagnostics:
        x_adv, _ = adversary.run_standard_evaluation(x.to(device), y.to(device), batch_size=batch_size)
    return x_adv.detach().cpu(), diagnostics


class ReferenceConfig(AttackConfig):
    """Keys shared by the AutoAttack family; rows also record the package and its version."""

    batch_size: int = Field(250, ge=1)  # AutoAttack's own default

    def row_config(self, eps: float, seed: int) -> dict[str, object]:
        return {**super().row_config(eps, seed), "package": PACKAGE, "package_version": package_version()}


class ReferenceAttack(Attack):
    """An attack run by the reference AutoAttack code; subclasses build the adversary."""

    config: ReferenceConfig

    def generate(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, seed: int) -> Candidates:
        adversary = self.adversary(model, eps, seed=seed, num_classes=_num_classes(model, x))
        x_adv, diagnostics = run_reference(adversary, x, y, batch_size=self.config.batch_size)
        share = zero_gradient_share(model, x, y, batch_size=self.config.batch_size)
        return Candidates(x_adv[None], diagnostics={**diagnostics.as_dict(), "zero_gradient_share": share})

    @abstractmethod
    def adversary(self, model: nn.Module, eps: float, *, seed: int, num_classes: int) -> AutoAttack:
        """The configured reference `AutoAttack` object at this ε."""

    def classes_needed(self) -> int:
        """The fewest classes the reference code's losses work with (its DLR losses index the 3rd and 4th logits)."""
        return 2

    def validate(self, model: nn.Module, input_shape: tuple[int, int, int], *, model_name: str) -> None:
        classes = getattr(model, "num_classes", None)
        if isinstance(classes, int) and classes < self.classes_needed():
            raise ModelError(f"model {model_name!r} has {classes} classes; {self.config.display_name} needs at "
                             f"least {self.classes_needed()} (the reference code's DLR loss ranks that many logits)")


def zero_gradient_share(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int) -> float:
    """Fraction of inputs whose gradient of the logit margin (true class minus best other) is exactly zero.

    AutoAttack's own check looks at the cross-entropy gradient, which a confident honest model
    saturates to zero on some inputs; the margin's gradient vanishes only where the model is
    locally constant — shattered gradients, as behind input quantization.
    """
    device = model_device(model)
    zero = 0
    for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
        xb = xb.to(device).requires_grad_(True)
        logits = model(xb).float()
        true = logits.gather(1, yb.to(device)[:, None]).squeeze(1)
        other = logits.scatter(1, yb.to(device)[:, None], float("-inf")).amax(1)
        (grad,) = torch.autograd.grad((true - other).sum(), xb)
        zero += int((grad.flatten(1).abs().sum(1) == 0).sum())
    return zero / len(x) if len(x) else 0.0


def _num_classes(model: nn.Module, x: torch.Tensor) -> int:
    with torch.no_grad():
        return int(model(x[:1].to(model_device(model))).shape[1])


def target_classes(requested: int, num_classes: int) -> int:
    """Targeted members try the `requested` most likely wrong classes; a model has only num_classes − 1."""
    return max(1, min(requested, num_classes - 1))
