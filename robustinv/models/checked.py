"""The model as the harness sees it: the user's module behind a forward that cannot corrupt the numbers.

Every evaluation, attack and training step calls the model through `CheckedModel`:

* It hands the model a copy of its input, and refuses a model that edits that copy in place
  (`x.mul_(…)`): on the harness's own tensor such an edit would change the evaluation set every
  later cell reuses, so clean and robust accuracy would both come out wrong, and under a
  gradient attack it silently breaks the gradient (autograd raises on the next backward pass).
* It turns whatever the model raises into a `ModelError` that names the model and the batch
  (a model that fails only on larger batches is the user's problem, not a robustinv crash).
* It checks the output: a tensor of (batch, classes) floating-point logits, cast to float32.

`probe` runs two images through it before anything else, and twice: a model whose outputs
differ between identical forward passes in eval mode (dropout left on, a randomized defense)
gives unrepeatable numbers, which its rows are flagged for.

It also counts what the model was asked to do, so an attack's cost is measured on the model
itself rather than estimated from its nominal budget (A3, Liu et al. 2022, compare attacks by
forward and backward passes): `forward` images (images × calls) and `backward` images (images
whose gradient flowed back through the output, once per backward pass through it). Every caller
is counted alike: robustinv's own attacks, ART's estimator and AutoAttack's reference code.
Read the counts with `passes()` (totals since the wrapper was made) or `counting()` (what one
block of code cost):

    with model.counting() as meter:
        attack.run(model, x, y, eps, seed=0)
    meter.count.forward / len(x), meter.count.backward / len(x)   # passes per input
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from robustinv.errors import ModelError, RobustinvError
from robustinv.text import first_line


class ModelCallError(ModelError):
    """The model itself raised; `detail` is its exception in one line."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class PassCount:
    """Images the model processed: `forward` (images × calls) and `backward` (images whose gradient flowed back)."""

    forward: int = 0
    backward: int = 0

    @property
    def total(self) -> int:
        return self.forward + self.backward

    def __add__(self, other: PassCount) -> PassCount:
        return PassCount(self.forward + other.forward, self.backward + other.backward)

    def __sub__(self, other: PassCount) -> PassCount:
        return PassCount(self.forward - other.forward, self.backward - other.backward)

    def per_input(self, n: int) -> tuple[float, float]:
        """(forward, backward) passes per input over `n` inputs (NaN for none)."""
        return (self.forward / n, self.backward / n) if n else (float("nan"), float("nan"))


class _Tally:
    """The running counts of one `CheckedModel` (plain integers: no lock, so the model still copies and pickles)."""

    def __init__(self) -> None:
        self.forward = 0
        self.backward = 0


class _CountBackward(torch.autograd.Function):
    """Identity on the logits whose backward adds the batch's images to the tally: gradients that really flowed."""

    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, tally: _Tally) -> torch.Tensor:
        ctx.tally, ctx.images = tally, logits.shape[0]
        return logits.clone()  # a fresh tensor, not a view: callers may edit their logits in place

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        ctx.tally.backward += ctx.images
        return grad, None


class PassMeter:
    """What the model processed since the meter started (`count`); frozen when its `counting()` block ends."""

    def __init__(self, model: CheckedModel) -> None:
        self._model = model
        self._start = model.passes()
        self._end: PassCount | None = None

    @property
    def count(self) -> PassCount:
        return (self._end if self._end is not None else self._model.passes()) - self._start

    def stop(self) -> None:
        if self._end is None:
            self._end = self._model.passes()


class CheckedModel(nn.Module):
    """`model` behind an input copy and an output check; its parameters are the model's own.

    It counts its forward and backward images (see the module's docstring): `passes()`, `counting()`.
    """

    def __init__(self, model: nn.Module, name: str, num_classes: int) -> None:
        super().__init__()
        self.model = model
        self.label = name
        self.num_classes = num_classes
        self._tally = _Tally()

    def passes(self) -> PassCount:
        """Forward and backward images since this wrapper was made."""
        return PassCount(self._tally.forward, self._tally.backward)

    @contextmanager
    def counting(self) -> Iterator[PassMeter]:
        """A meter of the passes made inside the block; meters nest, each counting its own block."""
        meter = PassMeter(self)
        try:
            yield meter
        finally:
            meter.stop()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._tally.forward += len(x)
        copy = x.clone()
        version = copy._version  # bumped by every in-place operation on the tensor
        try:
            out = self.model(copy)
        except RobustinvError:
            raise
        except Exception as exc:  # user code may raise anything
            detail = f"{type(exc).__name__}: {first_line(exc)}"
            raise ModelCallError(
                f"model {self.label!r} failed on a batch of {len(x)} images of shape {tuple(x.shape[1:])}: {detail}",
                detail,
            ) from None
        if copy._version != version:
            raise ModelError(f"model {self.label!r} modifies its input tensor in place; robustinv refuses it, since "
                             "that corrupts the evaluation images and the attacks' gradients (copy it first: "
                             "x = x.clone())")
        if not isinstance(out, torch.Tensor):
            raise ModelError(f"model {self.label!r} returned {type(out).__name__}, not a tensor of logits")
        if out.shape != (len(x), self.num_classes):
            raise ModelError(
                f"model {self.label!r} returns {tuple(out.shape)} for {len(x)} images; "
                f"expected ({len(x)}, {self.num_classes}) logits for {self.num_classes} classes"
            )
        if not out.is_floating_point():
            raise ModelError(f"model {self.label!r} returns {out.dtype} logits; logits must be floating point")
        logits = out.float()
        if torch.is_grad_enabled() and logits.requires_grad:
            logits = _CountBackward.apply(logits, self._tally)
        return logits


@dataclass(frozen=True)
class Probe:
    """What two images told about a model before anything else ran."""

    randomized: bool  # two identical forward passes in eval mode gave different outputs


def probe(model: CheckedModel, images: torch.Tensor, *, dataset: str) -> Probe:
    """Fail early, with the shapes, when the model cannot take these images; see whether it is random."""
    model.eval()
    try:
        with torch.no_grad():
            first = model(images)
            second = model(images)
    except ModelCallError as exc:
        shape = tuple(images.shape[1:])
        raise ModelError(f"model {model.label!r} does not accept {dataset} images of shape {shape}: "
                         f"{exc.detail}") from None
    if not torch.isfinite(first).all():
        raise ModelError(f"model {model.label!r} returns NaN or infinite logits on {dataset} images")
    return Probe(randomized=not torch.equal(first, second))
