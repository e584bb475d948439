"""The one projected-gradient template: signed-gradient steps on the input, projected onto the Linf ball and [0, 1].

Adversarial training's inner maximization (`robustinv.training.inner`) and the generator's
refinement (`robustinv.inversion.refine`) are both this loop with their own objective and start
(Foolbox's `gradient_descent_base` idea: one loop, small hooks). It descends a scalar objective
of the logits, so an attack that maximizes a loss passes its negative. Samples that `done`
reports finished stop moving (and stop costing gradients); the rest go on.

`frozen` is the one way the harness takes input gradients of a model it must not change:
parameters without gradients and eval mode inside the block, both restored afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

# objective(logits, index) -> scalar to descend; `index` says which samples of the batch the logits belong to.
Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Finished = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (detached logits, index) -> bool per sample


@contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """No parameter gradients (input gradients only) and eval mode inside the block; both as they were after."""
    flags = [p.requires_grad for p in model.parameters()]
    training = model.training
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)
        model.train(training)


def project(x: torch.Tensor, delta: torch.Tensor, eps: float) -> torch.Tensor:
    """The perturbation `delta` of `x` moved into the Linf ε-ball with x + delta inside [0, 1]."""
    return (x + delta.clamp(-eps, eps)).clamp(0, 1) - x


@torch.enable_grad()
def signed_steps(model: nn.Module, x: torch.Tensor, start: torch.Tensor, objective: Objective, *, eps: float,
                 steps: int, step_size: float, done: Finished | None = None) -> torch.Tensor:
    """`steps` signed-gradient descent steps on `objective` from x + `start` (a perturbation); returns x + δ.

    The model is frozen for the duration. With `done`, a sample it reports finished (before the
    step, on the logits the step was computed from) keeps its current point and leaves the loop.
    """
    delta = ((x + start).clamp(0, 1) - x).clamp(-eps, eps)
    active = torch.arange(len(x), device=x.device)
    with frozen(model):
        for _ in range(steps):
            moving = delta[active].requires_grad_(True)
            logits = model(x[active] + moving)
            (grad,) = torch.autograd.grad(objective(logits, active), moving)
            stepped = project(x[active], moving.detach() - step_size * grad.sign(), eps)
            if done is None:
                delta[active] = stepped
                continue
            finished = done(logits.detach(), active)
            delta[active[~finished]] = stepped[~finished]
            active = active[~finished]
            if not len(active):
                break
    return (x + delta).detach()
