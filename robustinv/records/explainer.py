"""What `robustinv explain` measured: how well each explainer GAN reproduces the model's maps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Score:
    """Held-out agreement of predicted maps with the true ones: mean absolute error and mean SSIM."""

    mae: float
    ssim: float


@dataclass(frozen=True)
class HeldOut:
    """A predictor's scores on the held-out inputs, clean and adversarial."""

    clean: Score
    adversarial: Score


@dataclass(frozen=True)
class DepthAblation:
    """The SSIM lost when one conditioning map (cumulative over conv layers `first`…`last`, 1-based) is zeroed."""

    first: int
    last: int
    drop_clean: float
    drop_adversarial: float


@dataclass(frozen=True)
class ModeOutcome:
    """One explainer GAN: what it produces, how well, against which baselines, and how fast."""

    mode: str
    target: str
    train_seconds: float
    trained_now: bool
    history: list[dict[str, float]]  # per epoch: generator_adversarial, l1, discriminator
    gan: HeldOut
    baselines: dict[str, HeldOut]
    ablation: list[DepthAblation]
    maps_per_s: float

    def best_baseline(self, side: str) -> tuple[str, Score]:
        """The baseline with the lowest held-out MAE on `side` ("clean" or "adversarial")."""
        return min(((name, getattr(b, side)) for name, b in self.baselines.items()), key=lambda item: item[1].mae)

    def mae_ratio(self, side: str) -> float:
        """The GAN's held-out MAE over the best baseline's (below 1: better than every baseline)."""
        return float(getattr(self.gan, side).mae / self.best_baseline(side)[1].mae)


@dataclass(frozen=True)
class ExplainerOutcome:
    """Everything `robustinv explain` wrote to explain.json."""

    suite: str
    model: str
    defense: str
    dataset: str
    model_fingerprint: str
    dataset_fingerprint: str
    attack: dict[str, Any]
    eps: float
    seed: int
    n_train: int
    n_heldout: int
    explained_class: str
    conv_layers: int
    condition_layers: list[int]  # 0-based: c_d = the cumulative map over layers d … L−1, deepest first
    adversarial_success: float  # held-out inputs the attack fooled
    captum_maps_per_s: float
    modes: list[ModeOutcome]
    deviations: list[str]
    versions: dict[str, str] = field(default_factory=dict)
