"""The sequential gate on the defended LeNet-5 references: how many inputs a verdict needs.

    python benchmarks/sequential_gate.py [--defenses pgd_at consistency_at trades] [--n-eval 1000]
                                         [--offset 0.05] [--confidence 0.95] [--batch 50] [--keep DIR]

Per defense, through the CLI as a CI job would run it (`robustinv run SUITE --gate POLICY`):

1. the reference: `cascade` and the gradient-masking guard on all `--n-eval` inputs, no gate;
   its worst case at ε = 0.3 is W;
2. two gated runs with a `[sequential]` policy whose one rule is `robust_acc >= bound` on the
   worst case at ε = 0.3: bound = W − offset (must pass) and W + offset (must fail).

Each run gets a store and folder of its own, so none reuses another's cells and the seconds are
what a fresh CI runner pays. Prints exit codes, the inputs each verdict needed, its anytime-valid
bounds and the wall seconds against the reference run's. The models come from the cache that
`benchmarks/defenses.py` fills (same recipe, seed and threads as `benchmarks/defenses.toml`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import tomli_w

HERE = Path(__file__).resolve().parent
EPS = 0.3


@dataclass(frozen=True)
class Gated:
    bound: float
    exit_code: int
    seconds: float
    n: int
    outcome: str
    decided_after: int | None


def suite_text(defense: str, n_eval: int) -> str:
    """`defenses.toml`'s data, model and training recipe; `cascade` and the guard as the attacks."""
    reference = tomllib.loads((HERE / "defenses.toml").read_text())
    dataset = {**reference["dataset"], "root": str((HERE / reference["dataset"]["root"]).resolve()), "n_eval": n_eval}
    model = reference["models"][0]
    return tomli_w.dumps({
        "name": f"sequential-{defense}", "seed": reference["seed"], "threads": reference["threads"],
        "dataset": dataset,
        "models": [{"name": model["name"], "defenses": [defense], "train": model["train"],
                    "adversarial": model["adversarial"]}],
        "attacks": [{"name": "cascade", "eps": [EPS]}],
        "guard": {"models": "defended", "n": n_eval},
    })


def policy_text(bound: float, confidence: float, batch: int) -> str:
    return tomli_w.dumps({"sequential": {"confidence": confidence, "batch": batch},
                          "rules": [{"metric": "robust_acc", "attack": "worst_case", "eps": EPS,
                                     "min": round(bound, 4)}]})


def robustinv(*args: str) -> tuple[int, float]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "robustinv.cli", "--quiet", *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"robustinv {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return done.returncode, seconds


def worst_case(out: Path) -> tuple[float, int]:
    rows = json.loads((out / "results.json").read_text())["results"]
    row = next(r for r in rows if r["attack"] == "worst_case" and r["eps"] == EPS)
    return row["robust_acc"], row["n"]


def gate_outcome(out: Path) -> tuple[str, int | None]:
    outcome = json.loads((out / "gate.json").read_text())["outcomes"][0]
    return outcome["reason"], outcome.get("decided_after")


def measure(defense: str, work: Path, args: argparse.Namespace) -> tuple[float, int, float, list[Gated]]:
    suite = work / f"{defense}.toml"
    suite.write_text(suite_text(defense, args.n_eval))
    reference = work / f"{defense}-reference"
    _, seconds = robustinv("run", str(suite), "--out", str(reference), "--store", str(work / f"{defense}-ref.db"))
    w, n = worst_case(reference)
    gated = []
    for sign, name in ((-1, "below"), (1, "above")):
        bound = w + sign * args.offset
        policy = work / f"{defense}-{name}.toml"
        policy.write_text(policy_text(bound, args.confidence, args.batch))
        out = work / f"{defense}-{name}"
        code, took = robustinv("run", str(suite), "--gate", str(policy), "--out", str(out),
                               "--store", str(work / f"{defense}-{name}.db"))
        reason, decided = gate_outcome(out)
        gated.append(Gated(bound, code, took, worst_case(out)[1], reason, decided))
    return w, n, seconds, gated


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--defenses", nargs="+", default=["pgd_at", "consistency_at", "trades"])
    parser.add_argument("--n-eval", type=int, default=1000)
    parser.add_argument("--offset", type=float, default=0.05, help="bounds W ± offset")
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--keep", type=Path, help="keep the suites, policies and run folders here")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="sequential-gate-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"cascade + guard at ε = {EPS}, [sequential] confidence {args.confidence}, batch {args.batch}; "
          f"reference W = the worst case on {args.n_eval} inputs")
    header = (f"{'defense':15} {'W':>6} {'ref s':>6} {'bound':>6} {'exit':>4} {'inputs':>6} {'seconds':>7} "
              f"{'of ref':>6}  verdict")
    print(header)
    print("-" * len(header))
    for defense in args.defenses:
        w, n, seconds, gated = measure(defense, work, args)
        for g in gated:
            print(f"{defense:15} {100 * w:>5.1f}% {seconds:>6.0f} {100 * g.bound:>5.1f}% {g.exit_code:>4} {g.n:>6} "
                  f"{g.seconds:>7.0f} {g.seconds / seconds:>6.2f}  {g.outcome}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
