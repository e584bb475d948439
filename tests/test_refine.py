"""Generator-seeded refinement, gradient budgets, the diversity of fooling samples, early-stopped training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from robustinv import metrics
from robustinv.attacks.base import AttackContext
from robustinv.attacks.fgsm import Fgsm, FgsmConfig
from robustinv.attacks.inversion import Inversion, InversionConfig
from robustinv.attacks.pgd import Pgd, PgdConfig
from robustinv.data import Dataset
from robustinv.inversion.cached import GeneratorSource, cached_generator
from robustinv.inversion.generator import InversionError, PerturbGenerator
from robustinv.inversion.production import ProductionRequest, produce, shard_paths
from robustinv.inversion.recipe import GeneratorRecipe
from robustinv.inversion.losses import margin_gap
from robustinv.inversion.refine import refine
from robustinv.inversion.trainer import held_out_success, train_perturb_generator
from robustinv.runtime import predict_logits

EPS = 0.15


def _fooled(model: torch.nn.Module, samples: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.stack([predict_logits(model, s).argmax(1) != y for s in samples])


def _random_starts(x: torch.Tensor, k: int, eps: float, seed: int = 0) -> torch.Tensor:
    noise = torch.empty(k, *x.shape).uniform_(-eps, eps, generator=torch.Generator().manual_seed(seed))
    return (x[None] + noise).clamp(0, 1)


def test_margin_is_negative_exactly_when_the_sample_succeeds() -> None:
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    labels = torch.tensor([0, 0])
    assert margin_gap(logits, labels, targeted=False).tolist() == [2.0, -2.0]
    assert margin_gap(logits, torch.tensor([2, 2]), targeted=True).tolist() == [3.0, 1.0]


def test_refinement_stays_in_the_ball_and_breaks_more_inputs(digits_model: torch.nn.Module, digits: Dataset) -> None:
    x, y = digits.x_test[:200], digits.y_test[:200]
    starts = _random_starts(x, 3, EPS)
    refined = refine(digits_model, x, starts, y, eps=EPS, steps=10, step_size=EPS / 4)
    assert refined.shape == starts.shape
    assert float((refined - x[None]).abs().max()) <= EPS + 1e-6
    assert 0.0 <= float(refined.min()) and float(refined.max()) <= 1.0
    before, after = _fooled(digits_model, starts, y), _fooled(digits_model, refined, y)
    assert float(after.double().mean()) > float(before.double().mean()) + 0.2, (before.double().mean(), after.double().mean())
    assert torch.equal(refine(digits_model, x, starts, y, eps=EPS, steps=0, step_size=0.1), starts)


def test_refinement_leaves_draws_that_already_fool_alone(digits_model: torch.nn.Module, digits: Dataset) -> None:
    x, y = digits.x_test[:200], digits.y_test[:200]
    starts = refine(digits_model, x, _random_starts(x, 2, EPS), y, eps=EPS, steps=3, step_size=EPS / 2)
    already = _fooled(digits_model, starts, y)
    assert bool(already.any()) and not bool(already.all())
    refined = refine(digits_model, x, starts, y, eps=EPS, steps=5, step_size=EPS / 4)
    assert torch.equal(refined[already], starts[already])
    assert not torch.equal(refined[~already], starts[~already])


def test_targeted_refinement_moves_draws_into_their_targets(digits_model: torch.nn.Module, digits: Dataset) -> None:
    x, y = digits.x_test[:200], digits.y_test[:200]
    targets = torch.stack([(y + 1) % 10, (y + 5) % 10])
    starts = _random_starts(x, 2, 0.3)
    refined = refine(digits_model, x, starts, targets, eps=0.3, steps=20, step_size=0.03, targeted=True)
    hits = lambda s: torch.stack([predict_logits(digits_model, d).argmax(1) for d in s]) == targets  # noqa: E731
    assert float(hits(refined).double().mean()) > float(hits(starts).double().mean()) + 0.3


def test_refinement_restores_the_models_mode(digits_model: torch.nn.Module, digits: Dataset) -> None:
    digits_model.train()
    try:
        refine(digits_model, digits.x_test[:4], digits.x_test[:4][None], digits.y_test[:4], eps=EPS, steps=1,
               step_size=0.01)
        assert digits_model.training
    finally:
        digits_model.eval()


def test_gradient_budgets_per_input() -> None:
    assert Pgd(PgdConfig(eps=[0.1], steps=40, restarts=2)).grad_evals() == 80
    assert Fgsm(FgsmConfig(eps=[0.1])).grad_evals() == 1
    assert Inversion(InversionConfig(eps=[0.1], samples_per_input=8, refine_steps=10)).grad_evals() == 80
    assert Inversion(InversionConfig(eps=[0.1], samples_per_input=8)).grad_evals() == 0


def test_refine_step_size_defaults_to_madrys_rule_and_is_recorded() -> None:
    config = InversionConfig(eps=[0.3], refine_steps=10)
    assert config.step_size(0.3) == pytest.approx(0.075)
    assert config.row_config(0.3, 0)["refine_step_size"] == pytest.approx(0.075)
    assert InversionConfig(eps=[0.3], refine_steps=10, refine_step_size=0.02).row_config(0.3, 0)["refine_step_size"] == 0.02
    assert InversionConfig(eps=[0.3]).row_config(0.3, 0)["refine_step_size"] is None


def test_fooled_diversity_counts_only_fooling_candidates() -> None:
    features = torch.tensor([[[1.0, 0.0], [1.0, 0.0]],
                             [[0.0, 1.0], [1.0, 0.0]],
                             [[0.0, 1.0], [1.0, 0.0]]])  # (k=3, N=2, d=2)
    fooled = torch.tensor([[True, True], [True, False], [True, False]])
    per_input = metrics.fooled_cosine_per_input(features, fooled)
    assert per_input[0] == pytest.approx(1 / 3)  # pairs (0,1), (0,2) orthogonal, (1,2) identical
    assert torch.isnan(per_input[1])  # one fooling candidate: no pair
    assert metrics.fooled_pairwise_cosine(features, fooled) == pytest.approx(1 / 3)
    assert torch.isnan(torch.tensor(metrics.fooled_pairwise_cosine(features, torch.zeros(3, 2, dtype=torch.bool))))


RECIPE = GeneratorRecipe(steps=90, batch_size=32, eval_every=15)


def test_patience_stops_early_and_keeps_the_best_generator(digits_model: torch.nn.Module, digits: Dataset) -> None:
    recipe = RECIPE.model_copy(update={"steps": 600, "patience": 2, "lr": 0.05})  # too high: success falls back
    generator, training = train_perturb_generator(digits_model, digits.x_train, digits.y_train, 10, eps=0.3,
                                                  targeted=False, recipe=recipe, seed=0)
    steps = [step for step, _ in training.curve]
    rates = [rate for _, rate in training.curve]
    assert steps[-1] < 600, "training should have stopped early"
    best = max(range(len(rates)), key=lambda i: (rates[i], -i))
    assert training.kept_step == steps[best] and len(steps) - 1 - best == 2
    assert steps == list(range(15, steps[-1] + 1, 15))


@pytest.mark.slow
def test_imitation_trains_and_is_part_of_the_key(digits_model: torch.nn.Module, digits: Dataset,
                                                 tmp_path: Path) -> None:
    recipe = RECIPE.model_copy(update={"imitate": 1.0, "imitate_steps": 2})
    source = GeneratorSource("perturb", "m", "d", digits.input_shape, 10, recipe, 0, 0.3, False)
    assert source.key != GeneratorSource("perturb", "m", "d", digits.input_shape, 10, RECIPE, 0, 0.3, False).key
    generator, training = cached_generator(source, digits_model, digits.x_train, digits.y_train,
                                           cache_dir=tmp_path, label="t")
    assert len(training.curve) == 6 and training.kept_step == 90 and training.seconds > 0
    again, cached = cached_generator(source, digits_model, digits.x_train, digits.y_train, cache_dir=tmp_path, label="t")
    assert cached == training  # the curve comes back from the checkpoint's metadata
    assert all(torch.equal(a, b) for a, b in zip(generator.state_dict().values(), again.state_dict().values()))


def test_a_refined_inversion_attack_records_its_budget_and_training(
    digits_model: torch.nn.Module, digits: Dataset, tmp_path: Path,
) -> None:
    context = AttackContext(digits.x_train, digits.y_train, 10, "smallcnn", "m", "d", tmp_path)
    x, y = digits.x_test[:100], digits.y_test[:100]
    plain = InversionConfig(eps=[EPS], samples_per_input=4, train=RECIPE)
    drawn = Inversion(plain).run(digits_model, x, y, EPS, seed=0, context=context)
    refined = Inversion(plain.model_copy(update={"refine_steps": 5})).run(digits_model, x, y, EPS, seed=0, context=context)
    assert (drawn.grad_evals, refined.grad_evals) == (0, 20)
    assert float((refined.samples - x[None]).abs().max()) <= EPS + 1e-6
    fooled_drawn, fooled_refined = _fooled(digits_model, drawn.samples, y), _fooled(digits_model, refined.samples, y)
    assert bool((fooled_refined | ~fooled_drawn).all()), "a draw that fooled stays fooling"
    assert float(fooled_refined.double().mean()) > float(fooled_drawn.double().mean())
    assert refined.diagnostics["generator_training"]["curve"][-1][0] == RECIPE.steps


def test_production_with_refinement_keeps_only_verified_samples(
    digits_model: torch.nn.Module, digits: Dataset, tmp_path: Path,
) -> None:
    torch.manual_seed(0)
    untrained = PerturbGenerator(digits.input_shape, 10)  # alone it rarely fools; refinement has to
    request = ProductionRequest(suite="s", model="m", model_fingerprint="f", attack="inversion", generator_key="g",
                                eps=EPS, targeted=False, n=60, shard_size=30, seed=0, refine_steps=5,
                                refine_step_size=EPS / 2)
    produced = produce(request, untrained, digits_model, digits.x_test[:100], digits.y_test[:100], tmp_path,
                       tau=0.2, batch_size=50)
    shards = [load_file(str(shard_paths(tmp_path, s)[0])) for s in range(2)]
    x_adv = torch.cat([s["x_adv"] for s in shards])
    source = torch.cat([s["source_index"] for s in shards])
    assert len(x_adv) == 60 and produced.distinct_inputs == len(set(source.tolist()))
    assert bool((predict_logits(digits_model, x_adv).argmax(1) != digits.y_test[source]).all())
    assert float((x_adv - digits.x_test[source]).flatten(1).abs().amax(1).max()) <= EPS + 1e-6
    assert produced.samples_per_s > 0


def test_aimed_refinement_spreads_draws_over_their_coded_classes(digits_model: torch.nn.Module,
                                                                  digits: Dataset) -> None:
    x, y = digits.x_test[:200], digits.y_test[:200]
    aims = torch.stack([(y + 1 + d) % 10 for d in range(4)])
    starts = x[None].expand(4, *x.shape)
    refined = refine(digits_model, x, starts, y, eps=0.3, steps=20, step_size=0.03, aims=aims)
    pred = torch.stack([predict_logits(digits_model, s).argmax(1) for s in refined])
    fooled = pred != y
    assert float(fooled.double().mean()) > 0.5
    plain = refine(digits_model, x, starts, y, eps=0.3, steps=20, step_size=0.03)
    plain_pred = torch.stack([predict_logits(digits_model, s).argmax(1) for s in plain])
    on_aim = lambda p: float((p[p != y] == aims[p != y]).double().mean())  # noqa: E731
    assert on_aim(pred) > on_aim(plain_pred) + 0.2, "aimed draws land in their coded class more often"
    classes = lambda p: float(torch.tensor([len(set(p[:, i].tolist())) for i in range(len(y))]).double().mean())  # noqa: E731
    assert classes(pred) > classes(plain_pred) + 1, "the margin sends every draw of an input to one class"


def test_imitation_pulls_only_draws_whose_refinement_succeeds(digits_model: torch.nn.Module, digits: Dataset) -> None:
    from robustinv.inversion.teachers import imitation_term

    x, y = digits.x_test[:100], digits.y_test[:100]
    x_adv = x.clone().requires_grad_(True)
    loss = imitation_term(digits_model, x, x_adv, y, eps=EPS, steps=3, targeted=False)
    (grad,) = torch.autograd.grad(loss, x_adv)
    pulled = grad.flatten(1).abs().sum(1) > 0
    refined = refine(digits_model, x, x[None], y, eps=EPS, steps=3, step_size=2.5 * EPS / 3)[0]
    hit = predict_logits(digits_model, refined).argmax(1) != y
    assert float(loss.detach()) > 0 and bool(hit.any()) and not bool(hit.all())
    assert torch.equal(pulled, hit & (refined != x).flatten(1).any(1))


def test_jitter_is_a_seeded_random_start_inside_the_ball() -> None:
    from robustinv.inversion.refine import jitter

    x = torch.rand(6, 1, 4, 4)
    starts = x[None].expand(3, *x.shape).clone()
    moved = jitter(x, starts, eps=0.2, spread=1.0, seed=3)
    assert float((moved - x[None]).abs().max()) <= 0.2 + 1e-6 and 0 <= float(moved.min()) and float(moved.max()) <= 1
    assert not torch.equal(moved[0], moved[1]), "every draw gets its own start"
    assert torch.equal(moved, jitter(x, starts, eps=0.2, spread=1.0, seed=3))
    assert torch.equal(jitter(x, starts, eps=0.2, spread=0.0, seed=3), starts)


def test_distillation_targets_are_pgd_examples_inside_the_ball(digits_model: torch.nn.Module, digits: Dataset) -> None:
    from robustinv.inversion.teachers import distill_term, distillation_targets

    x, y = digits.x_test[:150], digits.y_test[:150]
    targets, fooled, seconds = distillation_targets(digits_model, x, y, eps=EPS, steps=5, seed=0, batch_size=64)
    assert targets.dtype == torch.float16 and targets.shape == x.shape and seconds > 0
    assert float((targets.float() - x).abs().max()) <= EPS + 1e-3, "half precision rounds by at most 1e-3"
    hit = predict_logits(digits_model, targets.float()).argmax(1) != y
    assert fooled == pytest.approx(float(hit.double().mean()), abs=0.02) and fooled > 0.5
    assert torch.equal(targets, distillation_targets(digits_model, x, y, eps=EPS, steps=5, seed=0, batch_size=64)[0])
    assert float(distill_term(targets.float(), targets, EPS)) == 0.0
    assert float(distill_term(x, targets, EPS)) > 0.2


def test_draws_trained_as_starts_get_the_gradient_at_their_refined_point(digits_model: torch.nn.Module,
                                                                          digits: Dataset) -> None:
    from robustinv.inversion.teachers import refined_straight_through

    x, y = digits.x_test[:40], digits.y_test[:40]
    x_adv = x.clone().requires_grad_(True)
    judged = refined_straight_through(digits_model, x, x_adv, y, eps=EPS, steps=3, targeted=False)
    refined = refine(digits_model, x, x[None], y, eps=EPS, steps=3, step_size=2.5 * EPS / 3)[0]
    assert torch.allclose(judged.detach(), refined)
    (grad,) = torch.autograd.grad(margin_gap(digits_model(judged), y, targeted=False).sum(), x_adv)
    at_refined = refined.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(margin_gap(digits_model(at_refined), y, targeted=False).sum(), at_refined)
    assert torch.allclose(grad, expected)


def test_distilled_curriculum_training_learns_and_records_its_recipe(digits_model: torch.nn.Module, digits: Dataset,
                                                                     tmp_path: Path) -> None:
    recipe = RECIPE.model_copy(update={"distill": 1.0, "distill_steps": 3, "distill_images": 600, "topk": 2,
                                       "eps_start": 1.5, "start_steps": 1, "schedule": "cosine"})
    source = GeneratorSource("perturb", "m", "d", digits.input_shape, 10, recipe, 0, EPS, False)
    generator, training = cached_generator(source, digits_model, digits.x_train, digits.y_train,
                                           cache_dir=tmp_path, label="t")
    torch.manual_seed(0)
    untrained = PerturbGenerator(digits.input_shape, 10)
    args = (digits_model, digits.x_test, digits.y_test, 10)
    before = held_out_success(untrained, *args, eps=EPS, targeted=False, recipe=recipe, seed=1)
    after = held_out_success(generator, *args, eps=EPS, targeted=False, recipe=recipe, seed=1)
    assert after > before + 0.08, (before, after)
    assert [step for step, _ in training.curve] == list(range(15, 91, 15))
    row = Inversion(InversionConfig(eps=[EPS], train=recipe)).config.row_config(EPS, 0)
    assert row["train"]["distill"] == 1.0 and row["train"]["eps_start"] == 1.5  # type: ignore[index]
    with pytest.raises(InversionError, match="untargeted"):
        train_perturb_generator(digits_model, digits.x_train, digits.y_train, 10, eps=EPS, targeted=True,
                                recipe=recipe, seed=0)
