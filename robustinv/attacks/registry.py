"""The attack registry: names → Attack classes (each with its config type)."""

from __future__ import annotations

from robustinv.attacks.base import Attack
from robustinv.registry import Registry

ATTACKS: Registry[type[Attack]] = Registry("attack")
register_attack = ATTACKS.register


def build_attack(config: dict[str, object]) -> Attack:
    """Validate an `[[attacks]]` table with its attack's own config type and build the attack."""
    attack_cls = ATTACKS.get(str(config.get("name")))
    return attack_cls(attack_cls.config_type.model_validate(config))
