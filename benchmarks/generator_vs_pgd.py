"""Inverting generator vs ART PGD on the same model, images and ε: success, diversity, throughput.

    python benchmarks/generator_vs_pgd.py [SUITE] [--out DIR]

Prints one line per attack and the figures that decide between them: the inversion/PGD
throughput ratio and the break-even number of samples, beyond which training a generator and
sampling it is cheaper than running PGD for every sample. Ratios come from one run (one machine,
one load), which is the only comparison that means anything on a noisy machine.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

from robustinv import load_suite, run_suite
from robustinv.records import ResultRow
from robustinv.suite import dump_suite

HERE = Path(__file__).resolve().parent


def pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:6.2f}%"


def num(value: float, spec: str) -> str:
    return "-" if math.isnan(value) else format(value, spec)


def table(rows: list[ResultRow]) -> str:
    header = f"{'attack':20} {'k':>2} {'robust':>8} {'success':>8} {'per-draw':>8} {'target hit':>10} {'div cos':>8} " \
             f"{'div L2':>7} {'samples/s':>10} {'gen s':>8} {'train s':>8}"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r.attack:20} {r.samples_per_input:>2} {pct(r.robust_acc):>8} {pct(r.success_rate):>8} "
                     f"{pct(r.candidate_success):>8} "
                     f"{pct(r.target_success):>10} {num(r.diversity_cos, '.3f'):>8} {num(r.diversity_l2, '.2f'):>7} "
                     f"{r.samples_per_s:>10.1f} {r.seconds:>8.2f} {r.train_seconds:>8.1f}")
    return "\n".join(lines)


def break_even(generator: ResultRow, pgd: ResultRow) -> float:
    """Samples N at which train + N / rate_gen = N / rate_pgd."""
    saving = 1 / pgd.samples_per_s - 1 / generator.samples_per_s
    return generator.train_seconds / saving if saving > 0 else math.inf


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", nargs="?", type=Path, default=HERE / "inversion.toml")
    parser.add_argument("--out", type=Path, help="also write results.csv / results.json / targets there")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("art").setLevel(logging.WARNING)

    suite = load_suite(args.suite)
    result = run_suite(suite, base_dir=args.suite.resolve().parent)
    if args.out:
        from robustinv.report import write_run

        write_run(result, dump_suite(suite), args.out)
    for model in dict.fromkeys(r.model for r in result.rows):
        rows = [r for r in result.rows if r.model == model]
        print(f"\n{model} on {rows[0].dataset}, n={rows[0].n}, ε={rows[0].eps:g} ({result.info.device})")
        print(table(rows))
        pgd = next((r for r in rows if r.config["name"] == "pgd"), None)
        for generator in (r for r in rows if r.config["name"] == "inversion"):
            if pgd is None:
                break
            ratio = generator.samples_per_s / pgd.samples_per_s
            diversity = "lower (more diverse)" if generator.diversity_cos < pgd.diversity_cos else "NOT lower"
            print(f"{generator.attack}: {ratio:.0f}× PGD's samples/s; diversity_cos {diversity} than {pgd.attack}; "
                  f"break-even after {break_even(generator, pgd):,.0f} samples (training {generator.train_seconds:.0f}s)")
        flagged = [r for r in rows if r.flags]
        if flagged:
            print("sanity flags: " + "; ".join(f"{r.attack}: {','.join(r.flags)}" for r in flagged))
    for key in dict.fromkeys((c.model, c.attack) for c in result.targets):
        cells = [c for c in result.targets if (c.model, c.attack) == key and not math.isnan(c.success_rate)]
        mean = sum(c.success_rate for c in cells) / len(cells)
        print(f"{key[0]}/{key[1]}: targeted success averaged over {len(cells)} (true, target) pairs: {100 * mean:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
