"""The spread measure: wrong classes reached and pixel-space distances among the fooling candidates only."""

from __future__ import annotations

import math

import pytest
import torch

from robustinv.measures import MEASURES, CellView, schema
from robustinv.measures.spread import classes_reached, fooled_pairwise_l2


def _view(samples: torch.Tensor, sample_pred: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
          clean_pred: torch.Tensor) -> CellView:
    return CellView(x=x, y=y, x_adv=samples[0], clean_pred=clean_pred, adv_pred=sample_pred[0], clean_features=None,
                    adv_features=None, samples=samples, sample_pred=sample_pred)


def test_classes_reached_counts_distinct_wrong_classes_of_fooling_candidates() -> None:
    pred = torch.tensor([[1, 2, 0], [2, 2, 0], [1, 2, 3]])  # (k=3, N=3)
    fooled = torch.tensor([[True, True, False], [True, True, False], [False, False, True]])
    assert classes_reached(pred, fooled, 4).tolist() == [2, 1, 1]


def test_pairwise_l2_among_fooling_candidates_only() -> None:
    samples = torch.zeros(3, 2, 4)
    samples[1, 0] = 1.0  # input 0: candidates at 0, 1·(1,1,1,1), 0 → distances 2, 0, 2
    samples[2, 1] = 5.0  # input 1: only one candidate fools
    fooled = torch.tensor([[True, True], [True, False], [True, False]])
    values = fooled_pairwise_l2(samples, fooled)
    assert values[0].item() == pytest.approx((2 + 0 + 2) / 3) and math.isnan(values[1].item())


def test_spread_measure_on_a_hand_made_cell() -> None:
    x = torch.zeros(3, 1, 2, 2)
    y = torch.tensor([0, 0, 0])
    clean_pred = torch.tensor([0, 0, 1])  # input 2 is misclassified clean: never counted
    samples = torch.zeros(2, 3, 1, 2, 2)
    samples[0, 0, 0, 0, 0] = 0.3  # input 0: two fooling samples pushing different pixels, to classes 1 and 2
    samples[1, 0, 0, 1, 1] = 0.4
    samples[0, 1, 0, 0, 0] = 0.3  # input 1: two fooling samples along the same pixel, both to class 3
    samples[1, 1, 0, 0, 0] = 0.1
    samples[:, 2] = 0.2
    sample_pred = torch.tensor([[1, 3, 4], [2, 3, 5]])
    found = MEASURES.get("spread").compute(_view(samples, sample_pred, x, y, clean_pred))
    assert found["fooled_classes"] == pytest.approx(1.5)
    assert found["fooled_l2"] == pytest.approx((0.5 + 0.2) / 2)
    assert found["fooled_delta_cos"] == pytest.approx((0.0 + 1.0) / 2)
    assert all(schema()[name].problem(value) is None for name, value in found.items())
    nothing = MEASURES.get("spread").compute(_view(samples, torch.zeros(2, 3, dtype=torch.long), x, y, clean_pred))
    assert all(math.isnan(value) for value in nothing.values())
