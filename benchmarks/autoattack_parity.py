"""Does robustinv's `autoattack` row equal a direct call of the reference code on the same inputs and seed?

    python benchmarks/autoattack_parity.py RUN_DIR [--suite SUITE] [--defense pgd_at]

Reads the `autoattack` row of a finished run (its seed, ε, norm, version and `n`), loads the same
model from the cache, and runs `pyautoattack.AutoAttack(...).run_standard_evaluation` on the same
first `n` inputs of the eval set. Prints both robust accuracies, AutoAttack's per-member logs and
the direct call's time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from pyautoattack import AutoAttack

from robustinv import load_suite
from robustinv.attacks.aa_runner import AA_NORMS, run_reference
from robustinv.attacks.base import Norm
from robustinv.training import prepare_model
from robustinv.paths import cache_dir
from robustinv.runtime import resolve_device

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--suite", type=Path, default=HERE / "defenses.toml")
    parser.add_argument("--defense", default="pgd_at")
    args = parser.parse_args()

    rows = json.loads((args.run_dir / "results.json").read_text())["results"]
    row = next(r for r in rows if r["attack"] == "autoattack" and r["defense"] == args.defense)
    config = row["config"]
    suite = load_suite(args.suite)
    spec = next(m for m in suite.models if m.name == row["model"])
    dataset = suite.dataset.model_copy(update={"download": False}).load()
    device = resolve_device(suite.device.value)
    prepared = prepare_model(spec, dataset, seed=suite.seed, device=device, cache_dir=suite.cache_dir or cache_dir(),
                             base_dir=args.suite.resolve().parent, defense=args.defense)
    model = prepared.module.model.eval()  # the plain nn.Module, without robustinv's call checks
    x, y = dataset.eval_subset(suite.dataset.n_eval, suite.seed)
    x, y = x[: row["n"]], y[: row["n"]]

    adversary = AutoAttack(model, norm=AA_NORMS[Norm(config["norm"])], eps=config["eps"], seed=row["seed"],
                           version=config["version"], device=device)
    start = time.perf_counter()
    x_adv, diagnostics = run_reference(adversary, x, y, batch_size=config["batch_size"])
    seconds = time.perf_counter() - start
    with torch.no_grad():
        clean = model(x.to(device)).argmax(1).cpu() == y
        robust = clean & (model(x_adv.to(device)).argmax(1).cpu() == y)
    direct = float(robust.double().mean())
    print(f"{row['model']}[{args.defense}] AutoAttack {config['version']} {config['norm']} ε={config['eps']:g}, "
          f"n={row['n']}, seed {row['seed']}, pyautoattack {config['package_version']}")
    print(f"  robustinv row : robust {100 * row['robust_acc']:.2f}%  log {config['diagnostics']['log']}  "
          f"({row['seconds']:.0f} s)")
    print(f"  direct call   : robust {100 * direct:.2f}%  log {diagnostics.log}  ({seconds:.0f} s)")
    same = direct == row["robust_acc"] and diagnostics.log == config["diagnostics"]["log"]
    print("  equal" if same else "  DIFFERENT")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
