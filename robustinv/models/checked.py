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
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from robustinv.errors import ModelError, RobustinvError
from robustinv.text import first_line


class ModelCallError(ModelError):
    """The model itself raised; `detail` is its exception in one line."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


class CheckedModel(nn.Module):
    """`model` behind an input copy and an output check; its parameters are the model's own."""

    def __init__(self, model: nn.Module, name: str, num_classes: int) -> None:
        super().__init__()
        self.model = model
        self.label = name
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
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
        return out.float()


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
