"""Inverting generators on defended models: strength, diversity and throughput at equal gradient cost.

    python benchmarks/defended_generators.py [SUITE] [--defenses pgd_at consistency_at] [--r 0 2 5 10 20]

Runs every attack of the suite on the same images of each (model, defense) and prints, per attack,
its gradient budget per input (`grad_evals`), robust accuracy, single-shot success, the verified
adversarial samples it delivered (candidates that fool the model on inputs it gets right) and on
how many distinct inputs, their diversity (feature cosine on the inputs every attack broke at
least twice; wrong classes reached per broken input; pixel L2 among the fooling samples), and
verified samples per CPU-second. Each refined generator is paired with the same refinement from
uniform random starts (`random-rN`): the draws as starts against random starts at an equal
gradient budget. Then the per-input worst case over all of them, the generator's success against
its refinement steps r and its held-out training curve, and `robustinv generate`'s production
for as long as the reference PGD took, against every PGD row. Ratios come from one run on one
machine, the only comparison that means anything on a noisy one.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from robustinv import load_suite, metrics
from robustinv.attacks import ATTACKS, AttackContext
from robustinv.attacks.inversion import Inversion, InversionConfig
from robustinv.inversion.production import ProductionRequest, produce
from robustinv.inversion.refine import refine
from robustinv.measures.spread import classes_reached, fooled_pairwise_l2
from robustinv.models import PreparedModel
from robustinv.models.features import logits_and_features
from robustinv.run.plan import cell_seed
from robustinv.run.setting import job_model
from robustinv.runtime import predict_logits

HERE = Path(__file__).resolve().parent


@dataclass
class Measured:
    label: str
    grad_evals: float
    fooled: torch.Tensor  # (k, N): candidate fools the model, on inputs it gets right clean
    features: torch.Tensor  # (k, N, d)
    seconds: float
    robust: torch.Tensor  # (N,)
    pred: torch.Tensor  # (k, N)
    l2: float  # mean pairwise pixel L2 among the fooling samples of an input

    @property
    def classes(self) -> float:
        """Wrong classes reached per broken input."""
        broken = self.fooled.any(0)
        return float(classes_reached(self.pred, self.fooled, 10)[broken].double().mean()) if broken.any() else math.nan

    @property
    def verified(self) -> int:
        return int(self.fooled.sum())

    @property
    def per_s(self) -> float:
        return self.verified / self.seconds


def measure(label: str, model: PreparedModel, output, x: torch.Tensor, y: torch.Tensor, correct: torch.Tensor,
            grad_evals: float) -> Measured:
    forward = logits_and_features(model.module, model.name)
    preds, features = [], []
    with torch.no_grad():
        for sample in output.samples:
            logits, phi = forward(sample)
            preds.append(logits.argmax(1))
            features.append(phi.flatten(1))
    pred = torch.stack(preds)
    fooled = (pred != y) & correct
    l2 = fooled_pairwise_l2(output.samples, fooled)
    l2_mean = float(l2[~l2.isnan()].mean()) if (~l2.isnan()).any() else math.nan
    return Measured(label, grad_evals, fooled, torch.stack(features), output.seconds, correct & ~fooled.any(0),
                    pred, l2_mean)


@dataclass
class Drawn:
    samples: torch.Tensor
    seconds: float


def random_starts(config: InversionConfig, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
                  seed: int) -> Drawn:
    """The inversion attack's refinement (same steps, step size, loss and early stop) from uniform random starts."""
    start = time.perf_counter()
    k = config.samples_per_input
    noise = torch.empty(k, *x.shape).uniform_(-eps, eps, generator=torch.Generator().manual_seed(seed))
    samples = refine(model, x, (x[None] + noise).clamp(0, 1), y, eps=eps, steps=config.refine_steps,
                     step_size=config.step_size(eps), batch_size=config.batch_size)
    return Drawn(samples, time.perf_counter() - start)


def pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:6.2f}%"


