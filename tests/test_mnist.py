"""Real data: the shipped MNIST benchmark trains LeNet-5 and breaks it as the literature says."""

from __future__ import annotations

import sys

import pytest

from robustinv import parse_suite, run_suite

from conftest import REPO, needs_shared

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

BENCHMARK = REPO / "benchmarks" / "mnist.toml"


@pytest.mark.slow
@needs_shared
def test_mnist_benchmark_lenet5() -> None:
    data = tomllib.loads(BENCHMARK.read_text())
    # The benchmark's recipe and attacks, cut to what the test needs: one epoch (the benchmark trains
    # three, 99.0% clean), 500 inputs, PGD at the headline ε only (the benchmark sweeps 0.1–0.3).
    data["models"][0]["train"]["epochs"] = 1
    data["dataset"]["n_eval"] = 500
    data["n_explain"] = 0
    pgd = next(a for a in data["attacks"] if a["name"] == "pgd")
    pgd["eps"] = [0.3]
    result = run_suite(parse_suite(data, source=BENCHMARK), base_dir=BENCHMARK.parent)

    rows = {(row.attack, row.eps): row for row in result.rows}
    assert rows[("fgsm", 0.1)].clean_acc >= 0.97
    assert rows[("pgd", 0.3)].robust_acc <= 0.02
    fgsm = [rows[("fgsm", eps)].robust_acc for eps in (0.1, 0.2, 0.3)]
    assert fgsm[0] > fgsm[1] > fgsm[2]
    assert rows[("pgd", 0.3)].robust_acc <= rows[("fgsm", 0.3)].robust_acc
    assert all(row.flags == () for row in result.rows), [row.flags for row in result.rows]
