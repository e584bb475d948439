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


# Rows over different inputs are compared on the inputs both saw ------------------------------------

def _outcomes(*pairs: tuple[ResultRow, list[int]]) -> dict:  # type: ignore[type-arg]
    import numpy as np

    from robustinv.judge.outcomes import row_key

    return {row_key(row): np.array(mask, dtype=bool) for row, mask in pairs}


def test_an_attack_on_a_subset_agreeing_there_with_one_on_all_inputs_is_not_flagged() -> None:
    """PGD on the first 3 inputs leaves 0% there, as FGSM does, although FGSM leaves 26% over all 100."""
    fgsm = replace(BASE, n=100, robust_acc=0.26)
    pgd = _pgd(n=3, robust_acc=0.0)
    fgsm_mask = [0, 0, 0] + [1] * 26 + [0] * 71
    rows = check_rows([fgsm, pgd], _outcomes((fgsm, fgsm_mask), (pgd, [0, 0, 0])))
    assert [row.flags for row in rows] == [(), ()]
    assert check_rows([fgsm, pgd])[1].flags == ()  # from a file, rows over other inputs are not compared at all


def test_an_attack_on_a_subset_truly_weaker_there_is_flagged() -> None:
    fgsm = replace(BASE, n=100, robust_acc=0.26)
    pgd = _pgd(n=3, robust_acc=2 / 3)
    rows = check_rows([fgsm, pgd], _outcomes((fgsm, [0, 0, 0] + [1] * 26 + [0] * 71), (pgd, [1, 1, 0])))
    assert rows[1].flags == (Flag.pgd_weaker_than_fgsm.value,)


def test_accuracy_rising_with_eps_is_judged_on_the_shared_inputs() -> None:
    small = replace(BASE, n=10, robust_acc=0.5)
    large = replace(BASE, eps=0.3, n=4, robust_acc=0.75, max_linf=0.3)  # 75% of its 4 inputs, above 50% of 10 …
    agree = check_rows([small, large], _outcomes((small, [1, 1, 1, 0] + [0] * 6), (large, [1, 1, 1, 0])))
    assert agree[1].flags == ()  # … but on those 4 the smaller ε also left 75%
    rises = check_rows([small, large], _outcomes((small, [1, 0, 0, 0] + [1] * 4 + [0] * 2), (large, [1, 1, 1, 0])))
    assert rises[1].flags == (Flag.acc_rises_with_eps.value,)
