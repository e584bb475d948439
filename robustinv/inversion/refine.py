"""Generator-seeded refinement: projected gradient steps from each generator draw.

The draws carry the diversity (different codes, noise and dropout masks, different wrong
classes); r signed-gradient steps, projected back onto the ε-ball around the clean input and
onto [0, 1], carry the strength. A draw that already fools the model is left as it is:
refinement only spends gradients on draws that still fail, and the successful draws keep the
spread the generator gave them.

Untargeted, each draw can be refined toward the wrong class its code named (`aims`): the loss
z_y − z_aim pushes the true class below that one class, and any misclassification counts. The k
draws then spread over k wrong classes, as in a multi-targeted attack (Gowal et al. 2019), and
their successes stay apart in feature space; on the defended MNIST models they are fewer than
the margin's (docs/results.md). Without aims the loss is the C&W margin z_y − max_{j≠y} z_j.
"""

from __future__ import annotations

import torch
from torch import nn

from robustinv.gradient import signed_steps
from robustinv.inversion.losses import margin_gap
from robustinv.runtime import model_device

STEP_SCALE = 2.5  # default step = 2.5·ε/r (Madry et al.): r steps can cross the ε-ball and back


def default_step_size(eps: float, steps: int) -> float:
    return STEP_SCALE * eps / steps


def aimed_gap(logits: torch.Tensor, labels: torch.Tensor, aims: torch.Tensor) -> torch.Tensor:
    """z_y − z_aim per sample: how far the true class still leads the class this draw aims at."""
    return logits.gather(1, labels[:, None]).squeeze(1) - logits.gather(1, aims[:, None]).squeeze(1)


def jitter(x: torch.Tensor, starts: torch.Tensor, *, eps: float, spread: float, seed: int) -> torch.Tensor:
    """Each start moved by seeded uniform noise in [−spread·ε, spread·ε], projected back onto the ε-ball and [0, 1].

    A random start around each draw: where a generator's draws lie close together (as on robust
    models), this gives the refinement the spread that PGD's random restarts have.
    """
    if spread == 0:
        return starts
    noise = torch.empty(starts.shape).uniform_(-spread * eps, spread * eps, generator=torch.Generator().manual_seed(seed))
    moved = starts + noise
    return torch.min(torch.max(moved, x - eps), x + eps).clamp(0.0, 1.0)


def refine(
    model: nn.Module, x: torch.Tensor, starts: torch.Tensor, labels: torch.Tensor, *, eps: float, steps: int,
    step_size: float, targeted: bool = False, aims: torch.Tensor | None = None, batch_size: int = 512,
) -> torch.Tensor:
    """`steps` projected signed-gradient steps from each start, (k, N, C, H, W) in and out.

    `labels` is (N,) true labels (untargeted) or (k, N) targets (targeted); `aims` (k, N), the
    wrong class each untargeted draw is pushed toward. Every output stays within ε of `x` in
    Linf and inside [0, 1]; the model is left as it was (`robustinv.gradient.frozen`).
    """
    if steps == 0:
        return starts
    k = starts.shape[0]
    wanted = (labels if labels.ndim == 2 else labels.expand(k, -1)).flatten()
    aimed = None if aims is None or targeted else aims.flatten()
    clean = x.expand_as(starts).flatten(0, 1)
    flat = starts.flatten(0, 1).clone()
    device = model_device(model)
    for index in torch.arange(len(flat)).split(batch_size):
        xb, yb = clean[index].to(device), wanted[index].to(device)
        ab = None if aimed is None else aimed[index].to(device)

        def gap(logits: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
            if ab is None:
                return margin_gap(logits, yb[active], targeted=targeted).sum()
            return aimed_gap(logits, yb[active], ab[active]).sum()

        def fooled(logits: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
            return margin_gap(logits, yb[active], targeted=targeted) < 0

        flat[index] = signed_steps(model, xb, flat[index].to(device) - xb, gap, eps=eps, steps=steps,
                                   step_size=step_size, done=fooled).cpu()
    return flat.view_as(starts)
