"""Inversion loss terms as pure functions on tensors (DESIGN §4.1).

L = α·KL(c ‖ softmax f(G)) + β·CE(f(G), t) + μ·margin + γ·mean_{i≠j} cos(φ_i, φ_j) [+ δ·‖ΦΦᵀ − I‖²]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kl_term(codes: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """KL(c ‖ softmax(logits)), averaged over the batch."""
    return F.kl_div(F.log_softmax(logits, dim=1), codes, reduction="batchmean")


def ce_term(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, targets)


def margin_gap(logits: torch.Tensor, labels: torch.Tensor, *, targeted: bool) -> torch.Tensor:
    """Per sample, how far from success: z_y − max_{j≠y} z_j (untargeted) or max_{j≠t} z_j − z_t (targeted).

    Negative once the sample fools the model (lands in the target when targeted).
    """
    own = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.masked_fill(F.one_hot(labels, logits.shape[1]).bool(), float("-inf")).amax(1)
    return others - own if targeted else own - others


def topk_gaps(logits: torch.Tensor, labels: torch.Tensor, *, targeted: bool, topk: int) -> torch.Tensor:
    """Per sample, the gaps to its `topk` likeliest other classes, (N, topk), largest other class first.

    Untargeted: z_y − z_j for the k largest z_j, j ≠ y; targeted: z_j − z_t. The first column is
    `margin_gap`.
    """
    own = logits.gather(1, labels[:, None])
    others = logits.masked_fill(F.one_hot(labels, logits.shape[1]).bool(), float("-inf"))
    top = others.topk(min(topk, logits.shape[1] - 1), dim=1).values
    return top - own if targeted else own - top


def margin_term(logits: torch.Tensor, labels: torch.Tensor, *, targeted: bool, kappa: float, topk: int = 1) -> torch.Tensor:
    """C&W-style hinge, clamped at confidence κ, averaged over the `topk` likeliest other classes.

    Targeted: max(max_{j≠t} z_j − z_t, −κ) pushes the target above every other class.
    Untargeted: max(z_y − max_{j≠y} z_j, −κ) pushes the true class below some other class. With
    topk = k the hinge is the mean over the k likeliest other classes: on a robust model the
    likeliest wrong class is often not the one within reach, and the gradient then also pulls
    toward the runners-up.
    """
    if topk == 1:
        return margin_gap(logits, labels, targeted=targeted).clamp(min=-kappa).mean()
    return topk_gaps(logits, labels, targeted=targeted, topk=topk).clamp(min=-kappa).mean()


def cosine_diversity(features: torch.Tensor, groups: int = 1) -> torch.Tensor:
    """Mean pairwise cosine similarity between features, within each of `groups` equal groups.

    0 for mutually orthogonal features, 1 for identical ones; lower means more diverse.
    """
    phi = F.normalize(features.flatten(1), dim=1).reshape(groups, -1, features[0].numel())
    m = phi.shape[1]
    if m < 2:
        return features.new_zeros(())
    similarity = phi @ phi.transpose(1, 2)
    off_diagonal = similarity.sum((1, 2)) - similarity.diagonal(dim1=1, dim2=2).sum(1)
    return (off_diagonal / (m * (m - 1))).mean()


def orthogonality(features: torch.Tensor) -> torch.Tensor:
    """‖ΦΦᵀ − I‖² / n² for row-normalized features Φ: 0 when the features are orthonormal."""
    phi = F.normalize(features.flatten(1), dim=1)
    gram = phi @ phi.T
    return ((gram - torch.eye(len(phi), device=phi.device)) ** 2).sum() / len(phi) ** 2


def inversion_loss(
    logits: torch.Tensor, features: torch.Tensor, codes: torch.Tensor, targets: torch.Tensor,
    labels: torch.Tensor | None, *, kl: float, ce: float, margin: float, kappa: float, cos: float,
    orth: float, groups: int, topk: int = 1,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted sum of the terms and each term's value.

    With `labels` (perturb, untargeted) the hinge pushes the true class down; without, it pushes
    the coded target up (targeted perturbations and free inversion).
    """
    hinge_labels = targets if labels is None else labels
    terms = {
        "kl": kl_term(codes, logits),
        "ce": ce_term(logits, targets),
        "margin": margin_term(logits, hinge_labels, targeted=labels is None, kappa=kappa, topk=topk),
        "cos": cosine_diversity(features, groups),
        "orth": orthogonality(features) if orth > 0 else logits.new_zeros(()),
    }
    weights = {"kl": kl, "ce": ce, "margin": margin, "cos": cos, "orth": orth}
    total = sum((weights[name] * value for name, value in terms.items() if weights[name] > 0), logits.new_zeros(()))
    return total, {name: float(value.detach()) for name, value in terms.items()}
