"""Sanity flags on hand-made rows."""

from __future__ import annotations

from dataclasses import replace

from robustinv.records import ResultRow
from robustinv.judge.sanity import Flag, check_rows

BASE = ResultRow(
    run_id="r", dataset="d", model="m", defense="standard", attack="fgsm", norm="linf", eps=0.1, n=10, clean_acc=0.9,
    robust_acc=0.5, success_rate=0.4, mean_linf=0.1, max_linf=0.1, mean_l2=1.0, max_l2=1.0, seconds=1.0,
    samples_per_s=10.0, train_seconds=0.0, samples_per_input=1, candidate_success=0.4, diversity_cos=float("nan"),
    diversity_l2=float("nan"), target_success=float("nan"), feature_consistency=float("nan"), flags=(), config={"name": "fgsm", "capabilities": ["single_step"]}, seed=0,
    model_fingerprint="f", dataset_fingerprint="g", model_source="trained", model_train_seconds=0.0,
)


def _pgd(**changes: object) -> ResultRow:
    return replace(BASE, attack="pgd", config={"name": "pgd", "capabilities": ["iterated"]}, **changes)  # type: ignore[arg-type]


def test_honest_rows_have_no_flags() -> None:
    rows = check_rows([BASE, replace(BASE, eps=0.2, robust_acc=0.2, max_linf=0.2), _pgd(robust_acc=0.3)])
    assert all(row.flags == () for row in rows)


def test_robust_above_clean() -> None:
    (row,) = check_rows([replace(BASE, robust_acc=0.95)])
    assert Flag.robust_above_clean.value in row.flags


def test_perturbation_beyond_eps_is_flagged_per_norm() -> None:
    linf, l2 = check_rows([replace(BASE, max_linf=0.1 + 1e-4), replace(BASE, attack="x", norm="l2", eps=2.0, max_l2=2.1)])
    assert Flag.norm_above_eps.value in linf.flags
    assert Flag.norm_above_eps.value in l2.flags
    (within,) = check_rows([replace(BASE, max_linf=0.1 + 5e-7)])
    assert within.flags == ()


def test_pgd_weaker_than_fgsm() -> None:
    rows = check_rows([BASE, _pgd(robust_acc=0.6)])
    assert rows[0].flags == ()
    assert rows[1].flags == (Flag.pgd_weaker_than_fgsm.value,)


def test_accuracy_rising_with_eps() -> None:
    rows = check_rows([BASE, replace(BASE, eps=0.2, robust_acc=0.2, max_linf=0.2),
                       replace(BASE, eps=0.3, robust_acc=0.4, max_linf=0.3)])
    assert [row.flags for row in rows] == [(), (), (Flag.acc_rises_with_eps.value,)]
    assert Flag.acc_rises_with_eps.explanation
