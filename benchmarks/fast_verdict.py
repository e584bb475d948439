"""Fast verdicts: the `cascade` attack against AutoAttack on the same inputs of the defended LeNet-5 references.

    python benchmarks/fast_verdict.py [--suite SUITE] [--defenses pgd_at consistency_at trades standard]
                                      [--n 1000] [--eps 0.3] [--cascade '{"keep": 0.75}'] [--reuse DIR]

Loads each defense of the suite's first model from the cache (`robustinv.training.prepare_model`,
as `benchmarks/defenses.py` trains them; `--train` trains what is missing), takes the first N
test images and runs AutoAttack (the `autoattack` attack: the reference code) and `cascade` on
them with the suite's seed. Prints, per defense: robust accuracy of each, the inputs where they
disagree (broken by one only, either way), forward and backward passes per input counted on the
model itself (`CheckedModel.counting`), CPU seconds and the ratios. `--reuse DIR` keeps
AutoAttack's per-input outcomes there (keyed by model, inputs, ε and seed), so tuning the cascade
does not rerun it. Targets (issue 24): on each defended reference the cascade leaves at most
AutoAttack + 0.5 point, at ≤ 1/10 of its passes (aim: 1/20) and ≤ 1/5 of its seconds; on the
standard model 0% at ε = 0.3 in ≤ 1/20 of its passes.

The sequential gate on the same models: `benchmarks/sequential_gate.py`.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from robustinv import load_suite
from robustinv.attacks import build_attack
from robustinv.checkpoints import checkpoint_files
from robustinv.data import load_dataset
from robustinv.models.checked import CheckedModel, PassCount
from robustinv.paths import cache_dir
from robustinv.runtime import predict_logits, resolve_device
from robustinv.suite import Suite
from robustinv.training import prepare_model
from robustinv.training.prepare import identify_model

HERE = Path(__file__).resolve().parent
log = logging.getLogger("robustinv.benchmarks")


@dataclass(frozen=True)
class Measured:
    """One attack on one model: per-input outcome, passes counted on the model, CPU and wall seconds."""

    attack: str
    robust: list[bool]
    forward: int
    backward: int
    cpu_seconds: float
    wall_seconds: float
    log: dict[str, float]
    diagnostics: dict[str, Any]

    @property
    def n(self) -> int:
        return len(self.robust)

    @property
    def robust_acc(self) -> float:
        return sum(self.robust) / self.n

    @property
    def passes_per_input(self) -> float:
        return (self.forward + self.backward) / self.n


@dataclass(frozen=True)
class Comparison:
    defense: str
    clean_acc: float
    autoattack: Measured
    cascade: Measured

    @property
    def only_autoattack(self) -> int:
        """Inputs AutoAttack broke and the cascade did not."""
        return sum(c and not a for a, c in zip(self.autoattack.robust, self.cascade.robust))

    @property
    def only_cascade(self) -> int:
        return sum(a and not c for a, c in zip(self.autoattack.robust, self.cascade.robust))


def measure(model: CheckedModel, spec: dict[str, Any], x: torch.Tensor, y: torch.Tensor, eps: float, seed: int,
            clean_correct: torch.Tensor) -> Measured:
    """Run one attack as a suite cell would (`Attack.run`), counting the model's passes and the process's CPU time."""
    attack = build_attack({**spec, "eps": [eps]})
    cpu, wall = time.process_time(), time.perf_counter()
    with model.counting() as meter:
        output = attack.run(model, x, y, eps, seed=seed)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    adv_correct = predict_logits(model, output.x_adv).argmax(1) == y
    count: PassCount = meter.count
    robust = (clean_correct & adv_correct).tolist()
    return Measured(spec["name"], robust, count.forward, count.backward, cpu, wall,
                    dict(output.diagnostics.get("log", {})), output.diagnostics)


def reused(folder: Path | None, key: str) -> Measured | None:
    path = folder / f"{key}.json" if folder is not None else None
    if path is None or not path.is_file():
        return None
    return Measured(**json.loads(path.read_text()))


def keep(folder: Path | None, key: str, measured: Measured) -> None:
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{key}.json").write_text(json.dumps(asdict(measured)))


def compare(suite: Suite, suite_path: Path, defenses: list[str], *, n: int, eps: float, cascade: dict[str, Any],
            reuse: Path | None, allow_training: bool) -> list[Comparison]:
    dataset = load_dataset(suite.dataset.name, suite.dataset.root, download=False)
    spec = suite.models[0]
    device = resolve_device(suite.device.value)
    torch.set_num_threads(suite.threads)  # the cache key holds the thread count the models were trained with
    cache = suite.cache_dir or cache_dir()
    x, y = dataset.x_test[:n], dataset.y_test[:n]
    results = []
    for defense in defenses:
        identity = identify_model(spec, dataset, seed=suite.seed, device=device, cache_dir=cache,
                                  base_dir=suite_path.parent, defense=defense)
        if identity.stem is not None and not checkpoint_files(identity.stem)[0].is_file() and not allow_training:
            raise SystemExit(f"{identity.label} is not in the cache {cache}; train it first "
                             "(python benchmarks/defenses.py) or pass --train")
        model = prepare_model(spec, dataset, seed=suite.seed, device=device, cache_dir=cache,
                              base_dir=suite_path.parent, defense=defense).module
        assert isinstance(model, CheckedModel)
        clean_correct = predict_logits(model, x).argmax(1) == y
        key = f"autoattack-{identity.fingerprint}-n{n}-eps{eps:g}-seed{suite.seed}"
        autoattack = reused(reuse, key)
        if autoattack is None:
            log.info("%s: AutoAttack on %d inputs", identity.label, n)
            autoattack = measure(model, {"name": "autoattack"}, x, y, eps, suite.seed, clean_correct)
            keep(reuse, key, autoattack)
        log.info("%s: cascade on %d inputs", identity.label, n)
        mine = measure(model, {"name": "cascade", **cascade}, x, y, eps, suite.seed, clean_correct)
        results.append(Comparison(defense, float(clean_correct.double().mean()), autoattack, mine))
    return results


def pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.1f}%"


def ratio(part: float, whole: float) -> str:
    return "-" if part <= 0 else f"1/{whole / part:.0f}" if whole >= part else f"{part / whole:.1f}×"


def table(results: list[Comparison], n: int, eps: float) -> str:
    header = (f"{'defense':15} {'clean':>6} {'AA':>6} {'cascade':>7} {'Δ pts':>6} {'AA only':>7} {'casc only':>9} "
              f"{'AA f+b/in':>10} {'casc f+b/in':>11} {'passes':>7} {'AA cpu s':>8} {'casc cpu s':>10} "
              f"{'seconds':>7} {'discarded':>9}")
    lines = [f"MNIST LeNet-5, first {n} test images, ε = {eps:g} (Linf); passes per input: forward + backward images",
             header, "-" * len(header)]
    for r in results:
        a, c = r.autoattack, r.cascade
        passes = ratio(c.passes_per_input, a.passes_per_input)
        lines.append(
            f"{r.defense:15} {pct(r.clean_acc):>6} {pct(a.robust_acc):>6} {pct(c.robust_acc):>7} "
            f"{100 * (c.robust_acc - a.robust_acc):>+6.1f} {r.only_autoattack:>7} {r.only_cascade:>9} "
            f"{a.passes_per_input:>10.0f} {c.passes_per_input:>11.1f} {passes:>7} "
            f"{a.cpu_seconds:>8.0f} {c.cpu_seconds:>10.1f} {ratio(c.cpu_seconds, a.cpu_seconds):>7} "
            f"{c.diagnostics.get('discarded_standing', 0):>9}")
    lines.append("")
    for r in results:
        a, c = r.autoattack, r.cascade
        d = c.diagnostics
        lines.append(f"{r.defense}: AutoAttack {a.forward / a.n:.0f} forward + {a.backward / a.n:.0f} backward "
                     f"per input, log {fmt_log(a.log)}")
        lines.append(f"{'':{len(r.defense)}}  cascade    {c.forward / c.n:.1f} forward + {c.backward / c.n:.1f} "
                     f"backward per input, log {fmt_log(c.log)}, broken {d.get('broken')}, discarded "
                     f"{d.get('discarded_total', 0)} ({d.get('discarded_standing', 0)} standing), "
                     f"Square sample {d.get('square_sample')}")
    return "\n".join(lines)


def fmt_log(entries: dict[str, float]) -> str:
    return ", ".join(f"{member} {100 * acc:.1f}%" for member, acc in entries.items())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, default=HERE / "defenses.toml")
    parser.add_argument("--defenses", nargs="+", default=["pgd_at", "consistency_at", "trades", "standard"])
    parser.add_argument("--n", type=int, default=1000, help="the first N test images")
    parser.add_argument("--eps", type=float, default=0.3)
    parser.add_argument("--cascade", type=json.loads, default={}, help="cascade keys as JSON (its defaults otherwise)")
    parser.add_argument("--reuse", type=Path, help="keep and reuse AutoAttack's outcomes in this folder")
    parser.add_argument("--train", action="store_true", help="train defenses missing from the cache")
    parser.add_argument("--json", type=Path, help="also write every measurement there")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    suite = load_suite(args.suite)
    results = compare(suite, args.suite.resolve(), args.defenses, n=args.n, eps=args.eps, cascade=args.cascade,
                      reuse=args.reuse, allow_training=args.train)
    print(table(results, args.n, args.eps))
    if args.json:
        args.json.write_text(json.dumps([{**asdict(r)} for r in results], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
