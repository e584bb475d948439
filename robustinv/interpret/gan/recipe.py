"""How the explainer GAN is trained: the pix2pix recipe (Isola et al. 2017), sized for a CPU.

pix2pix's own choices are kept: Adam at 2e-4 with β1 = 0.5, and the L1 term weighted 100 times
the adversarial one, so the L1 term fixes the map and the discriminator only sharpens it.
The default of 20 epochs trains on 8,000 28×28 maps (4,000 MNIST images, clean and attacked)
within the 15 CPU-minutes a GAN may take on one thread (see benchmarks/interpret.py).
"""

from __future__ import annotations

from pydantic import Field

from robustinv.config import Config


class ExplainerRecipe(Config):
    """Training of an explainer generator and its discriminator; every field changes the trained weights."""

    epochs: int = Field(20, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(2e-4, gt=0)
    beta1: float = Field(0.5, ge=0, lt=1, description="Adam's β1, for both networks")
    l1_weight: float = Field(100.0, ge=0, description="weight of L1(fake, target) beside the adversarial term")
    width: int = Field(16, ge=4, description="generator channels")
    disc_width: int = Field(16, ge=4, description="discriminator channels of its first layer")
