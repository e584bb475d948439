"""Inverting generators: shapes and ε bounds, label codes, loss terms, training, mass production."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from robustinv.attacks.inversion import Inversion, InversionConfig
from robustinv.data import Dataset
from robustinv.inversion import losses
from robustinv.inversion.encoding import hot_matrix, rotating_targets, soft_codes
from robustinv.inversion.generator import FreeGenerator, InversionError, PerturbGenerator
from robustinv.inversion.production import ProductionRequest, produce, shard_paths
from robustinv.inversion.recipe import GeneratorRecipe
from robustinv.inversion.trainer import held_out_success, train_perturb_generator
from robustinv.metrics import pairwise_cosine, pairwise_l2, target_matrix

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 12, 20)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("hot", [False, True])
def test_generators_shapes_and_bounds(shape: tuple[int, int, int], hot: bool) -> None:
    torch.manual_seed(0)
    n, k = 5, 10
    codes = soft_codes(torch.arange(n) % k, k, tau=0.2)
    noise = torch.randn(n, 16)
    x = torch.rand(n, *shape)
    perturb = PerturbGenerator(shape, k, use_hot_matrix=hot)
    with torch.no_grad():  # a random, untrained generator with its output pushed to the extremes
        perturb.out.bias.fill_(5.0)
        x_adv = perturb(x, codes, noise, 0.1)
    assert x_adv.shape == x.shape
    assert float((x_adv - x).abs().max()) <= 0.1 + 1e-6
    assert float((x_adv - x).abs().max()) > 0.05
    assert 0.0 <= float(x_adv.min()) and float(x_adv.max()) <= 1.0
    with torch.no_grad():
        image = FreeGenerator(shape, k, use_hot_matrix=hot)(codes, noise)
    assert image.shape == x.shape and 0.0 <= float(image.min()) and float(image.max()) <= 1.0


def test_a_saturated_generator_moves_every_pixel_by_eps_and_still_learns() -> None:
    torch.manual_seed(0)
    generator = PerturbGenerator((1, 8, 8), 10, saturate=True)
    with torch.no_grad():
        generator.out.weight.normal_()
    x = torch.full((3, 1, 8, 8), 0.5)
    x_adv = generator(x, soft_codes(torch.tensor([1, 2, 3]), 10, tau=0.2), torch.randn(3, 16), 0.1)
    assert torch.allclose((x_adv - x).abs(), torch.full_like(x, 0.1))
    x_adv.sum().backward()
    assert generator.out.weight.grad is not None and float(generator.out.weight.grad.abs().sum()) > 0


@pytest.mark.parametrize("shape", [(1, 10, 10), (2, 8, 8), (1, 2, 2)])
def test_unsupported_shapes_are_refused(shape: tuple[int, int, int]) -> None:
    with pytest.raises(InversionError, match="divisible by 4"):
        PerturbGenerator(shape, 10)


def test_dropout_makes_every_draw_different() -> None:
    torch.manual_seed(0)
    generator = PerturbGenerator((1, 8, 8), 10, dropout=0.5).train()
    with torch.no_grad():
        generator.out.weight.normal_()
    x, codes, noise = torch.rand(1, 1, 8, 8), soft_codes(torch.tensor([3]), 10, tau=0.2), torch.zeros(1, 16)
    assert not torch.equal(generator(x, codes, noise, 0.3), generator(x, codes, noise, 0.3))


def test_soft_codes_hide_the_label() -> None:
    targets = torch.arange(10).repeat(20)
    codes = soft_codes(targets, 10, tau=0.5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(codes.argmax(1), targets)
    assert torch.allclose(codes.sum(1), torch.ones(len(targets)))
    assert float(codes.max(1).values.min()) < 0.99, "codes must be soft, not one-hot"
    assert len({round(float(c), 4) for c in codes[targets == 3, 3]}) > 10, "one label, many codes"


def test_rotating_targets_cover_every_wrong_class() -> None:
    y = torch.tensor([0, 4, 9])
    draws = torch.stack([rotating_targets(y, 10, d) for d in range(9)])
    assert not (draws == y).any()
    assert all(len(set(draws[:, i].tolist())) == 9 for i in range(3))


def test_hot_matrix_marks_row_and_column() -> None:
    grid = hot_matrix(torch.tensor([2]), 4, (4, 4))[0, 0]
    assert grid[2].sum() == 4 and grid[:, 2].sum() == 4 and grid.sum() == 7


def test_cosine_term() -> None:
    assert float(losses.cosine_diversity(torch.eye(4))) == pytest.approx(0.0)
    assert float(losses.cosine_diversity(torch.ones(4, 3))) == pytest.approx(1.0)
    grouped = torch.cat([torch.ones(2, 3), torch.eye(3)[:2]])  # group 1 identical, group 2 orthogonal
    assert float(losses.cosine_diversity(grouped, groups=2)) == pytest.approx(0.5)


def test_kl_ce_margin_orthogonality_terms() -> None:
    codes = torch.tensor([[0.7, 0.2, 0.1]])
    assert float(losses.kl_term(codes, codes.log())) == pytest.approx(0.0, abs=1e-6)
    assert float(losses.kl_term(codes, torch.tensor([[0.0, 5.0, 0.0]]))) > 1.0
    logits = torch.tensor([[1.0, 4.0, 2.0]])
    assert float(losses.ce_term(logits, torch.tensor([1]))) < float(losses.ce_term(logits, torch.tensor([0])))
    # targeted at class 1: it already leads by 2, so the hinge is -2 (clamped at -κ = -1 here)
    assert float(losses.margin_term(logits, torch.tensor([1]), targeted=True, kappa=5)) == pytest.approx(-2.0)
    assert float(losses.margin_term(logits, torch.tensor([1]), targeted=True, kappa=1)) == pytest.approx(-1.0)
    # untargeted with true class 1: the true class leads by 2, so the hinge is +2
    assert float(losses.margin_term(logits, torch.tensor([1]), targeted=False, kappa=5)) == pytest.approx(2.0)
    assert float(losses.orthogonality(torch.eye(3))) == pytest.approx(0.0)
    assert float(losses.orthogonality(torch.ones(3, 3))) > 0.4


def test_topk_hinge_spreads_the_margin_over_the_likeliest_wrong_classes() -> None:
    logits = torch.tensor([[4.0, 3.0, 1.0, 0.0], [0.0, 5.0, 2.0, 1.0]])
    y = torch.tensor([0, 0])
    plain = losses.margin_term(logits, y, targeted=False, kappa=10)
    assert float(losses.margin_term(logits, y, targeted=False, kappa=10, topk=1)) == float(plain)
    # gaps to the two likeliest wrong classes: (4−3, 4−1) = (1, 3) and (0−5, 0−2) = (−5, −2)
    assert torch.equal(losses.topk_gaps(logits, y, targeted=False, topk=2), torch.tensor([[1.0, 3.0], [-5.0, -2.0]]))
    assert float(losses.margin_term(logits, y, targeted=False, kappa=10, topk=2)) == pytest.approx((1 + 3 - 5 - 2) / 4)
    assert float(losses.margin_term(logits, y, targeted=False, kappa=3, topk=2)) == pytest.approx((1 + 3 - 3 - 2) / 4)
    # targeted at class 2: z_j − z_t for the two likeliest others
    assert torch.equal(losses.topk_gaps(logits, torch.tensor([2, 2]), targeted=True, topk=2),
                       torch.tensor([[3.0, 2.0], [3.0, -1.0]]))
    assert losses.topk_gaps(logits, y, targeted=False, topk=9).shape == (2, 3), "at most K − 1 other classes"


def test_eps_curriculum_and_which_recipe_fields_enter_the_key() -> None:
    curriculum = GeneratorRecipe(steps=100, eps_start=2.0, eps_ramp=0.5)
    assert [curriculum.eps_at(0.3, step) for step in (1, 26, 51, 100)] == pytest.approx([0.6, 0.45, 0.3, 0.3])
    assert GeneratorRecipe(steps=10).eps_at(0.3, 1) == 0.3
    default = GeneratorRecipe()
    added = {"topk", "eps_start", "eps_ramp", "distill", "distill_steps", "distill_images", "start_steps", "schedule",
             "saturate"}
    assert set(default.model_dump()) - set(default.key_record()) == added, "unused new fields leave the key as it was"
    for change in ({"topk": 3}, {"eps_start": 1.5}, {"distill": 1.0}, {"start_steps": 2}, {"schedule": "cosine"}):
        assert set(change) <= set(default.model_copy(update=change).key_record())


def test_diversity_and_target_metrics() -> None:
    same = torch.ones(3, 2, 4)
    assert pairwise_cosine(same) == pytest.approx(1.0) and pairwise_l2(same) == 0.0
    orthogonal = torch.eye(3)[:, None, :].expand(3, 2, 3)
    assert pairwise_cosine(orthogonal) == pytest.approx(0.0)
    assert pairwise_l2(orthogonal) == pytest.approx(2**0.5)
    assert torch.isnan(torch.tensor(pairwise_cosine(torch.ones(1, 2, 4))))
    y = torch.tensor([0, 1])
    targets = torch.tensor([[1, 0], [2, 2]])  # (k=2, N=2)
    pred = torch.tensor([[1, 1], [0, 2]])
    counts, rates = target_matrix(y, pred, targets, 3)
    assert counts[0, 1] == 1 and counts[0, 2] == 1 and counts[1, 0] == 1 and counts[1, 2] == 1
    assert rates[0, 1] == 1.0 and rates[0, 2] == 0.0 and rates[1, 0] == 0.0 and rates[1, 2] == 1.0
    assert torch.isnan(rates[2, 0])


def test_k_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="samples_per_input"):
        InversionConfig(eps=[0.1], samples_per_input=0)
    with pytest.raises(ValueError, match="Linf"):
        InversionConfig(eps=[0.5], norm="l2")


TINY = GeneratorRecipe(steps=120, batch_size=32, eval_every=1000)


@pytest.fixture(scope="module")
def trained(digits_model: torch.nn.Module, digits: Dataset) -> PerturbGenerator:
    generator, _ = train_perturb_generator(digits_model, digits.x_train, digits.y_train, 10, eps=0.3,
                                           targeted=False, recipe=TINY, seed=0)
    return generator


def test_training_beats_an_untrained_generator(
    trained: PerturbGenerator, digits_model: torch.nn.Module, digits: Dataset
) -> None:
    torch.manual_seed(0)
    untrained = PerturbGenerator(digits.input_shape, 10)
    args = (digits_model, digits.x_test, digits.y_test, 10)
    before = held_out_success(untrained, *args, eps=0.3, targeted=False, recipe=TINY, seed=1)
    after = held_out_success(trained, *args, eps=0.3, targeted=False, recipe=TINY, seed=1)
    assert after > before + 0.3, (before, after)


def _request(n: int = 90, shard_size: int = 40) -> ProductionRequest:
    return ProductionRequest(suite="s", model="m", model_fingerprint="f", attack="inversion", generator_key="g",
                             eps=0.3, targeted=False, n=n, shard_size=shard_size, seed=0)


def test_generate_resumes_after_interruption(
    tmp_path: Path, trained: PerturbGenerator, digits_model: torch.nn.Module, digits: Dataset
) -> None:
    args = (trained, digits_model, digits.x_test, digits.y_test)
    produce(_request(), *args, tmp_path / "whole", tau=TINY.tau, batch_size=64)

    class Stop(Exception):
        pass

    def stop_after_first(shard: int, done: bool) -> None:
        if shard == 0:
            raise Stop

    with pytest.raises(Stop):
        produce(_request(), *args, tmp_path / "cut", tau=TINY.tau, batch_size=64, on_shard=stop_after_first)
    assert shard_paths(tmp_path / "cut", 0)[1].exists() and not shard_paths(tmp_path / "cut", 1)[0].exists()
    seen: list[tuple[int, bool]] = []
    produced = produce(_request(), *args, tmp_path / "cut", tau=TINY.tau, batch_size=64,
                       on_shard=lambda shard, done: seen.append((shard, done)))
    assert (produced.written_shards, produced.written_samples, produced.samples) == (2, 50, 90)
    assert seen == [(0, True), (1, False), (2, False)]
    for shard, size in enumerate((40, 40, 10)):
        whole, cut = (load_file(str(shard_paths(tmp_path / d, shard)[0])) for d in ("whole", "cut"))
        assert len(whole["x_adv"]) == size
        assert all(torch.equal(whole[key], cut[key]) for key in whole)
        fooled = whole["predicted"] != whole["true_label"]
        assert bool(fooled.all()) and float(whole["linf"].max()) <= 0.3 + 1e-6
    sources = {int(i) for s in range(3) for i in load_file(str(shard_paths(tmp_path / "cut", s)[0]))["source_index"]}
    assert produced.distinct_inputs == len(sources)
    records = (tmp_path / "whole" / "shard-00002.csv").read_text().splitlines()
    assert records[0] == "source_index,true_label,target,predicted,confidence,linf" and len(records) == 11


def test_generate_refuses_a_folder_of_another_request(
    tmp_path: Path, trained: PerturbGenerator, digits_model: torch.nn.Module, digits: Dataset
) -> None:
    from robustinv.errors import RobustinvError

    args = (trained, digits_model, digits.x_test, digits.y_test)
    produce(_request(n=10, shard_size=10), *args, tmp_path, tau=TINY.tau)
    with pytest.raises(RobustinvError, match="another request .*n"):
        produce(_request(n=20, shard_size=10), *args, tmp_path, tau=TINY.tau)


def test_attack_without_training_data_is_refused(digits_model: torch.nn.Module, digits: Dataset) -> None:
    from robustinv.errors import RobustinvError

    with pytest.raises(RobustinvError, match="training data"):
        Inversion(InversionConfig(eps=[0.1])).run(digits_model, digits.x_test[:4], digits.y_test[:4], 0.1, seed=0)
