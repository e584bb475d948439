"""Interpretation maps: Grad-CAM against hand-computed maps, cumulative averaging, drift and neuron consistency."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from robustinv.data import Dataset
from robustinv.interpret import conv_layers, cumulative_maps, depth_indices, explain, normalize_maps
from robustinv.interpret.agreement import (
    attribution_drift, neuron_consistency, spearman, tied_ranks, top_fraction_iou,
)
from robustinv.interpret.gradcam import layer_gradcams


class TwoConv(nn.Module):
    """conv1 (1×1, weight 1) → ReLU → conv2 (1×1, 2 channels, weights 1 and 2) → global mean → linear head."""

    def __init__(self, head: list[list[float]]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 1, 1, bias=False)
        self.conv2 = nn.Conv2d(1, 2, 1, bias=False)
        self.head = nn.Linear(2, len(head), bias=False)
        with torch.no_grad():
            self.conv1.weight.fill_(1.0)
            self.conv2.weight.copy_(torch.tensor([1.0, 2.0]).view(2, 1, 1, 1))
            self.head.weight.copy_(torch.tensor(head))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv2(self.conv1(x).relu()).mean((-2, -1)))


X = torch.tensor([[[[-1.0, 0.0, 1.0], [2.0, 3.0, -2.0], [0.5, 4.0, 1.0]]]])


def test_gradcam_of_a_two_layer_cnn_is_the_hand_computed_map() -> None:
    # Class c's score is Σ_k W_ck · w_k · mean(relu(x)), so at conv2 the channel weights are
    # α_k = W_ck / 9 and the map is relu(Σ_k α_k · w_k · relu(x)) = relu(x) · (Σ_k W_ck w_k) / 9.
    model = TwoConv([[1.0, 0.5], [-1.0, 0.0]])  # Σ W w = 2 for class 0, −1 for class 1
    layers = conv_layers(model, (1, 3, 3))
    assert layers == [model.conv1, model.conv2]
    maps = layer_gradcams(model, X.repeat(2, 1, 1, 1), torch.tensor([0, 1]), layers)
    relu_x = X[0, 0].relu()
    expected = (relu_x - relu_x.min()) / (relu_x.max() - relu_x.min())
    assert torch.allclose(maps[1, 0], expected, atol=1e-6)  # class 0: relu(x), min–max normalized
    assert torch.equal(maps[1, 1], torch.zeros(3, 3))  # class 1: the ReLU leaves nothing
    # conv1's output is x itself; its gradient is (Σ W w / 9) where x > 0, so α = 2·(5/9)/9 > 0:
    # the map is relu(α · x), again relu(x) normalized.
    assert torch.allclose(maps[0, 0], expected, atol=1e-6)


def test_gradcam_upsamples_a_coarse_layer_bilinearly_and_leaves_the_model_mode() -> None:
    model = nn.Sequential(nn.Conv2d(1, 1, 2, stride=2, bias=False), nn.Flatten(), nn.Linear(4, 1, bias=False))
    with torch.no_grad():
        model[0].weight.fill_(0.25)
        model[2].weight.fill_(1.0)
    model.train()
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, :2, :2] = 1.0  # only the top-left 2×2 block is lit: the layer output is [[0.25, 0], [0, 0]]
    maps = layer_gradcams(model, x, torch.tensor([0]), conv_layers(model, (1, 4, 4)))
    assert model.training
    assert maps.shape == (1, 1, 4, 4)
    assert maps[0, 0, 0, 0] == 1.0 and maps[0, 0, 3, 3] == 0.0
    assert bool((maps[0, 0, 0, :].diff() <= 0).all())  # bilinear: falls off smoothly away from the lit block
    assert 0 < float(maps[0, 0, 0, 2]) < 1


def test_conv_layers_follow_the_forward_pass_not_the_registration_order() -> None:
    class Backwards(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.late = nn.Conv2d(4, 4, 3, padding=1)
            self.early = nn.Conv2d(1, 4, 3, padding=1)
            self.head = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.late(self.early(x)).mean((-2, -1)))

    model = Backwards()
    assert conv_layers(model, (1, 8, 8)) == [model.early, model.late]
    assert conv_layers(nn.Sequential(nn.Flatten(), nn.Linear(64, 2)), (1, 8, 8)) == []


def test_cumulative_maps_of_three_hand_made_maps() -> None:
    m0 = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    m1 = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    m2 = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    cumulative = cumulative_maps(torch.stack([m0, m1, m2])[:, None])[:, 0]
    assert torch.equal(cumulative[2], m2)  # the deepest layer alone
    assert torch.allclose(cumulative[1], torch.tensor([[0.0, 1.0], [0.5, 0.0]]))  # (m1 + m2) = [[0, 2], [1, 0]]
    assert torch.allclose(cumulative[0], torch.tensor([[0.5, 1.0], [0.5, 0.0]]))  # sum [[1, 2], [1, 0]]


def test_normalize_maps_scales_each_map_and_zeroes_a_constant_one() -> None:
    maps = torch.stack([torch.tensor([[2.0, 4.0], [6.0, 4.0]]), torch.full((2, 2), 3.0)])
    out = normalize_maps(maps)
    assert torch.allclose(out[0], torch.tensor([[0.0, 0.5], [1.0, 0.5]]))
    assert torch.equal(out[1], torch.zeros(2, 2))


def test_depths_are_evenly_spaced_from_the_shallowest_to_the_deepest() -> None:
    assert depth_indices(8) == list(range(8))
    assert depth_indices(2) == [0, 1]
    assert depth_indices(15) == [0, 2, 4, 6, 8, 10, 12, 14]
    assert depth_indices(1) == [0]


def test_tied_ranks_and_spearman_match_hand_computed_values() -> None:
    assert tied_ranks(torch.tensor([3.0, 1.0, 3.0, 2.0])).tolist() == [2.5, 0.0, 2.5, 1.0]
    a = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert float(spearman(a, a)) == pytest.approx(1.0)
    assert float(spearman(a, -a)) == pytest.approx(-1.0)
    # ranks (0, 1, 2, 3) vs (0, 1.5, 1.5, 3): ρ = 4.5 / sqrt(5 · 4.5)
    b = torch.tensor([[0.0, 1.0], [1.0, 2.0]])
    assert float(spearman(a, b)) == pytest.approx(4.5 / math.sqrt(5 * 4.5), abs=1e-6)
    flat = torch.zeros(2, 2)
    assert float(spearman(flat, flat)) == 1.0 and float(spearman(flat, a)) == 0.0


def test_drift_is_zero_for_the_same_map_and_positive_for_a_shifted_one() -> None:
    torch.manual_seed(0)
    maps = normalize_maps(torch.rand(4, 8, 8))
    assert torch.equal(attribution_drift(maps, maps), torch.zeros(4))
    assert torch.equal(top_fraction_iou(maps, maps), torch.ones(4))
    shifted = maps.roll(3, dims=-1)
    assert bool((attribution_drift(maps, shifted) > 0.1).all())
    assert bool((top_fraction_iou(maps, shifted) < 1).all())


def test_drift_is_zero_when_the_attack_changes_nothing(digits_model: nn.Module, digits: Dataset) -> None:
    x, y = digits.x_test[:16], digits.y_test[:16]
    layers = conv_layers(digits_model, digits.input_shape)
    clean, same = explain(digits_model, x, y, layers), explain(digits_model, x.clone(), y, layers)
    assert torch.equal(attribution_drift(clean.final, same.final), torch.zeros(16))
    noisy = explain(digits_model, (x + 0.3 * torch.randn_like(x)).clamp(0, 1), y, layers)
    assert float(attribution_drift(clean.final, noisy.final).mean()) > 0.05


def test_neuron_consistency_of_hand_made_activations() -> None:
    y = torch.tensor([0, 0, 1, 1, 0, 1, 2, 2, 2, 0])
    clean = torch.arange(10.0)[:, None].repeat(1, 2)  # both channels: input 9 fires most
    clean[:, 1] = torch.arange(10.0).flip(0)  # channel 1: input 0 fires most
    same = neuron_consistency(clean, clean.clone(), y)
    assert same["neuron_consistency"] == 1.0
    assert same["neuron_purity_clean"] == 1.0 and same["neuron_purity_adv"] == 1.0  # k = 1
    swapped = neuron_consistency(clean, clean.flip(1), y)  # the two channels trade their favourite inputs
    assert swapped["neuron_consistency"] == 0.0


def test_neurons_that_never_fire_are_left_out() -> None:
    y = torch.arange(10) % 3
    clean = torch.stack([torch.arange(10.0), torch.zeros(10)], 1)  # channel 1 is dead
    found = neuron_consistency(clean, clean.clone(), y)
    assert found["neuron_consistency"] == 1.0
    assert all(math.isnan(v) for v in neuron_consistency(torch.zeros(10, 2), torch.zeros(10, 2), y).values())
