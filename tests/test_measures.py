"""The per-cell measure registry: every measure on a hand-made cell, and a new measure as a new results column."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import TINY_SUITE, write_suite
from robustinv.measures import MEASURES, CellView, Measure, measure_cell, register_measure, schema
from robustinv.records.columns import Column
from robustinv.records import COLUMNS, row_from_dict, row_record
from robustinv.records.tables import rows_frame
from robustinv.run import run_suite
from robustinv.suite import load_suite


def view(k: int = 1) -> CellView:
    x = torch.zeros(2, 1, 2, 2)
    x_adv = x.clone()
    x_adv[0, 0, 0, 0] = 0.3  # Linf 0.3, L2 0.3 on the first input; the second untouched
    samples = torch.stack([x_adv + 0.1 * i for i in range(k)])
    y = torch.tensor([0, 1])
    return CellView(x=x, y=y, x_adv=x_adv, clean_pred=y.clone(), adv_pred=torch.tensor([1, 1]),
                    clean_features=torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
                    adv_features=torch.tensor([[0.0, 1.0], [0.0, 1.0]]),
                    samples=samples, sample_pred=torch.tensor([[1, 1]] * k))


def test_every_measure_on_a_hand_made_cell() -> None:
    found = measure_cell(view())
    assert found["max_linf"] == pytest.approx(0.3) and found["mean_linf"] == pytest.approx(0.15)
    assert found["max_l2"] == pytest.approx(0.3) and found["mean_l2"] == pytest.approx(0.15)
    assert found["feature_consistency"] == pytest.approx(0.5)  # cosines 0 and 1
    assert found["candidate_success"] == pytest.approx(0.5) and found["samples_per_input"] == 1
    assert math.isnan(found["diversity_cos"]) and math.isnan(found["diversity_l2"])  # k = 1
    assert math.isnan(found["target_success"])
    assert set(found) == {column for name in MEASURES.names() if not MEASURES.get(name).attention
                          for column in MEASURES.get(name).names}


def test_diversity_needs_several_candidates() -> None:
    found = measure_cell(view(k=2))
    assert found["diversity_l2"] == pytest.approx(0.2)  # the two candidates differ by 0.1 in each of 4 pixels
    assert found["samples_per_input"] == 2


def test_a_measure_returning_other_columns_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(MEASURES._entries, "broken", Measure("broken", (Column("a"),), lambda v: {"b": 1.0}))
    with pytest.raises(ValueError, match="measure 'broken' returned"):
        measure_cell(view())


def test_a_new_measure_is_a_new_results_column(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def margin(cell: CellView) -> dict[str, float]:
        return {"adv_changed": float((cell.adv_pred != cell.clean_pred).double().mean())}

    monkeypatch.setitem(MEASURES._entries, "changed", Measure("changed", (Column("adv_changed"),), margin))
    result = run_suite(load_suite(write_suite(tmp_path, TINY_SUITE)))
    frame = rows_frame(result.rows)
    fixed = [c for c in COLUMNS if c != "measures"]
    measured = ["attribution_drift", "attribution_iou", "neuron_consistency", "neuron_purity_adv",
                 "neuron_purity_clean", "grad_evals", "forward_passes", "backward_passes", "fooled_diversity_cos",
                 "fooled_classes", "fooled_l2", "fooled_delta_cos"]
    assert list(frame.columns[:len(fixed)]) == fixed
    assert sorted(frame.columns[len(fixed):]) == sorted(["adv_changed", *measured])
    attacks = frame[frame["attack"] != "worst_case"]
    assert attacks["adv_changed"].between(0, 1).all() and frame[frame["attack"] == "worst_case"]["adv_changed"].isna().all()
    # The extra column survives the JSON round trip of results.json, checked like any other number.
    row = result.rows[0]
    back = row_from_dict(json.loads(json.dumps(row_record(row)))).measures
    assert back.keys() == row.measures.keys()
    assert all(math.isnan(v) if math.isnan(row.measures[k]) else v == row.measures[k] for k, v in back.items())
    assert set(row.measures) == {"adv_changed", *measured}
    pd.testing.assert_frame_equal(rows_frame([row_from_dict(row_record(r)) for r in result.rows]), frame)


def test_a_measure_that_can_be_negative_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A column declared without bounds takes any finite number: a run with a negative measure writes and reads back."""
    from robustinv.report import load_run, write_run
    from robustinv.suite import dump_suite

    def margin(cell: CellView) -> dict[str, float]:
        return {"adv_margin": -1.25}

    monkeypatch.setitem(MEASURES._entries, "margin", Measure("margin", (Column("adv_margin"),), margin))
    suite = load_suite(write_suite(tmp_path, TINY_SUITE))
    result = run_suite(suite)
    write_run(result, dump_suite(suite), tmp_path / "out")
    stored = load_run(tmp_path / "out")
    assert {row.measures["adv_margin"] for row in stored.rows if row.attack != "worst_case"} == {-1.25}
    bounded = Column("adv_margin", 0.0, 1.0)
    assert bounded.problem(-1.25) == "-1.25 is outside [0, 1]" and Column("adv_margin").problem(-1.25) is None


def test_registering_the_same_measure_again_is_a_no_op_and_another_under_its_name_raises() -> None:
    def twice(cell: CellView) -> dict[str, float]:
        return {"twice": 0.0}

    try:
        first = register_measure("twice", columns=("twice",))(twice)
        assert register_measure("twice", columns=("twice",))(twice) is first  # a module imported again
        assert schema()["twice"] == Column("twice")

        def other(cell: CellView) -> dict[str, float]:
            return {"twice": 1.0}

        with pytest.raises(ValueError, match="registered twice"):
            register_measure("twice", columns=("twice",))(other)
    finally:
        MEASURES._entries.pop("twice", None)
