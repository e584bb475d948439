"""Defended references side by side: clean, FGSM, PGD-40, AutoAttack, inversion and worst-case accuracy per defense.

    python benchmarks/defenses.py [SUITE] [--out DIR] [--curves [--curve-n N]]

Runs the suite (its executor trains, or loads from the cache, every defense of its first model;
with --curves they are trained one by one first, recording robust accuracy after each epoch,
PGD-40, step 0.01, on N test images), and prints the
comparison at the largest ε: accuracies, the per-input worst case with its 95% interval, the
ε = 1 check, feature consistency under PGD, training and AutoAttack minutes, flags, and the
worst case's findings and notes.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from robustinv import load_suite, run_suite
from robustinv.training import prepare_model
from robustinv.paths import cache_dir
from robustinv.records import ResultRow
from robustinv.report import write_run
from robustinv.runtime import resolve_device
from robustinv.suite import dump_suite
from robustinv.training.inner import linf_pgd, uniform_start

HERE = Path(__file__).resolve().parent
log = logging.getLogger("robustinv.benchmarks")


def pct(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


class Curve:
    """Clean and PGD-40 accuracy after every epoch, on fixed test images."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, eps: float) -> None:
        self.x, self.y, self.eps = x, y, eps
        self.points: list[tuple[int, float, float]] = []

    def __call__(self, epoch: int, model: nn.Module) -> None:
        torch.manual_seed(epoch)
        x_adv = linf_pgd(model, self.x, lambda logits: F.cross_entropy(logits, self.y), eps=self.eps, steps=40,
                         step_size=0.01, start=uniform_start(self.x, self.eps))
        with torch.no_grad():
            model.eval()
            clean = float((model(self.x).argmax(1) == self.y).double().mean())
            robust = float(((model(x_adv).argmax(1) == self.y) & (model(self.x).argmax(1) == self.y)).double().mean())
            model.train()
        self.points.append((epoch, clean, robust))
        log.info("  epoch %d: clean %s, PGD-40 %s (ε=%g, %d test images)", epoch, pct(clean), pct(robust),
                 self.eps, len(self.y))


def comparison(rows: list[ResultRow], eps: float) -> str:
    columns = [("FGSM", "fgsm"), ("PGD-40", "pgd"), ("AA", "autoattack"), ("guard", "pgd-guard"),
               ("transfer", "pgd-transfer"), ("inversion", "inversion"), ("worst", "worst_case")]
    header = (f"{'defense':16} {'clean':>7} " + " ".join(f"{title:>9}" for title, _ in columns)
              + f" {'worst 95% CI':>13} {'ε=1 PGD':>8} {'feat cos':>8} {'train min':>9} {'AA min':>7}  flags")
    lines = [f"ε = {eps:g}", header, "-" * len(header)]
    for defense in dict.fromkeys(r.defense for r in rows):
        own = [r for r in rows if r.defense == defense]
        at = {r.attack: r for r in own if r.eps == eps}
        unbounded = next((r for r in own if r.attack.endswith("-unbounded")), None)
        pgd, worst, aa = at.get("pgd"), at.get("worst_case"), at.get("autoattack")
        any_row = pgd or next(iter(at.values()))
        flags = sorted({f for r in at.values() for f in r.flags})
        interval = "-" if worst is None else "–".join(pct(v) for v in worst.interval("robust_acc"))
        cells = " ".join(f"{pct(at[key].robust_acc if key in at else None):>9}" for _, key in columns)
        lines.append(
            f"{defense:16} {pct(any_row.clean_acc):>7} {cells} {interval:>13} "
            f"{pct(unbounded.robust_acc if unbounded else None):>8} "
            f"{(f'{pgd.feature_consistency:.3f}' if pgd else '-'):>8} {any_row.model_train_seconds / 60:>9.1f} "
            f"{(f'{aa.seconds / 60:.1f}' if aa else '-'):>7}  {','.join(flags) or '-'}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", nargs="?", type=Path, default=HERE / "defenses.toml")
    parser.add_argument("--out", type=Path, help="also write results.csv / results.json there")
    parser.add_argument("--curves", action="store_true",
                        help="train the models one by one first, recording a robust-accuracy curve per epoch "
                             "(otherwise the suite's executor trains them in parallel, without curves)")
    parser.add_argument("--curve-n", type=int, default=500, help="test images for the per-epoch curve")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("art").setLevel(logging.WARNING)

    suite = load_suite(args.suite)
    base_dir = args.suite.resolve().parent
    dataset = suite.dataset.load()
    spec = suite.models[0]
    device = resolve_device(suite.device.value)
    curves = {}
    torch.set_num_threads(suite.threads)  # train as the run's cells do: the model cache key holds the thread count
    for defense in spec.defenses if args.curves else []:
        curve = Curve(dataset.x_test[: args.curve_n].to(device), dataset.y_test[: args.curve_n].to(device),
                      spec.adversarial.eps)
        prepare_model(spec, dataset, seed=suite.seed, device=device, cache_dir=suite.cache_dir or cache_dir(),
                      base_dir=base_dir, defense=defense, on_epoch=curve)
        curves[defense] = curve.points

    result = run_suite(suite, base_dir=base_dir)
    if args.out:
        write_run(result, dump_suite(suite), args.out)
    rows = [r for r in result.rows if r.model == spec.name]
    print(f"{spec.name} on {result.info.dataset}, n={rows[0].n} ({result.info.device}, seed {result.info.seed})")
    print(comparison(rows, max(r.eps for r in rows if r.attack == "worst_case")))
    print("\nrobust accuracy per epoch (PGD-40, step 0.01, first training run only; cached models have none):")
    for defense, points in curves.items():
        if points:
            print(f"  {defense:16} " + "  ".join(f"e{e}: {pct(c)}/{pct(r)}" for e, c, r in points))
    for r in rows:
        if r.attack == "worst_case":
            for text in (*r.config.get("findings", ()), *r.config.get("notes", ())):
                print(f"{r.defense} ε={r.eps:g}: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
