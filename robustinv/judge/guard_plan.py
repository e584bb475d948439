"""What the gradient-masking guard adds to a run: its own attacks, chosen by capability, never by name.

The guard checks the suite's `iterated` Linf attack at its largest ε (PGD): it runs a
`strengthened` copy of it (more steps, random restarts) unless a `step_size_free` attack
(AutoAttack's APGD) already runs at that ε, replays the attack's examples crafted on a standard
surrogate (transfer), and runs an ε = 1 PGD that should break everything. See `robustinv.judge.guard`
for what the evidence means.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from robustinv.attacks import Attack, AttackConfig, Norm
from robustinv.attacks.pgd import PgdConfig
from robustinv.judge.guard import UNBOUNDED_EPS, GuardConfig
from robustinv.records import GUARD_SUFFIXES

log = logging.getLogger(__name__)

GUARD, TRANSFER, UNBOUNDED = GUARD_SUFFIXES


@dataclass(frozen=True)
class GuardPlan:
    """The attack under check, at `eps`, and the guard's attacks on the first `n` inputs of guarded models."""

    reference: AttackConfig
    eps: float
    strong: AttackConfig | None  # None when a step-size-free attack at `eps` replaces it
    unbounded: AttackConfig
    n: int

    @property
    def transfer_label(self) -> str:
        return f"{self.reference.display_name}{TRANSFER}"


def guard_plan(config: GuardConfig, attacks: list[Attack], defenses: list[str], n_eval: int) -> GuardPlan | None:
    """None when no model is guarded or the suite has no iterated Linf attack to check."""
    if not any(config.applies_to(defense) for defense in defenses):
        return None
    checked = [a for a in attacks if a.iterated and not a.gradient_free and a.config.norm is Norm.linf]
    if not checked:
        log.warning("guard: the suite has no iterated Linf attack (PGD) to check; guarded models get no guard rows")
        return None
    reference = max(checked, key=lambda a: max(a.config.eps))  # the first of them with the largest ε
    eps = max(reference.config.eps)
    label = reference.config.display_name
    replaced = any(a.step_size_free and a.config.norm is Norm.linf and eps in a.config.eps for a in attacks)
    strong = None if replaced else reference.strengthened(
        steps_factor=config.steps_factor, restarts=config.restarts, label=f"{label}{GUARD}")
    if strong is not None:
        strong = strong.model_copy(update={"eps": [eps]})
    batch_size = reference.config.batch_size
    unbounded = PgdConfig(eps=[UNBOUNDED_EPS], label=f"{label}{UNBOUNDED}", steps=20, step_size=0.1,
                          batch_size=batch_size)
    return GuardPlan(reference.config, eps, strong, unbounded, min(config.n, n_eval))
