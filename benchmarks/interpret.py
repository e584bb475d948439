"""Where attacks move a model's attention: attribution drift and neuron consistency per defense, and explainer GANs.

    python benchmarks/interpret.py [SUITE] [--out DIR] [--explain [--explain-defense D ...] [--n-train N]]

Runs the suite (convnet8 on MNIST trained standard, pgd_at and consistency_at; PGD-40 and the
inverting generator at ε = 0.2), prints per defense and attack the accuracies, attribution drift,
top-10 % IoU, neuron consistency and purity and the drift at each conv layer, then checks Dong et
al.'s ordering under PGD: drift consistency_at < pgd_at < standard, neuron consistency reversed.
With --explain it also trains (or loads) the explainer GANs of the given defenses' models and
prints their tables (the same as `robustinv explain`), writing their files under OUT.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

from robustinv import load_suite, run_suite
from robustinv.interpret.gan import ExplainerRecipe, ExplainMode
from robustinv.jobs.explain import ExplainRequest, explain_model
from robustinv.jobs.explain_outputs import write_explained
from robustinv.records import Explanation, ResultRow
from robustinv.report import write_run
from robustinv.report.explainer import render_explainer
from robustinv.suite import dump_suite

HERE = Path(__file__).resolve().parent
COLUMNS = [("robust", "robust_acc"), ("success", "success_rate"), ("drift", "attribution_drift"),
           ("IoU", "attribution_iou"), ("neurons", "neuron_consistency"), ("purity c", "neuron_purity_clean"),
           ("purity a", "neuron_purity_adv"), ("feat cos", "feature_consistency")]
ORDER = ("consistency_at", "pgd_at", "standard")  # Dong et al.: least drift first


def value(row: ResultRow, name: str) -> float:
    return float(row.measures.get(name, getattr(row, name, math.nan)))


def table(rows: list[ResultRow], explanations: list[Explanation]) -> str:
    header = f"{'defense':15} {'attack':10} {'ε':>4} {'clean':>6} " + " ".join(f"{t:>8}" for t, _ in COLUMNS)
    lines = [header, "-" * len(header)]
    for row in rows:
        cells = " ".join(f"{value(row, key):>8.3f}" for _, key in COLUMNS)
        lines.append(f"{row.defense:15} {row.attack:10} {row.eps:>4g} {row.clean_acc:>6.3f} {cells}")
    lines += ["", "attribution drift per conv layer (1 = shallowest):"]
    for e in explanations:
        lines.append(f"  {e.defense:15} {e.attack:10} " + " ".join(f"{d:.3f}" for d in e.layer_drift))
    return "\n".join(lines)


def ordering(rows: list[ResultRow], attack: str) -> str:
    at = {r.defense: r for r in rows if r.attack == attack}
    if not all(d in at for d in ORDER):
        return f"ordering under {attack}: needs {', '.join(ORDER)}"
    drift = [value(at[d], "attribution_drift") for d in ORDER]
    neurons = [value(at[d], "neuron_consistency") for d in ORDER]
    drift_ok = drift[0] < drift[1] < drift[2]
    neurons_ok = neurons[0] > neurons[1] > neurons[2]
    return (f"under {attack}: drift {' < '.join(f'{d} {v:.3f}' for d, v in zip(ORDER, drift))}: "
            f"{'holds' if drift_ok else 'FAILS'}\n"
            f"under {attack}: neuron consistency {' > '.join(f'{d} {v:.3f}' for d, v in zip(ORDER, neurons))}: "
            f"{'holds' if neurons_ok else 'FAILS'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", nargs="?", type=Path, default=HERE / "interpret.toml")
    parser.add_argument("--out", type=Path, default=Path("reports/interpret"), help="run folder (and explain-*/)")
    parser.add_argument("--explain", action="store_true", help="also the explainer GANs (all three modes)")
    parser.add_argument("--explain-defense", action="append", help="whose model to explain (default: standard)")
    parser.add_argument("--n-train", type=int, default=4000, help="explainer training images")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("art").setLevel(logging.WARNING)

    suite = load_suite(args.suite)
    base_dir = args.suite.resolve().parent
    result = run_suite(suite, base_dir=base_dir)
    write_run(result, dump_suite(suite), args.out)
    rows = [r for r in result.rows if r.attack != "worst_case"]
    print(f"{rows[0].model} on {result.info.dataset}, n={rows[0].n}, attention on {suite.explained} inputs "
          f"({result.info.device}, seed {result.info.seed})")
    print(table(rows, result.explanations))
    for attack in dict.fromkeys(r.attack for r in rows):
        print(ordering(rows, attack))
    for defense in args.explain_defense or (["standard"] if args.explain else []):
        request = ExplainRequest(suite, suite.models[0].name, defense, tuple(ExplainMode), None, args.n_train,
                                 ExplainerRecipe(), base_dir)
        explained = explain_model(request)
        write_explained(explained, args.out / f"explain-{defense}")
        print()
        print(render_explainer(explained.outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main())
