"""Generator training recipes. Published inversion papers give no weights; these were tuned here.

Choices, with reasons (measured on MNIST/LeNet-5 and digits/smallcnn, see docs/inversion.md and docs/results.md):
- `margin` carries the attack: the C&W hinge gives a gradient until the wrong class wins by κ,
  where plain CE saturates early or keeps pushing already-fooled samples.
- `kl` and `ce` steer *which* wrong class a sample lands in, from the soft code c; lighter
  weights in untargeted mode (0.3) keep them from fighting the margin, full weight in targeted mode.
- `cos` (γ) pushes the draws of one input apart in feature space: diversity at equal success
  (1.0 untargeted, 0.5 targeted, where the coded targets already separate the draws).
- Dropout 0.3 after each up-convolution, kept on when sampling: heavy enough that masks differ,
  light enough that every mask still fools the model.

For robust (adversarially trained) models, optional knobs, all off by default:
- `patience` stops training after that many held-out evaluations without a better success rate
  and keeps the best weights.
- `imitate` pulls each draw toward where a short refinement of it (`imitate_steps` projected
  gradient steps) fools the model. Each step costs about 4× more with 5 imitation steps.
- `distill` pulls each draw toward a PGD example of its input computed once before training
  (`distill_steps` steps on `distill_images` training images, which then form the training pool),
  so the generator learns where PGD ends without paying for PGD at every step.
- `topk` spreads the hinge over the k most likely wrong classes instead of the single likeliest.
- `eps_start` and `eps_ramp`: an ε curriculum, training at eps_start·ε at first and moving
  linearly to ε over the first eps_ramp share of the steps.
- `start_steps` trains the draws as starts of a refinement: the loss is taken after that many
  projected gradient steps from each draw, its gradient passed straight back to the draw.
- `schedule = "cosine"` decays the learning rate to zero over the steps (long runs).
- `saturate` makes the perturbation x + ε·sign(h): every pixel at a corner of the ε-box.

The fields added for robust models enter the generator's cache key only when set away from their
defaults, so a recipe that does not use them keeps the key (and the cached generator) it had.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from robustinv.config import Config

# Fields added after generators were first cached; at their defaults they leave a generator as it was (`key_record`).
KEYED_WHEN_SET = ("topk", "eps_start", "eps_ramp", "distill", "distill_steps", "distill_images", "start_steps", "schedule",
                  "saturate")


class GeneratorRecipe(Config):
    """How to train an inverting generator; every field that changes it is part of its cache key."""

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
    topk: int = Field(1, ge=1, description="the hinge averages over this many of the likeliest wrong classes")
    eps_start: float = Field(1.0, gt=0, le=4, description="ε curriculum: training starts at eps_start·ε")
    eps_ramp: float = Field(0.5, gt=0, le=1, description="share of the steps over which the training ε reaches ε")
    distill: float = Field(0.0, ge=0, description="weight of the pull toward PGD examples computed once")
    distill_steps: int = Field(20, ge=1, description="PGD steps of the distillation targets")
    distill_images: int = Field(10000, ge=1, description="training images given a distillation target (the pool)")
    start_steps: int = Field(0, ge=0, description="refinement steps after which the loss is taken (draws as starts)")
    schedule: Literal["constant", "cosine"] = Field("constant", description="learning-rate schedule over the steps")
    saturate: bool = Field(False, description="perturb mode: every pixel moves by ±ε (sign of the output, straight through)")

    def weights(self, *, targeted: bool) -> tuple[float, float, float]:
        """(α, β, γ) with the mode's defaults filled in (the values measured in tuning)."""
        defaults = (0.5, 1.0, 0.5) if targeted else (0.3, 0.3, 1.0)
        chosen = (self.kl, self.ce, self.cos)
        return tuple(d if c is None else c for c, d in zip(chosen, defaults))  # type: ignore[return-value]

    def eps_at(self, eps: float, step: int) -> float:
        """The training ε at `step` (1-based): eps_start·ε moving linearly to ε over eps_ramp of the steps."""
        ramp = max(1.0, self.eps_ramp * self.steps)
        share = min(1.0, (step - 1) / ramp)
        return eps * (self.eps_start + (1.0 - self.eps_start) * share)

    def key_record(self) -> dict[str, Any]:
        """The fields that determine the generator, for its cache key: `KEYED_WHEN_SET` only when not at their defaults."""
        record = self.model_dump(mode="json")
        defaults = GeneratorRecipe().model_dump(mode="json")
        return {name: value for name, value in record.items()
                if name not in KEYED_WHEN_SET or value != defaults[name]}
