"""The gradient-masking guard: is a model's PGD number believable?

A defended model that only hides its gradients looks robust to PGD and falls to anything that
does not need them. For every guarded model the runner gathers evidence at the largest ε of
the suite's PGD — a PGD with `steps_factor`× the steps and `restarts` random restarts on the
first `n` inputs, a transfer attack (the suite's PGD examples crafted on another, standard
model) and the suite's other attacks (the inverting generator among them) — and
`masking_findings` turns it into reasons to flag the PGD row `masking?`:

* FGSM leaves less accuracy than PGD at some ε;
* the stronger PGD lowers accuracy on its inputs by more than `tolerance`;
* PGD's accuracy stays above `floor` while another attack leaves `gap` less.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field


class Guarded(str, Enum):
    defended = "defended"  # every defense but `standard`
    all = "all"
    none = "none"


class GuardConfig(BaseModel):
    """`[guard]` in a suite."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: Guarded = Guarded.defended
    n: int = Field(200, ge=1, description="inputs the stronger PGD attacks (the first n of the eval set)")
    steps_factor: int = Field(4, ge=1)
    restarts: int = Field(5, ge=1)
    tolerance: float = Field(0.01, ge=0, le=1, description="accuracy the stronger PGD may remove (1 point)")
    floor: float = Field(0.10, ge=0, le=1, description="PGD accuracy above which other attacks are compared")
    gap: float = Field(0.10, gt=0, le=1, description="how much less accuracy another attack must leave")
    transfer: bool = True

    def applies_to(self, defense: str) -> bool:
        return self.models is Guarded.all or (self.models is Guarded.defended and defense != "standard")


@dataclass(frozen=True)
class GuardEvidence:
    """Robust accuracies (fractions) of one model the findings are computed from."""

    eps: float
    pgd_acc: float
    pgd_acc_subset: float
    strong_acc_subset: float  # inputs surviving both the suite's PGD and the stronger one
    fgsm_vs_pgd: dict[float, tuple[float, float]] = field(default_factory=dict)  # ε → (FGSM, PGD)
    others: dict[str, float] = field(default_factory=dict)  # attack → accuracy at `eps`


def masking_findings(evidence: GuardEvidence, config: GuardConfig) -> list[str]:
    """Human-readable reasons to distrust the PGD number; empty when none."""
    findings = [
        f"FGSM beats PGD at ε={eps:g}: {100 * fgsm:.1f}% vs {100 * pgd:.1f}%"
        for eps, (fgsm, pgd) in sorted(evidence.fgsm_vs_pgd.items()) if fgsm < pgd
    ]
    drop = evidence.pgd_acc_subset - evidence.strong_acc_subset
    if drop > config.tolerance:
        findings.append(
            f"{config.steps_factor}× steps and {config.restarts} restarts lower accuracy by {100 * drop:.1f} points "
            f"at ε={evidence.eps:g} ({100 * evidence.pgd_acc_subset:.1f}% → {100 * evidence.strong_acc_subset:.1f}%)"
        )
    if evidence.pgd_acc > config.floor:
        findings += [
            f"{attack} leaves {100 * acc:.1f}% against PGD's {100 * evidence.pgd_acc:.1f}% at ε={evidence.eps:g}"
            for attack, acc in sorted(evidence.others.items()) if acc < evidence.pgd_acc - config.gap
        ]
    return findings
