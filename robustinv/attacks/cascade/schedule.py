"""What the cascade knows about every input as its rounds run, and the diagnostics it reports.

An input is *alive* while it is classified correctly, no round has broken it and it has not
been discarded. Discarding follows A3 (Liu et al. CVPR 2022): the first APGD round (the screen)
ranks the inputs it leaves by their lowest margin so far; the later rounds attack only the
`keep` share with the smallest margins, and each further round the `narrow` share of those
still alive. The others, whose margin stays far from zero, are discarded and count as robust:
on an adversarially trained MNIST model the inputs only long runs break sit among the smallest
few percent of margins after a 20-step screen.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from robustinv.attacks.cascade.rounds import Tracker


class Schedule:
    """Per-input state over the whole input set (on the CPU), merged from the rounds' chunks."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, clean_logits: torch.Tensor) -> None:
        n = len(x)
        self.n = n
        self.correct = clean_logits.argmax(1) == y
        self.fooled = torch.zeros(n, dtype=torch.bool)
        self.discarded = torch.zeros(n, dtype=torch.bool)
        true = clean_logits.gather(1, y[:, None]).squeeze(1)
        self.margin = true - clean_logits.scatter(1, y[:, None], float("-inf")).amax(1)
        self.x_adv = x.clone()
        self.log: dict[str, float] = {"clean": self._share(self.correct)}
        self.broken: dict[str, int] = {}
        self.rounds: list[dict[str, Any]] = []
        self.discards: list[dict[str, Any]] = []
        self.iterative_rounds = 0  # APGD rounds so far (screen, untargeted, targeted)
        self.untargeted_rounds = 0

    @property
    def alive(self) -> torch.Tensor:
        return self.correct & ~self.fooled & ~self.discarded

    @property
    def standing(self) -> torch.Tensor:
        """Correct and not broken: alive or discarded."""
        return self.correct & ~self.fooled

    def robust_acc(self) -> float:
        return self._share(self.standing)

    def merge(self, idx: torch.Tensor, tracker: Tracker) -> int:
        """Fold a chunk's round (inputs `idx`) into the state; returns how many it broke."""
        fooled, margin, x_adv = tracker.fooled.cpu(), tracker.margin.cpu(), tracker.x_adv.cpu()
        better = (margin < self.margin[idx]) | fooled
        self.x_adv[idx[better]] = x_adv[better]
        self.margin[idx[better]] = margin[better]
        self.fooled[idx[fooled]] = True
        return int(fooled.sum())

    def finish_round(self, member: str, number: int, attacked: int, broken: int) -> None:
        self.rounds.append({"member": member, "round": number, "attacked": attacked, "broken": broken})
        self.broken[member] = self.broken.get(member, 0) + broken

    def discard(self, keep: float) -> None:
        """Keep the `keep` share of the alive inputs with the smallest margins; discard the rest."""
        alive = self.alive.nonzero().squeeze(1)
        kept = math.ceil(keep * len(alive))
        if kept >= len(alive):
            return
        order = self.margin[alive].argsort(stable=True)
        dropped = alive[order[kept:]]
        self.discarded[dropped] = True
        last = self.rounds[-1] if self.rounds else {"member": "clean", "round": 0}
        self.discards.append({"after": last["member"], "round": last["round"], "inputs": len(dropped),
                              "margin_above": float(self.margin[dropped].min())})

    def diagnostics(self, members: dict[str, int], zero_gradient_share: float,
                    square_sample: dict[str, int] | None) -> dict[str, Any]:
        """JSON-ready: AutoAttack's shape (`log`, `zero_gradient_share`) plus the cascade's own accounting."""
        out: dict[str, Any] = {
            "log": dict(self.log), "zero_gradient_share": zero_gradient_share, "members": dict(members),
            "broken": {member: self.broken.get(member, 0) for member in members}, "rounds": list(self.rounds),
            "discarded": list(self.discards), "discarded_total": int(self.discarded.sum()),
            "discarded_standing": int((self.discarded & self.standing).sum()),
        }
        if square_sample is not None:
            out["square_sample"] = square_sample
        return out

    def _share(self, mask: torch.Tensor) -> float:
        return float(mask.double().mean()) if self.n else 0.0
