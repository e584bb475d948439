"""The cascade attack: an AutoAttack-grade verdict at a small share of AutoAttack's passes.

AutoAttack spends thousands of forward and backward passes on every robust input (APGD-CE,
APGD-T on nine targets, FAB-T, 5,000 Square queries). Published schedules match it for a tenth
of that (A3, Liu et al. CVPR 2022; MM, Gao et al. ICML 2022; ODI, Tashiro et al. 2020). The
cascade follows their principles, Linf or L2, in plain batched torch:

* members run cheapest first (by default one margin FGSM step, a 20-step APGD screen, long
  APGD rounds, long APGD rounds on the top-k wrong classes, then Square), and every input leaves
  the schedule the moment any step breaks it, keeping the first adversarial point found; an
  undefended model costs about three passes per input;
* APGD's step-size schedule with momentum (Croce & Hein 2020), on cross-entropy or the margin,
  each round started by output-diversified steps (ODI); targeted rounds aim at the k most likely
  wrong classes (MM's minimum margin) with a start biased toward that class (A3's adaptive
  direction);
* the screen ranks every input by its lowest margin, and the long rounds attack only the share
  with the smallest margins, narrowing further round by round (A3's online discarding): the
  budget goes where it can still pay off, and a discarded input counts as robust. Long rounds
  rather than many short ones: on adversarially trained MNIST models the last few inputs fall
  to a 100-step APGD run far more often than to five 20-step runs;
* a gradient-free member (Square) on the inputs still alive at the end (the near misses, where
  random search finds what the gradients could not) and on a seeded sample of the discarded ones,
  so gradient masking is still caught: its per-member log has AutoAttack's shape, and the
  zero-gradient share comes free with the first gradient.

Threat model: white-box, untargeted, ‖δ‖ ≤ ε in Linf or L2 on the [0, 1] scale.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from robustinv.attacks.base import Attack, AttackConfig, Candidates
from robustinv.attacks.cascade.config import APGD, APGD_MEMBERS, APGD_T, FGSM, SCREEN, SQUARE, CascadeConfig
from robustinv.attacks.cascade.geometry import random_start
from robustinv.attacks.cascade.losses import cross_entropy, targeted, untargeted, wrong_classes_by_logit
from robustinv.attacks.cascade.rounds import Loss, Tracker, apgd_round, fgsm_round, value_and_grad
from robustinv.attacks.cascade.schedule import Schedule
from robustinv.attacks.cascade.square_member import sample, square_round
from robustinv.attacks.registry import register_attack
from robustinv.runtime import model_device

log = logging.getLogger(__name__)


@register_attack("cascade")
class Cascade(Attack):
    """Cheap members first, every input leaving once broken, discarding far-from-boundary inputs, Square on a sample.

    Capabilities: `step_size_free` (APGD sets its own steps, and restarts, so the guard needs no
    strengthened rerun of it, as for AutoAttack); `iterated` (it repeats gradient steps, so it must
    not leave more than FGSM, and a suite whose only iterated attack it is still gets the guard's
    transfer and ε = 1 checks); not `gradient_free` (its breaks are mostly white-box: counting them
    as gradient-free would turn a strong attack into a masking finding; its Square member speaks
    through the calibrated `log` check instead).
    """

    config_type = CascadeConfig
    config: CascadeConfig
    step_size_free = True
    iterated = True

    def grad_evals(self) -> float:
        """The most input gradients one input can cost: the clean one, FGSM's further steps, every APGD round."""
        c, members = self.config, self.config.members
        evals = 1 + (members[FGSM] - 1 if FGSM in members else 0)
        if SCREEN in members:
            evals += c.odi_steps + members[SCREEN]
        if APGD in members:
            evals += c.restarts * (c.odi_steps + members[APGD])
        if APGD_T in members:
            evals += c.target_classes * (c.odi_steps + members[APGD_T])
        return float(evals)

    def strengthened(self, *, steps_factor: int, restarts: int, label: str) -> AttackConfig | None:
        c = self.config
        members = {m: b * steps_factor if m != SQUARE else b for m, b in c.members.items()}
        return c.model_copy(update={"label": label, "members": members, "restarts": max(c.restarts, restarts),
                                    "keep": 1.0, "narrow": 1.0, "n": None})

    def generate(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, seed: int) -> Candidates:
        c = self.config
        device = model_device(model)
        generator = torch.Generator().manual_seed(seed)
        chunks = range(0, len(x), c.batch_size)
        clean_logits, clean_grads, zero = [], [], 0
        for start in chunks:  # the clean gradient: correctness, FGSM's direction and the zero-gradient check
            xb, yb = x[start:start + c.batch_size].to(device), y[start:start + c.batch_size].to(device)
            logits, _, grad = value_and_grad(model, xb, lambda lg: untargeted(lg, yb, None))
            zero += int((grad.flatten(1).abs().sum(1) == 0).sum())
            clean_logits.append(logits.cpu())
            clean_grads.append(grad.cpu() if FGSM in c.members else grad[:0].cpu())
        logits = torch.cat(clean_logits)
        state = Schedule(x, y, logits)
        wrong = wrong_classes_by_logit(logits, y)
        square_sample = None
        for member, budget in c.members.items():
            if member == FGSM:
                self._fgsm(model, state, x, y, torch.cat(clean_grads), eps, budget, device)
            elif member in APGD_MEMBERS:
                self._apgd(model, state, member, x, y, wrong, eps, budget, generator, device)
            else:
                square_sample = self._square(model, state, x, y, eps, budget, generator, device)
            state.log[member] = state.robust_acc()
            log.debug("cascade %s: robust accuracy %.4f", member, state.log[member])
        share = zero / len(x) if len(x) else 0.0
        return Candidates(state.x_adv[None], diagnostics=state.diagnostics(dict(c.members), share, square_sample))

    def _fgsm(self, model: nn.Module, state: Schedule, x: torch.Tensor, y: torch.Tensor, grads: torch.Tensor,
              eps: float, steps: int, device: torch.device) -> None:
        idx = state.alive.nonzero().squeeze(1)
        broken = 0
        for gi in idx.split(self.config.batch_size):
            tracker = fgsm_round(model, x[gi].to(device), y[gi].to(device), grads[gi].to(device), eps=eps,
                                 norm=self.config.norm, steps=steps, loss=untargeted)
            broken += state.merge(gi, tracker)
        state.finish_round(FGSM, 1, len(idx), broken)

    def _apgd(self, model: nn.Module, state: Schedule, member: str, x: torch.Tensor, y: torch.Tensor,
              wrong: torch.Tensor, eps: float, steps: int, generator: torch.Generator, device: torch.device) -> None:
        c = self.config
        num_classes = wrong.shape[1] + 1
        rounds = {SCREEN: 1, APGD: c.restarts}.get(member, min(c.target_classes, num_classes - 1))
        for number in range(1, rounds + 1):
            loss = targeted if member == APGD_T else self._untargeted_loss(state.untargeted_rounds)
            if state.iterative_rounds:
                state.discard(c.keep if state.iterative_rounds == 1 else c.narrow)
            idx = state.alive.nonzero().squeeze(1)
            noise = torch.rand((len(idx), *x.shape[1:]), generator=generator)
            odi = 2 * torch.rand((len(idx), num_classes), generator=generator) - 1
            target = None
            if member == APGD_T:
                target = wrong[idx, number - 1]
                rows = torch.arange(len(idx))
                # A3's adaptive direction: the start's logit push favours the target over the true class.
                odi[rows, target] = 0.8
                odi[rows, y[idx]] = 0.6 * torch.rand(len(idx), generator=generator) - 0.5
            broken = 0
            for pos in range(0, len(idx), c.batch_size):
                part = slice(pos, pos + c.batch_size)
                gi = idx[part]
                xb, yb = x[gi].to(device), y[gi].to(device)
                tracker = apgd_round(
                    model, xb, yb, random_start(xb, eps, c.norm, noise[part].to(device)), eps=eps, norm=c.norm,
                    steps=steps, loss=loss,
                    target=None if target is None else target[part].to(device), odi=odi[part].to(device),
                    odi_steps=c.odi_steps)
                broken += state.merge(gi, tracker)
            state.finish_round(member, number, len(idx), broken)
            state.iterative_rounds += 1
            state.untargeted_rounds += member != APGD_T

    def _untargeted_loss(self, done: int) -> Loss:
        """The loss of an untargeted round after `done` others: alternating starts with cross-entropy."""
        loss = self.config.loss
        if loss == "alternate":
            loss = "ce" if done % 2 == 0 else "margin"
        return cross_entropy if loss == "ce" else untargeted

    def _square(self, model: nn.Module, state: Schedule, x: torch.Tensor, y: torch.Tensor, eps: float, queries: int,
                generator: torch.Generator, device: torch.device) -> dict[str, int]:
        c = self.config
        alive = state.alive.nonzero().squeeze(1)
        sampled = sample(state.standing & state.discarded, c.square_share, generator)
        idx = torch.cat([alive, sampled]).sort().values
        standing = int(state.standing.sum())
        broken = 0
        for gi in idx.split(c.batch_size):
            seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
            tracker: Tracker = square_round(model, x[gi].to(device), y[gi].to(device), eps=eps, norm=c.norm,
                                            queries=queries, p_init=c.square_p_init, seed=seed)
            broken += state.merge(gi, tracker)
        state.finish_round(SQUARE, 1, len(idx), broken)
        return {"standing": standing, "alive": len(alive), "sampled": len(sampled), "inputs": len(idx),
                "broken": broken}
