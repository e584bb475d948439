"""Wall time of the same suites under each executor, and whether they wrote the same results.

    python benchmarks/executors.py [--suites cells,train,defenses] [--executors serial,process,ray] [--workers N]

`cells` (`executors_cells.toml`) is twelve independent attack cells on one cached model (a
warm-up run trains it first, untimed); `train` (`executors_train.toml`) trains two models, a
standard and a PGD-trained one, then attacks both; `defenses` (`executors_defenses.toml`, MNIST
from ../shared) trains the defenses suite's four models for one epoch each. `train` and
`defenses` start every executor from an empty cache. Each run
is a fresh `robustinv run` process, so the times are what a user waits for, start-up included.
Ratios to serial come from one machine under one load, the only comparison that means anything
on a noisy machine; `same` says whether results.csv matched serial's (timing columns aside).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from robustinv.records import TIMING_COLUMNS

HERE = Path(__file__).resolve().parent
ROBUSTINV = Path(sys.executable).parent / "robustinv"


def run(suite: Path, executor: str, folder: Path, cache: Path, workers: int | None) -> float:
    command = [str(ROBUSTINV), "--quiet", "run", str(suite), "--out", str(folder / "out"),
               "--store", str(folder / "robustinv.db"), "--executor", executor]
    if workers is not None and executor == "process":
        command += ["--workers", str(workers)]
    start = time.perf_counter()
    done = subprocess.run(command, env={**os.environ, "ROBUSTINV_CACHE": str(cache)}, capture_output=True, text=True,
                          check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{suite.name} under {executor} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return seconds


def results(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "out" / "results.csv").drop(columns=sorted(TIMING_COLUMNS))


SUITES = {"cells": ("executors_cells.toml", True), "train": ("executors_train.toml", False),
          "defenses": ("executors_defenses.toml", False)}  # name → (file, shared model cache after a warm-up)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suites", default="cells,train")
    parser.add_argument("--executors", default="serial,process,ray")
    parser.add_argument("--workers", type=int, help="worker processes for `process` (default: one per CPU)")
    args = parser.parse_args()
    executors = args.executors.split(",")
    root = Path(tempfile.mkdtemp(prefix="robustinv-executors-"))
    lines = [f"{'suite':18} {'executor':9} {'wall s':>8} {'× serial':>9} {'same':>5}"]
    try:
        for name in args.suites.split(","):
            file, shared_cache = SUITES[name]
            suite = HERE / file
            cache = root / f"{suite.stem}-cache"
            if shared_cache:
                run(suite, "serial", root / f"{suite.stem}-warmup", cache, None)  # trains the model, untimed
            times: dict[str, float] = {}
            for executor in executors:
                folder = root / f"{suite.stem}-{executor}"
                times[executor] = run(suite, executor, folder, cache if shared_cache else folder / "cache",
                                      args.workers)
                same = results(folder).equals(results(root / f"{suite.stem}-{executors[0]}"))
                ratio = times[executors[0]] / times[executor]
                lines.append(f"{suite.stem:18} {executor:9} {times[executor]:8.1f} {ratio:9.2f} {'yes' if same else 'NO':>5}")
                print(lines[-1], file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