def run_model(suite, defense: str, r_grid: list[int], base_dir: Path) -> None:
    setting, data, model = job_model(suite, suite.models[0].name, defense, base_dir)
    n = suite.dataset.n_eval
    x, y = data.x_test[:n], data.y_test[:n]
    correct = predict_logits(model.module, x).argmax(1) == y
    context = AttackContext(data.x_train, data.y_train, data.num_classes, model.label, model.fingerprint,
                            data.fingerprint, setting.cache)
    eps = suite.attacks[0].eps[0]
    rows: list[Measured] = []
    inversions: list[tuple[Inversion, int]] = []
    for config in suite.attacks:
        seed = cell_seed(suite.seed, model.name, defense, config.display_name, eps)
        attack = ATTACKS.get(config.name)(config)
        output = attack.run(model.module, x, y, eps, seed=seed, context=context)
        rows.append(measure(config.display_name, model, output, x, y, correct, attack.grad_evals()))
        if isinstance(attack, Inversion):
            inversions.append((attack, seed))
            if attack.config.refine_steps:  # the same refinement from random starts: what the draws add
                output = random_starts(attack.config, model.module, x, y, eps, seed)
                rows.append(measure(f"random-r{attack.config.refine_steps}", model, output, x, y, correct,
                                    attack.grad_evals()))
            if attack.config.refine_steps and attack.config.refine_loss == "margin":  # the same generator, aimed
                aimed = Inversion(config.model_copy(update={"refine_loss": "aimed"}))
                output = aimed.run(model.module, x, y, eps, seed=seed, context=context)
                rows.append(measure(f"{config.display_name}-aimed", model, output, x, y, correct, aimed.grad_evals()))
    reference = rows[0]
    print(f"\n{model.label} on {data.name}, n={n}, ε={eps:g}: clean {pct(float(correct.double().mean()))}")
    both = torch.stack([(m.fooled.sum(0) >= 2) for m in rows]).all(0)
    header = f"{'attack':22} {'grad/in':>7} {'robust':>8} {'per-cand':>8} {'verified':>8} {'inputs':>6} " \
             f"{'div cos':>7} {'div same':>8} {'classes':>7} {'pix L2':>6} {'seconds':>8} {'verified/s':>10} {'× ref':>6}"
    print(header + "\n" + "-" * len(header))
    for m in rows:
        over_all = metrics.fooled_pairwise_cosine(m.features, m.fooled)
        same = metrics.fooled_cosine_per_input(m.features, m.fooled)[both].mean() if both.any() else math.nan
        print(f"{m.label:22} {m.grad_evals:7.0f} {pct(float(m.robust.double().mean())):>8} "
              f"{pct(float(m.fooled[:, correct].double().mean())):>8} {m.verified:8d} {int(m.fooled.any(0).sum()):6d} "
              f"{over_all:7.3f} {float(same):8.3f} {m.classes:7.2f} {m.l2:6.2f} {m.seconds:8.1f} {m.per_s:10.2f} "
              f"{m.per_s / reference.per_s:6.1f}")
    worst = torch.stack([m.robust for m in rows]).all(0)
    print(f"worst case over these attacks: {pct(float(worst.double().mean()))}; "
          f"'div same' is over the {int(both.sum())} inputs every attack broke at least twice")
    for attack, seed in inversions:
        training = attack.training
        curve = ", ".join(f"{step}: {100 * rate:.1f}%" for step, rate in training.curve)
        print(f"{attack.config.display_name}: held-out single-shot success by training step {curve} "
              f"(kept step {training.kept_step}, {training.seconds:.0f}s)")
        if r_grid:
            refinement_curve(attack, seed, model, context, x, y, correct, eps, r_grid)
        pgd_rows = [m for m, config in zip(rows, _labels(suite, rows)) if config == "pgd"]
        production(attack, seed, model, data, x, y, eps, budget=reference.seconds, references=pgd_rows or [reference])


