"""How far an attack moves a model's attention and its neurons: pure functions on tensors.

Attribution drift compares the clean and adversarial maps of the same inputs; neuron
consistency (Dong et al. 2017) compares which inputs most excite each channel, clean vs
adversarial, and how pure in class those inputs are.
"""

from __future__ import annotations

import math

import torch

TOP_FRACTION = 0.1  # attribution IoU compares the top 10 % of pixels
TOP_INPUTS = 0.1  # neuron consistency compares each channel's top 10 % of inputs


def tied_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks (0-based, float64) along the last dimension; tied values share their mean rank, as Spearman's ρ needs."""
    rows, size = values.reshape(-1, values.shape[-1]).shape
    flat = values.reshape(rows, size).double()
    order = flat.argsort(dim=-1, stable=True)
    ordered = flat.gather(-1, order)
    # Equal values form runs in each sorted row; a run's members all get the run's mean position.
    new_run = torch.ones_like(ordered, dtype=torch.bool)
    new_run[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    run_id = new_run.flatten().cumsum(0) - 1
    positions = torch.arange(size, dtype=torch.float64).expand(rows, size).flatten()
    counts = torch.zeros(int(run_id[-1]) + 1, dtype=torch.float64).index_add_(0, run_id, torch.ones_like(positions))
    means = torch.zeros_like(counts).index_add_(0, run_id, positions) / counts
    ranks = torch.empty_like(flat)
    ranks.scatter_(-1, order, means[run_id].view(rows, size))
    return ranks.view(values.shape)


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman's ρ of each pair of maps (…, H, W) → (…,), with ties ranked by their mean.

    A constant map has no ranking: two equal constant maps count as ρ = 1, otherwise ρ = 0.
    """
    ra, rb = (tied_ranks(t.flatten(-2)) for t in (a, b))
    ra, rb = ra - ra.mean(-1, keepdim=True), rb - rb.mean(-1, keepdim=True)
    spread = (ra.square().sum(-1) * rb.square().sum(-1)).sqrt()
    rho = (ra * rb).sum(-1) / spread.clamp_min(1e-300)
    same = (a.flatten(-2) == b.flatten(-2)).all(-1)
    return torch.where(spread > 0, rho, same.double()).float()


def attribution_drift(clean: torch.Tensor, adversarial: torch.Tensor) -> torch.Tensor:
    """1 − Spearman's ρ of each clean and adversarial map: 0 when the attack leaves the attention in place."""
    return 1 - spearman(clean, adversarial)


def top_fraction_iou(a: torch.Tensor, b: torch.Tensor, fraction: float = TOP_FRACTION) -> torch.Tensor:
    """IoU of each pair of maps' top-`fraction` pixel masks (…, H, W) → (…,)."""
    flat_a, flat_b = a.flatten(-2), b.flatten(-2)
    k = max(1, math.ceil(fraction * flat_a.shape[-1]))
    mask_a = torch.zeros_like(flat_a, dtype=torch.bool).scatter_(-1, flat_a.topk(k, -1).indices, True)
    mask_b = torch.zeros_like(flat_b, dtype=torch.bool).scatter_(-1, flat_b.topk(k, -1).indices, True)
    return (mask_a & mask_b).sum(-1).float() / (mask_a | mask_b).sum(-1).float()


def top_inputs(activations: torch.Tensor, k: int) -> torch.Tensor:
    """(channels, k): the indices of the k inputs that most excite each channel of (N, channels)."""
    return activations.t().topk(k, -1).indices


def neuron_consistency(clean: torch.Tensor, adversarial: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Dong et al.'s neuron consistency over (N, channels) activations of the same N inputs.

    `neuron_consistency`: per channel, the share of its top-k clean inputs that are also its
    top-k adversarial ones (k = 10 % of N), averaged over channels. `neuron_purity_clean` /
    `_adv`: the share of each channel's top-k inputs that carry its most common true label.
    Channels that never fire on clean or on adversarial inputs are left out; NaN when none fire.
    """
    n = len(y)
    k = max(1, math.ceil(TOP_INPUTS * n))
    live = (clean.amax(0) > clean.amin(0)) & (adversarial.amax(0) > adversarial.amin(0))
    if n < 2 or not bool(live.any()):
        return {"neuron_consistency": math.nan, "neuron_purity_clean": math.nan, "neuron_purity_adv": math.nan}
    top_clean, top_adv = top_inputs(clean[:, live], k), top_inputs(adversarial[:, live], k)
    overlap = (top_clean[:, :, None] == top_adv[:, None, :]).any(-1).float().mean(-1)
    return {"neuron_consistency": float(overlap.mean()), "neuron_purity_clean": _purity(y[top_clean]),
            "neuron_purity_adv": _purity(y[top_adv])}


def _purity(labels: torch.Tensor) -> float:
    """Mean over rows of (channels, k) labels of the share taken by each row's most common label."""
    return float(labels.mode(-1).values.unsqueeze(-1).eq(labels).float().mean())
