"""Robustness metrics as pure functions on tensors (no models, no I/O).

Robust accuracy is unconditional (RobustBench): an input counts as robust only when the model
classifies it correctly both clean and under attack. Success rate is taken over the inputs the
model gets right when clean.
"""

from __future__ import annotations

import torch

from robustinv.stats import Z_95, wilson_interval  # noqa: F401  (re-exported: metrics is where callers look)


def accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of predictions equal to the labels."""
    return float((pred == y).double().mean()) if len(y) else float("nan")


def robust_accuracy(clean_pred: torch.Tensor, adv_pred: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction correct clean *and* under attack, over all inputs."""
    return float(((clean_pred == y) & (adv_pred == y)).double().mean()) if len(y) else float("nan")


def success_rate(clean_pred: torch.Tensor, adv_pred: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of clean-correct inputs the attack makes misclassified; NaN when none are correct."""
    correct = clean_pred == y
    if not bool(correct.any()):
        return float("nan")
    return float((adv_pred[correct] != y[correct]).double().mean())


def candidate_success(clean_pred: torch.Tensor, candidate_pred: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of all k candidates (k, N) that fool the model, over clean-correct inputs: single-shot success."""
    correct = clean_pred == y
    if not bool(correct.any()):
        return float("nan")
    return float((candidate_pred[:, correct] != y[correct]).double().mean())


def linf_norms(x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
    """Per-input Linf norm of the perturbation."""
    return (x_adv - x).flatten(1).abs().amax(1)


def l2_norms(x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
    """Per-input L2 norm of the perturbation."""
    return (x_adv - x).flatten(1).norm(p=2, dim=1)


def pairwise_cosine(features: torch.Tensor) -> float:
    """Mean over inputs of the mean pairwise cosine among their k candidates' features, (k, N, d).

    Lower means more diverse; NaN when k < 2.
    """
    k = features.shape[0]
    if k < 2:
        return float("nan")
    phi = torch.nn.functional.normalize(features.flatten(2).double(), dim=2).transpose(0, 1)  # (N, k, d)
    similarity = phi @ phi.transpose(1, 2)
    off_diagonal = similarity.sum((1, 2)) - similarity.diagonal(dim1=1, dim2=2).sum(1)
    return float((off_diagonal / (k * (k - 1))).mean())


def fooled_cosine_per_input(features: torch.Tensor, fooled: torch.Tensor) -> torch.Tensor:
    """Per input, the mean pairwise cosine among the features (k, N, d) of its fooling candidates (k, N).

    NaN for inputs with fewer than two: the diversity of the samples an attack actually delivers.
    """
    phi = torch.nn.functional.normalize(features.flatten(2).double(), dim=2).transpose(0, 1)  # (N, k, d)
    mask = fooled.T.double()  # (N, k)
    similarity = phi @ phi.transpose(1, 2) * mask[:, :, None] * mask[:, None, :]
    count = mask.sum(1)
    off_diagonal = similarity.sum((1, 2)) - similarity.diagonal(dim1=1, dim2=2).sum(1)
    pairs = count * (count - 1)
    return torch.where(pairs > 0, off_diagonal / pairs.clamp(min=1), torch.full_like(count, float("nan")))


def fooled_pairwise_cosine(features: torch.Tensor, fooled: torch.Tensor) -> float:
    """Mean over inputs with at least two fooling candidates of `fooled_cosine_per_input`; NaN when none has."""
    values = fooled_cosine_per_input(features, fooled)
    kept = values[~values.isnan()]
    return float(kept.mean()) if len(kept) else float("nan")


def feature_consistency(clean_features: torch.Tensor, adv_features: torch.Tensor) -> float:
    """Mean cosine between the penultimate features of each input and its adversarial version.

    1 when the neurons respond to the adversarial input exactly as to the clean one (Dong et al.).
    """
    clean, adv = clean_features.flatten(1).double(), adv_features.flatten(1).double()
    return float(torch.nn.functional.cosine_similarity(clean, adv, dim=1).mean())


def pairwise_l2(samples: torch.Tensor) -> float:
    """Mean over inputs of the mean pairwise L2 distance among their k candidates, (k, N, ...)."""
    k = samples.shape[0]
    if k < 2:
        return float("nan")
    flat = samples.flatten(2).double().transpose(0, 1)  # (N, k, D)
    distances = torch.cdist(flat, flat)
    return float((distances.sum((1, 2)) / (k * (k - 1))).mean())


def target_success(pred: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of candidates classified as their coded target, over all (k, N)."""
    return float((pred == targets).double().mean()) if targets.numel() else float("nan")


def target_matrix(y: torch.Tensor, pred: torch.Tensor, targets: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(true × target) counts and success rates of targeted candidates; rates are NaN where a pair never occurs.

    `y` is (N,); `pred` and `targets` are (k, N).
    """
    true = y.expand_as(targets).flatten()
    cell = true * num_classes + targets.flatten()
    counts = torch.bincount(cell, minlength=num_classes**2).view(num_classes, num_classes)
    hits = torch.bincount(cell, weights=(pred.flatten() == targets.flatten()).double(), minlength=num_classes**2)
    rates = hits.view(num_classes, num_classes) / counts.double()
    return counts, rates
