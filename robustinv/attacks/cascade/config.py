"""The suite keys of the `cascade` attack: which members run, in what order, with what budget.

```toml
[[attacks]]
name = "cascade"
eps = [0.3]
members = { fgsm = 1, screen = 20, apgd = 100, apgd-t = 100, square = 1000 }   # member = budget, in order
```

A member's budget is its steps: `fgsm` k projected steps of size 2.5·ε/k from the clean input
(k = 1 is FGSM); `screen` one short untargeted APGD round on every input still standing, whose
margins decide where the later rounds are spent; `apgd` (untargeted, `restarts` rounds) and
`apgd-t` (one round per target class) APGD iterations per round; `square` queries per sampled
input. The other keys say how the rounds are spent (restarts, targets, starts, discarding,
Square's sample).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from robustinv.attacks.base import AttackConfig

FGSM, SCREEN, APGD, APGD_T, SQUARE = "fgsm", "screen", "apgd", "apgd-t", "square"
MEMBERS = (FGSM, SCREEN, APGD, APGD_T, SQUARE)
GRADIENT_MEMBERS = (FGSM, SCREEN, APGD, APGD_T)
APGD_MEMBERS = (SCREEN, APGD, APGD_T)
DEFAULT_MEMBERS = {FGSM: 1, SCREEN: 20, APGD: 100, APGD_T: 100, SQUARE: 1000}


class CascadeConfig(AttackConfig):
    """`[[attacks]] name = "cascade"`: cheap members first, each input leaving once broken (see `cascade.attack`)."""

    name: Literal["cascade"] = "cascade"
    members: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_MEMBERS),
                                    description="member → budget, in the order they run")
    loss: Literal["ce", "margin", "alternate"] = Field(
        "ce", description="the untargeted APGD rounds' loss: cross-entropy (AutoAttack's APGD-CE), the C&W margin "
        "(ODI's and A3's), or alternate: cross-entropy in odd rounds (the screen's), the margin in even ones")
    restarts: int = Field(1, ge=1, description="rounds of the untargeted APGD member, each from a new start")
    target_classes: int = Field(3, ge=1, description="apgd-t: the k most likely wrong classes, one round each")
    odi_steps: int = Field(2, ge=0, description="output-diversified steps that start every APGD round")
    keep: float = Field(0.2, gt=0, le=1, description="share of the inputs standing after the first APGD round "
                        "(the screen), smallest margins first, that the later rounds attack; the rest are discarded "
                        "and count as robust")
    narrow: float = Field(0.7, gt=0, le=1, description="share of the kept inputs, smallest margins first, that "
                          "each further round attacks")
    square_share: float = Field(0.1, gt=0, le=1, description="share of the discarded inputs Square attacks, a "
                                "seeded sample (it attacks every input still alive too)")
    square_p_init: float = Field(0.8, gt=0, le=1, description="Square: initial fraction of pixels a square covers")

    @field_validator("members", mode="before")
    @classmethod
    def _no_bool_budget(cls, members: object) -> object:
        if isinstance(members, dict):
            for member, budget in members.items():
                if isinstance(budget, bool):
                    raise ValueError(f"{member}: a budget is a whole number of steps or queries, got {budget!r}")
        return members

    @field_validator("members")
    @classmethod
    def _known_members(cls, members: dict[str, int]) -> dict[str, int]:
        if not members:
            raise ValueError(f"no members: name at least one of {', '.join(MEMBERS)}")
        for member, budget in members.items():
            if member not in MEMBERS:
                raise ValueError(f"unknown member {member!r}; the members are {', '.join(MEMBERS)}")
            if budget < 1:
                raise ValueError(f"{member}: a budget must be at least 1 (got {budget}); leave the member out "
                                 "instead")
        if SQUARE in members and list(members)[-1] != SQUARE:
            raise ValueError("square must come last: it checks a sample of what the gradient members left")
        return members

    @property
    def gradient_members(self) -> list[str]:
        return [member for member in self.members if member in GRADIENT_MEMBERS]
