"""Per-input losses on logits, all maximized: the margin losses of C&W, MM and ODI.

* `margin`: z_y − max_{j≠y} z_j, positive while the input is classified correctly; every
  point the cascade evaluates is checked and ranked by it.
* untargeted losses: −margin (C&W; ODI's and A3's PGD loss) or cross-entropy (APGD-CE, the
  first member of AutoAttack).
* targeted loss: z_t − z_y toward one of the top-k wrong classes t (the minimum-margin attack,
  Gao et al. ICML 2022), so k rounds cover the classes an input is likeliest to fall into.
* ODI loss: wᵀ f(x) for a random w ∈ [−1, 1]^K (Tashiro et al. 2020): starts spread over the
  output space instead of the input space.
"""

from __future__ import annotations

import torch


def margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.scatter(1, y[:, None], float("-inf")).amax(1)
    return true - other


def untargeted(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    return -margin(logits, y)


def cross_entropy(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(logits, y, reduction="none")


def targeted(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    assert target is not None
    return logits.gather(1, target[:, None]).squeeze(1) - logits.gather(1, y[:, None]).squeeze(1)


def output_diversified(logits: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return (logits * w).sum(1)


def wrong_classes_by_logit(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per input, the wrong classes from most to least likely, (N, K − 1)."""
    order = logits.scatter(1, y[:, None], float("-inf")).argsort(dim=1, descending=True, stable=True)
    return order[:, :-1]
