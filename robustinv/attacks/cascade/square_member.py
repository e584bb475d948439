"""The cascade's gradient-free member: Square Attack on the near misses and a seeded sample of the rest.

Square (Andriushchenko et al. 2020) needs only the model's outputs, so where the gradient members
were misled (masked, shattered or obfuscated gradients) it still breaks inputs; the reference
implementation (`pyautoattack.square`, plain torch) runs unchanged. It costs `queries` forward
passes per input it cannot break, so it runs on two groups only:

* every input still alive after the gradient members: the smallest margins, where an input the
  gradients cannot quite break may fall to random search (AutoAttack's Square-only breaks on
  adversarially trained MNIST models are such inputs);
* a seeded `share` of the inputs discarded earlier: on a masked model the margins say nothing,
  and this unbiased sample is what lets AutoAttack's calibrated Square check
  (`robustinv.judge.sanity.square_gain`) fire.
"""

from __future__ import annotations

import math

import torch
from pyautoattack.square import SquareAttack
from torch import nn

from robustinv.attacks.aa_runner import AA_NORMS
from robustinv.attacks.base import Norm
from robustinv.attacks.cascade.rounds import Tracker


def sample(mask: torch.Tensor, share: float, generator: torch.Generator) -> torch.Tensor:
    """Indices of a seeded `share` of the inputs in `mask` (at least one when there are any), in input order."""
    idx = mask.nonzero().squeeze(1)
    count = min(len(idx), math.ceil(share * len(idx)))
    chosen = torch.randperm(len(idx), generator=generator)[:count]
    return idx[chosen.sort().values]


@torch.no_grad()
def square_round(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, norm: Norm, queries: int,
                 p_init: float, seed: int) -> Tracker:
    """Square on one chunk (all of it standing); the tracker holds who fell and their adversarial points."""
    attack = SquareAttack(model, norm=AA_NORMS[norm], n_queries=queries, eps=eps, p_init=p_init, n_restarts=1,
                          seed=seed, verbose=False, device=x.device, resc_schedule=True)
    x_adv = attack.perturb(x, y)
    tracker = Tracker(x, y)
    tracker.observe(x_adv, model(x_adv), torch.arange(len(x), device=x.device))
    return tracker
