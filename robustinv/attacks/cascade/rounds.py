"""One round of a gradient member on a chunk of inputs, each input leaving the moment it is broken.

Every point a round evaluates is checked: the forward pass that gives the next gradient also says
whether the point is already adversarial. A broken input keeps its first adversarial point and
drops out of the batch, so it costs nothing more (A3's online discarding of solved inputs,
Liu et al. CVPR 2022). An input never broken keeps the point of its lowest margin.

`apgd_round` is APGD (Croce & Hein 2020): step size 2ε, momentum 0.75, and at checkpoints
(after 22% of the iterations, then at shrinking intervals) the step is halved and the walk
restarts from the best point where the loss oscillated or stopped improving. It may start with
output-diversified steps (ODI, Tashiro et al. 2020): steps of size ε that push the logits along a
random direction w, so restarts spread over the output space rather than around one point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from robustinv.attacks.base import Norm
from robustinv.attacks.cascade.geometry import direction, project
from robustinv.attacks.cascade.losses import margin, output_diversified

Forward = Callable[[torch.Tensor], torch.Tensor]
Loss = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]  # (logits, y, target) → (n,)

MOMENTUM = 0.75
RHO = 0.75  # APGD: halve the step unless the loss rose in more than this share of the last interval's steps


class Tracker:
    """A chunk's outcome: who was broken, the first adversarial point, else the lowest-margin point."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.y = y
        self.fooled = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        self.margin = torch.full((len(x),), float("inf"), device=x.device)
        self.x_adv = x.clone()

    def observe(self, points: torch.Tensor, logits: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Record evaluated points of the active inputs `idx`; returns which of them are still standing."""
        m = margin(logits, self.y[idx])
        broke = logits.argmax(1) != self.y[idx]
        better = (m < self.margin[idx]) | broke
        self.margin[idx[better]] = m[better]
        self.x_adv[idx[better]] = points[better]
        self.fooled[idx[broke]] = True
        return ~broke


def value_and_grad(forward: Forward, points: torch.Tensor, loss: Callable[[torch.Tensor], torch.Tensor],
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits, per-input loss and its input gradient at `points`: one forward and one backward pass."""
    points = points.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = forward(points)
        values = loss(logits)
        (grad,) = torch.autograd.grad(values.sum(), points)
    return logits.detach(), values.detach(), grad.detach()


def fgsm_round(forward: Forward, x: torch.Tensor, y: torch.Tensor, grad: torch.Tensor, *, eps: float, norm: Norm,
               steps: int, loss: Loss) -> Tracker:
    """`steps` projected steps of size 2.5·ε/steps from the clean input along `grad` (its loss gradient there).

    One step is FGSM on the margin: on an undefended model it breaks most inputs for one pass each.
    """
    tracker = Tracker(x, y)
    idx = torch.arange(len(x), device=x.device)
    point, x_active, step = x, x, min(2.5 * eps / steps, eps) if steps > 1 else eps
    for i in range(steps):
        point = project(point + step * direction(grad, norm), x_active, eps, norm)
        if i == steps - 1:
            with torch.no_grad():
                logits = forward(point)
        else:
            logits, _, grad = value_and_grad(forward, point, lambda lg: loss(lg, y[idx], None))
        keep = tracker.observe(point, logits, idx)
        idx, point, x_active, grad = idx[keep], point[keep], x_active[keep], grad[keep]
        if not len(idx):
            break
    return tracker


@dataclass
class _Walk:
    """APGD's per-input state for the inputs still standing (compacted as inputs leave)."""

    idx: torch.Tensor
    x: torch.Tensor
    current: torch.Tensor
    previous: torch.Tensor
    grad: torch.Tensor
    loss: torch.Tensor
    best: torch.Tensor
    best_grad: torch.Tensor
    best_loss: torch.Tensor
    best_loss_at_check: torch.Tensor
    step: torch.Tensor
    rises: torch.Tensor
    reduced: torch.Tensor

    def keep(self, mask: torch.Tensor) -> _Walk:
        return _Walk(**{name: value[mask] for name, value in vars(self).items()})


def apgd_round(forward: Forward, x: torch.Tensor, y: torch.Tensor, start: torch.Tensor, *, eps: float, norm: Norm,
               steps: int, loss: Loss, target: torch.Tensor | None = None, odi: torch.Tensor | None = None,
               odi_steps: int = 0) -> Tracker:
    """APGD on `loss` from `start` (after `odi_steps` ODI steps along the logit directions `odi`, (N, K))."""
    tracker = Tracker(x, y)
    idx = torch.arange(len(x), device=x.device)
    point = start
    for _ in range(odi_steps if odi is not None else 0):
        assert odi is not None
        push = odi[idx]
        logits, _, grad = value_and_grad(forward, point, lambda lg: output_diversified(lg, push))
        keep = tracker.observe(point, logits, idx)
        idx, point, grad = idx[keep], point[keep], grad[keep]
        if not len(idx):
            return tracker
        point = project(point + eps * direction(grad, norm), x[idx], eps, norm)

    def loss_of(active: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        return lambda lg: loss(lg, y[active], None if target is None else target[active])

    logits, values, grad = value_and_grad(forward, point, loss_of(idx))
    keep = tracker.observe(point, logits, idx)
    ones = torch.ones(len(idx), device=x.device)
    walk = _Walk(idx, x[idx], point, point, grad, values, point, grad, values, values.clone(), 2 * eps * ones,
                 torch.zeros_like(ones), torch.ones_like(ones, dtype=torch.bool)).keep(keep)
    interval, counter = max(int(0.22 * steps), 1), 0
    shrink, shortest = max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)
    for i in range(steps):
        if not len(walk.idx):
            break
        w = walk
        shape = (-1, *([1] * (x.dim() - 1)))
        momentum = 1.0 if i == 0 else MOMENTUM
        z = project(w.current + w.step.view(shape) * direction(w.grad, norm), w.x, eps, norm)
        moved = project(w.current + momentum * (z - w.current) + (1 - momentum) * (w.current - w.previous),
                        w.x, eps, norm)
        w.previous, w.current = w.current, moved
        if i == steps - 1:  # the last point needs a check, not a gradient
            with torch.no_grad():
                logits = forward(moved)
            tracker.observe(moved, logits, w.idx)
            break
        logits, values, w.grad = value_and_grad(forward, moved, loss_of(w.idx))
        keep = tracker.observe(moved, logits, w.idx)
        w.rises += (values > w.loss).float()
        w.loss = values
        improved = values > w.best_loss
        w.best[improved], w.best_grad[improved], w.best_loss[improved] = moved[improved], w.grad[improved], \
            values[improved]
        walk = w.keep(keep)
        counter += 1
        if counter == interval:
            w = walk
            oscillating = w.rises <= interval * RHO
            stalled = ~w.reduced & (w.best_loss_at_check >= w.best_loss)
            halve = oscillating | stalled
            w.reduced, w.best_loss_at_check = halve, w.best_loss.clone()
            w.step[halve] /= 2
            w.current[halve], w.grad[halve] = w.best[halve], w.best_grad[halve]
            w.rises.zero_()
            counter, interval = 0, max(interval - shrink, shortest)
    return tracker
