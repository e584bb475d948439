"""The gradient-masking guard: tell a model that hides its gradients from an attack that has not converged.

A defended model that only hides its gradients looks robust to gradient attacks and falls to
anything that does not need them. A stronger attack finding a few more adversarial examples on
an honest model is something else: the weaker attack had not converged. The first is a flag
that fails a release gate; the second is folded into the per-input worst case and shown as a
note on the strongest single white-box attack ("pgd not converged: the worst case is 3.2 points
lower").

`masking_findings` turns evidence at one ε into reasons to flag it `masking?`, the signatures
of Carlini et al. ("On Evaluating Adversarial Robustness") and of AutoAttack's checks:

* FGSM leaves less accuracy than PGD;
* gradient-free or transfer attacks alone break more than `gap` of the inputs, inputs that
  every white-box attack missed;
* an ε = 1 Linf PGD, which may repaint the whole image, leaves more than `unbounded_max`;
* AutoAttack's calibrated zero-gradient, randomness or Square checks fire.

For guarded models the runner adds evidence that costs attacks of its own on the first `n`
inputs: the stronger PGD (`steps_factor`× the steps, `restarts` random restarts; skipped when
the suite runs a step-size-free APGD, AutoAttack's, at that ε), the transfer attack (the
suite's PGD examples crafted on a standard model) and the unbounded PGD.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from enum import Enum

from pydantic import Field

from robustinv.config import Config
from robustinv.judge.worst_case import WorstCase

UNBOUNDED_EPS = 1.0  # Linf ε that lets an attack replace the whole image


class Guarded(str, Enum):
    defended = "defended"  # every defense but `standard`
    all = "all"
    none = "none"


class GuardConfig(Config):
    """`[guard]` in a suite."""

    models: Guarded = Guarded.defended
    n: int = Field(200, ge=1, description="inputs the guard's own attacks see (the first n of the eval set)")
    steps_factor: int = Field(4, ge=1)
    restarts: int = Field(5, ge=1)
    tolerance: float = Field(0.01, ge=0, le=1, description="gap to the worst case above which an attack gets a note")
    gap: float = Field(0.05, gt=0, le=1, description="share of inputs only gradient-free or transfer attacks broke")
    unbounded_max: float = Field(0.05, ge=0, le=1, description="accuracy an ε = 1 Linf PGD may leave")
    transfer: bool = True

    def applies_to(self, defense: str) -> bool:
        return self.models is Guarded.all or (self.models is Guarded.defended and defense != "standard")


@dataclass(frozen=True)
class GuardEvidence:
    """What the findings at one ε of one model are computed from (accuracies and shares are fractions)."""

    eps: float
    fgsm_vs_pgd: tuple[float, float] | None = None  # (FGSM, PGD) at `eps`
    gradient_free_only: float = 0.0  # share of inputs only gradient-free or transfer attacks broke
    gradient_free_attacks: tuple[str, ...] = ()
    unbounded_acc: float | None = None  # what an ε = 1 Linf PGD left
    reference_flags: dict[str, list[str]] = field(default_factory=dict)  # attack → AutoAttack masking flags


def masking_findings(evidence: GuardEvidence, config: GuardConfig) -> list[str]:
    """Human-readable reasons to distrust the robust accuracy at `evidence.eps`; empty when none."""
    findings = []
    if evidence.fgsm_vs_pgd is not None and evidence.fgsm_vs_pgd[0] < evidence.fgsm_vs_pgd[1]:
        fgsm, pgd = evidence.fgsm_vs_pgd
        findings.append(f"FGSM beats PGD at ε={evidence.eps:g}: {100 * fgsm:.1f}% vs {100 * pgd:.1f}%")
    if evidence.gradient_free_only > config.gap:
        findings.append(
            f"{' and '.join(evidence.gradient_free_attacks)} alone broke {100 * evidence.gradient_free_only:.1f}% "
            f"of the inputs at ε={evidence.eps:g}, inputs every white-box attack missed (more than "
            f"{100 * config.gap:g}%)"
        )
    if evidence.unbounded_acc is not None and evidence.unbounded_acc > config.unbounded_max:
        findings.append(
            f"an ε = {UNBOUNDED_EPS:g} Linf PGD, free to repaint the whole image, leaves "
            f"{100 * evidence.unbounded_acc:.1f}% accuracy (more than {100 * config.unbounded_max:g}%)"
        )
    findings += [
        f"{attack}: AutoAttack's check {', '.join(flags)}" for attack, flags in sorted(evidence.reference_flags.items())
    ]
    return findings


def convergence_notes(worst: WorstCase, white_box: Collection[str], *, tolerance: float) -> list[str]:
    """The strongest single white-box attack, if it leaves clearly more than the worst case on the same inputs.

    That attack has not converged; it is not masking. (A one-step FGSM leaving more is no news,
    so only the strongest is asked.)
    """
    entries = [entry for entry in worst.log if entry.attack in white_box]
    if not entries:
        return []
    strongest = min(entries, key=lambda entry: entry.attack_acc)
    gap = strongest.attack_acc - worst.robust_acc
    if gap <= tolerance:
        return []
    return [f"{strongest.attack} not converged: the worst case is {100 * gap:.1f} points lower"]