def refinement_curve(attack: Inversion, seed: int, model: PreparedModel, context: AttackContext, x, y, correct,
                     eps: float, r_grid: list[int]) -> None:
    """The same generator (cached: r is not part of its key), its draws refined by r steps."""
    print(f"  {'loss':>6} {'r':>3} {'grad/in':>7} {'robust':>8} {'per-cand':>8} {'inputs':>6} {'div cos':>7} "
          f"{'seconds':>8} {'verified/s':>10}")
    for loss in ("margin", "aimed"):
        for r in r_grid:
            if r == 0 and loss == "aimed":
                continue  # no refinement, nothing to aim
            variant = Inversion(attack.config.model_copy(update={"refine_steps": r, "refine_loss": loss}))
            output = variant.run(model.module, x, y, eps, seed=seed, context=context)
            m = measure(f"r={r}", model, output, x, y, correct, variant.grad_evals())
            print(f"  {loss:>6} {r:3d} {m.grad_evals:7.0f} {pct(float(m.robust.double().mean())):>8} "
                  f"{pct(float(m.fooled[:, correct].double().mean())):>8} {int(m.fooled.any(0).sum()):6d} "
                  f"{metrics.fooled_pairwise_cosine(m.features, m.fooled):7.3f} {m.seconds:8.1f} {m.per_s:10.2f}")


def _labels(suite, rows: list[Measured]) -> list[str]:
    """The attack name behind each measured row (rows the script adds take their generator's)."""
    names = {a.display_name: a.name for a in suite.attacks}
    return [names.get(m.label, "derived") for m in rows]


def production(attack: Inversion, seed: int, model: PreparedModel, data, x, y, eps: float, *, budget: float,
               references: list[Measured]) -> None:
    """`robustinv generate`'s shards on the same images for as long as the reference attack took."""
    config = attack.config
    request = ProductionRequest(suite="bench", model=model.name, model_fingerprint=model.fingerprint,
                                attack=config.display_name, generator_key="bench", eps=eps, targeted=config.targeted,
                                n=10**9, shard_size=250, seed=seed, refine_steps=config.refine_steps,
                                refine_step_size=config.step_size(eps), refine_aimed=config.refine_loss == "aimed",
                                refine_jitter=config.refine_jitter)

    class Enough(Exception):
        pass

    start = time.perf_counter()
    seen: set[int] = set()
    shards = 0

    def stop_when_spent(shard: int, done: bool) -> None:
        nonlocal shards
        shards += 1
        if time.perf_counter() - start >= budget:
            raise Enough

    with tempfile.TemporaryDirectory() as folder:
        try:
            produce(request, attack.generator, model.module, x, y, Path(folder), tau=config.train.tau,
                    batch_size=config.batch_size, on_shard=stop_when_spent)
        except Enough:
            pass
        seconds = time.perf_counter() - start
        for csv in Path(folder).glob("shard-*.csv"):
            seen.update(pd.read_csv(csv)["source_index"].tolist())
    verified = shards * request.shard_size
    print(f"  generate ({config.refine_steps} refine steps): {verified} verified samples of {len(seen)} distinct "
          f"inputs in {seconds:.0f}s = {verified / seconds:.1f}/s")
    for reference in references:
        print(f"    {reference.label} in {reference.seconds:.0f}s: {reference.verified} of "
              f"{int(reference.fooled.any(0).sum())} inputs = {reference.per_s:.2f}/s "
              f"(generate: {verified / seconds / reference.per_s:.1f}×)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", nargs="?", type=Path, default=HERE / "defended_generators.toml")
    parser.add_argument("--defenses", nargs="+", help="which of the model's defenses (default: all)")
    parser.add_argument("--r", nargs="*", type=int, default=[0, 2, 5], help="refinement steps to sweep (none: no sweep)")
    parser.add_argument("--only", nargs="+", metavar="LABEL", help="run only these attacks of the suite (the first is the reference)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("art").setLevel(logging.WARNING)
    suite = load_suite(args.suite)
    if args.only:
        labels = [a.display_name for a in suite.attacks]
        unknown = sorted(set(args.only) - set(labels))
        if unknown:
            raise SystemExit(f"no attack labelled {', '.join(unknown)}; the suite's: {', '.join(labels)}")
        suite = suite.model_copy(update={"attacks": [a for a in suite.attacks if a.display_name in args.only]})
    torch.set_num_threads(suite.threads)
    if not isinstance(suite.attacks[-1], InversionConfig):
        raise SystemExit("the suite's attacks end with the inversion attacks")
    for defense in args.defenses or suite.models[0].defenses:
        run_model(suite, defense, args.r, args.suite.resolve().parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
