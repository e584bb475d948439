"""Generator training recipes. Published inversion papers give no weights; these were tuned here.

Choices, with reasons (measured on MNIST/LeNet-5 and digits/smallcnn, see the README):
- `margin` carries the attack: the C&W hinge gives a gradient until the wrong class wins by κ,
  where plain CE saturates early or keeps pushing already-fooled samples.
- `kl` and `ce` steer *which* wrong class a sample lands in, from the soft code c; lighter
  weights in untargeted mode (0.3) keep them from fighting the margin, full weight in targeted mode.
- `cos` (γ) pushes the draws of one input apart in feature space: diversity at equal success
  (1.0 untargeted, 0.5 targeted, where the coded targets already separate the draws).
- Dropout 0.3 after each up-convolution, kept on when sampling: heavy enough that masks differ,
  light enough that every mask still fools the model.

For robust (adversarially trained) models, two optional knobs, both off by default:
- `patience` stops training after that many held-out evaluations without a better success rate
  and keeps the best weights (on robust models the held-out success stays flat: see the README).
- `imitate` pulls each draw toward where a short refinement of it (`imitate_steps` projected
  gradient steps) fools the model, so the generator learns to start where PGD would end. Each
  step costs about 4× more with 5 imitation steps.
"""

from __future__ import annotations

from pydantic import Field

from robustinv.config import Config


class GeneratorRecipe(Config):
    """How to train an inverting generator; every field is part of its cache key."""

    steps: int = Field(1500, ge=1)
    batch_size: int = Field(64, ge=1, description="inputs per step")
    draws: int = Field(2, ge=1, description="codes drawn per input per step; the cosine term compares them")
    lr: float = Field(1e-3, gt=0)
    pattern_lr_scale: float = Field(10.0, gt=0, description="learning-rate multiplier of the code→pattern layer")
    tau: float = Field(0.2, gt=0, description="temperature of the soft label code c = softmax(v/τ)")
    width: int = Field(16, ge=4)
    z_dim: int = Field(16, ge=1)
    dropout: float = Field(0.3, ge=0, lt=1)
    hot_matrix: bool = False
    kl: float | None = Field(None, ge=0, description="α; default 0.5 targeted, 0.3 untargeted")
    ce: float | None = Field(None, ge=0, description="β; default 1.0 targeted, 0.3 untargeted")
    margin: float = Field(1.0, ge=0, description="μ, weight of the C&W hinge")
    kappa: float = Field(5.0, ge=0, description="κ, confidence at which the hinge stops")
    cos: float | None = Field(None, ge=0, description="γ, cosine feature-diversity; default 0.5 targeted, 1.0 untargeted")
    orth: float = Field(0.0, ge=0, description="δ, weight of the feature-orthogonality term")
    eval_every: int = Field(250, ge=1)
    patience: int | None = Field(None, ge=1, description="evaluations without improvement before stopping early")
    imitate: float = Field(0.0, ge=0, description="weight of the pull toward successful refinements of each draw")
    imitate_steps: int = Field(5, ge=1, description="refinement steps that make the imitation targets")

    def weights(self, *, targeted: bool) -> tuple[float, float, float]:
        """(α, β, γ) with the mode's defaults filled in (the values measured in tuning)."""
        defaults = (0.5, 1.0, 0.5) if targeted else (0.3, 0.3, 1.0)
        chosen = (self.kl, self.ce, self.cos)
        return tuple(d if c is None else c for c, d in zip(chosen, defaults))  # type: ignore[return-value]
