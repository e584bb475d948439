"""The attack registry: names → Attack classes (each with its config type)."""

from __future__ import annotations

from collections.abc import Callable

from robustinv.attacks.base import Attack
from robustinv.registry import Registry

ATTACKS: Registry[type[Attack]] = Registry("attack")


def register_attack(name: str) -> Callable[[type[Attack]], type[Attack]]:
    """Register an `Attack` subclass under `name`: what suites write as `[[attacks]] name = ...`.

    The gate reads an attack's capabilities without importing it: give the name and capabilities
    a line in `robustinv.judge.derived.ATTACK_CAPABILITIES` too (a test checks the two agree).
    """
    return ATTACKS.register(name)


def build_attack(config: dict[str, object]) -> Attack:
    """Validate an `[[attacks]]` table with its attack's own config type and build the attack."""
    attack_cls = ATTACKS.get(str(config.get("name")))
    return attack_cls(attack_cls.config_type.model_validate(config))
