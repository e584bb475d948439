"""The `cascade` attack: AutoAttack-grade verdicts at a small share of its passes (A3, MM, ODI, APGD, Square)."""

from robustinv.attacks.cascade.attack import Cascade
from robustinv.attacks.cascade.config import CascadeConfig

__all__ = ["Cascade", "CascadeConfig"]
