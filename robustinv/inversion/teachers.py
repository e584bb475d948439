"""What a generator learns from besides its own loss: PGD examples and refinements of its draws.

On an adversarially trained model the generator's own loss gives a weak signal: its draws
rarely fool the model, and the margin's gradient at a draw says only which way to move it a
little. Three ways to tell it where the model does break, all through the shared
projected-gradient loop (`robustinv.gradient.signed_steps`):

- **Distillation** (`distillation_targets`, `distill_term`): PGD examples of the training
  images, computed once before training; each draw is pulled toward its input's example. A
  training step then costs what it costs without them.
- **Imitation** (`imitation_term`): each draw pulled toward a successful short refinement of
  itself, computed at every step.
- **Starts** (`refined_straight_through`): the loss is taken after a short refinement of each
  draw and its gradient passed straight back to the draw (first-order, no gradient through the
  refinement), so the generator learns draws from which refinement succeeds.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from robustinv.gradient import signed_steps
from robustinv.inversion.losses import margin_gap
from robustinv.inversion.refine import default_step_size, refine
from robustinv.runtime import model_device


def distillation_targets(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, steps: int, seed: int, batch_size: int = 500,
) -> tuple[torch.Tensor, float, float]:
    """Untargeted PGD examples of `x` (`steps` steps of 2.5·ε/steps on the C&W margin from a seeded random start).

    Every sample takes all its steps, fooled or not: a sample that already fools the model keeps
    moving away from its class, which makes it a stronger target to learn. Returns the examples
    (on the CPU, half precision, to hold a whole training set), the share that fools the model,
    and the seconds they took.
    """
    device = model_device(model)
    rng = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    examples, fooled = [], []
    for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
        noise = torch.empty(xb.shape).uniform_(-eps, eps, generator=rng)
        xb, yb = xb.to(device), yb.to(device)

        def gap(logits: torch.Tensor, active: torch.Tensor, yb: torch.Tensor = yb) -> torch.Tensor:
            return margin_gap(logits, yb[active], targeted=False).sum()

        adv = signed_steps(model, xb, noise.to(device), gap, eps=eps, steps=steps,
                           step_size=default_step_size(eps, steps))
        with torch.no_grad():
            fooled.append((model(adv).argmax(1) != yb).cpu())
        examples.append(adv.cpu().half())
    return torch.cat(examples), float(torch.cat(fooled).double().mean()), time.perf_counter() - start


def distill_term(x_adv: torch.Tensor, targets: torch.Tensor, eps: float) -> torch.Tensor:
    """Mean L1 distance from each draw to its input's PGD example, in units of ε."""
    return F.l1_loss(x_adv, targets.to(x_adv.dtype)) / eps


def imitation_term(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, labels: torch.Tensor, *, eps: float,
                   steps: int, targeted: bool) -> torch.Tensor:
    """L1 distance (in units of ε) from each draw to where a short refinement of it succeeds.

    The refined sample is a fixed target (no gradient flows through the refinement); draws whose
    refinement still fails contribute nothing, so the generator is pulled only toward regions
    where the model does break.
    """
    refined = refine(model, x, x_adv.detach()[None], labels if not targeted else labels[None], eps=eps,
                     steps=steps, step_size=default_step_size(eps, steps), targeted=targeted)[0]
    with torch.no_grad():
        pred = model(refined).argmax(1)
        hit = pred == labels if targeted else pred != labels
    if not bool(hit.any()):
        return x_adv.new_zeros(())
    distance = F.l1_loss(x_adv[hit], refined[hit], reduction="none").flatten(1).mean(1) / eps
    return distance.sum() / len(x_adv)


def refined_straight_through(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, labels: torch.Tensor, *,
                             eps: float, steps: int, targeted: bool) -> torch.Tensor:
    """The draws after `steps` refinement steps, carrying the draws' gradient unchanged (straight through).

    A loss on the result trains the draws as starts: its gradient at the refined point is applied
    to the draw it came from, the first-order approximation of differentiating through the
    refinement. Draws that already fool the model are not moved (`refine`).
    """
    refined = refine(model, x, x_adv.detach()[None], labels if not targeted else labels[None], eps=eps,
                     steps=steps, step_size=default_step_size(eps, steps), targeted=targeted)[0]
    return x_adv + (refined - x_adv).detach()
