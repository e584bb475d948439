"""Mass production: one generator forward pass per adversarial sample."""

from __future__ import annotations

import torch

from robustinv.inversion.encoding import rotating_targets, soft_codes
from robustinv.inversion.generator import PerturbGenerator


@torch.no_grad()
def sample_perturbations(
    generator: PerturbGenerator, x: torch.Tensor, y: torch.Tensor, *, eps: float, draws: int, targeted: bool,
    tau: float, seed: int, batch_size: int = 512,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`draws` candidates per input, (k, N, C, H, W), and their coded targets, (k, N).

    Draws of one input code different wrong classes, rotating from the input's index (targeted:
    every (true, target) pair is covered across inputs) or from a random start (untargeted).
    Codes, noise and dropout masks are all seeded, so the same seed gives the same samples.
    """
    device = next(generator.parameters()).device
    rng = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout masks
    generator.train()  # dropout stays on: every mask is another sample
    num_classes = generator.num_classes
    samples, targets = [], []
    offset = None if targeted else torch.randint(num_classes - 1, (len(y),), generator=rng)
    for draw in range(draws):
        t = rotating_targets(y, num_classes, draw, offset)
        codes = soft_codes(t, num_classes, tau=tau, generator=rng)
        noise = torch.randn(len(y), generator.z_dim, generator=rng)
        out = [
            generator(xb.to(device), cb.to(device), zb.to(device), eps).cpu()
            for xb, cb, zb in zip(x.split(batch_size), codes.split(batch_size), noise.split(batch_size))
        ]
        samples.append(torch.cat(out))
        targets.append(t)
    return torch.stack(samples), torch.stack(targets)


