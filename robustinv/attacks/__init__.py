"""Attacks: one per file, registered in `ATTACKS`."""

from robustinv.attacks import fgsm, pgd  # noqa: F401  (fill the registry)
from robustinv.attacks.base import Attack, AttackConfig, AttackOutput, Norm
from robustinv.attacks.registry import ATTACKS, build_attack

__all__ = ["ATTACKS", "Attack", "AttackConfig", "AttackOutput", "Norm", "build_attack"]
