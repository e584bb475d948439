"""Attacks: one per file, registered in `ATTACKS`."""

from robustinv.attacks import apgd, autoattack, cascade, fab, fgsm, inversion, pgd, square  # noqa: F401  (fill the registry)
from robustinv.attacks.base import Attack, AttackConfig, AttackContext, AttackOutput, Candidates, Norm
from robustinv.attacks.registry import ATTACKS, build_attack, register_attack

__all__ = [
    "ATTACKS", "Attack", "AttackConfig", "AttackContext", "AttackOutput", "Candidates", "Norm", "build_attack",
    "register_attack",
]
