"""Explainer GAN: SFT layers, generator and discriminator shapes, training, seeding, SSIM, baselines, ablation."""

from __future__ import annotations

import pydantic
import pytest
import torch
import torch.nn.functional as F

from robustinv.interpret.gan import (
    BestAffineMap, Discriminator, ExplainerRecipe, ExplainMode, MeanMap, PixelLeastSquares, SFTLayer, SFTResBlock,
    ablation, build_generator, mae, mean_ssim, predict_maps, ssim, train_explainer,
)

K = 3


def _zero_heads(layer: SFTLayer) -> None:
    with torch.no_grad():
        for head in (layer.gamma, layer.beta):
            head[-1].weight.zero_()
            head[-1].bias.zero_()


def _toy(n: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images, K noisy condition maps and a smooth target map that is a function of the image."""
    rng = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 1, size, size, generator=rng)
    targets = F.avg_pool2d(images, 3, stride=1, padding=1, count_include_pad=False)
    targets = (targets - targets.amin((2, 3), keepdim=True)) / (targets.amax((2, 3), keepdim=True)
                                                                - targets.amin((2, 3), keepdim=True))
    noise = 0.1 * torch.randn(n, K, size, size, generator=rng)
    return images, (targets + noise).clamp(0, 1), targets


@pytest.mark.parametrize("cond_size", [6, 12])
def test_sft_layer_and_block_shapes_and_identity(cond_size: int) -> None:
    torch.manual_seed(0)
    x, condition = torch.randn(2, 8, 6, 6), torch.rand(2, 3, cond_size, cond_size)
    layer, block = SFTLayer(8, 3), SFTResBlock(8, 3)
    assert layer(x, condition).shape == x.shape
    assert block(x, condition).shape == x.shape
    _zero_heads(layer)
    assert torch.equal(layer(x, condition), x)


@pytest.mark.parametrize("mode", list(ExplainMode))
@pytest.mark.parametrize("size", [8, 28])
def test_generators_predict_unit_maps_of_any_batch(mode: ExplainMode, size: int) -> None:
    torch.manual_seed(0)
    generator = build_generator(mode, image_channels=1, n_conditions=K, width=8).eval()
    images, conditions = torch.rand(5, 1, size, size), torch.rand(5, K, size, size)
    maps = predict_maps(generator, images, conditions if mode.uses_conditions else None)
    one = predict_maps(generator, images[:1], conditions[:1] if mode.uses_conditions else None)
    assert maps.shape == (5, 1, size, size)
    assert 0.0 <= float(maps.min()) and float(maps.max()) <= 1.0
    assert one.shape == (1, 1, size, size)
    torch.testing.assert_close(one, maps[:1])


def test_conditioned_generators_refuse_missing_or_misshaped_conditions() -> None:
    generator = build_generator(ExplainMode.lsft, image_channels=1, n_conditions=K, width=8)
    with pytest.raises(ValueError, match="conditions"):
        generator(torch.rand(2, 1, 8, 8), None)
    with pytest.raises(ValueError, match="conditions"):
        generator(torch.rand(2, 1, 8, 8), torch.rand(2, K + 1, 8, 8))


def test_discriminator_returns_raw_patch_logits() -> None:
    torch.manual_seed(0)
    disc = Discriminator(1, width=8)
    images, maps = torch.rand(4, 1, 28, 28), torch.rand(4, 1, 28, 28)
    assert disc(images, maps).shape == (4, 1, 7, 7)
    last = disc.net[-1]
    with torch.no_grad():
        last.bias.fill_(5.0)
        assert float(disc(images, maps).min()) > 1.0
        last.bias.fill_(-5.0)
        assert float(disc(images, maps).max()) < 0.0


@pytest.mark.parametrize("mode", list(ExplainMode))
def test_gan_overfits_a_few_samples(mode: ExplainMode) -> None:
    images, conditions, targets = _toy(8, 8)
    recipe = ExplainerRecipe(epochs=120, batch_size=8, lr=3e-3, width=8, disc_width=8)
    seen: list[tuple[int, int]] = []
    trained = train_explainer(mode, images, conditions, targets, recipe=recipe, seed=0,
                              on_epoch=lambda epoch, epochs: seen.append((epoch, epochs)))
    assert seen == [(epoch, 120) for epoch in range(1, 121)]
    assert [record.epoch for record in trained.history] == list(range(1, 121))
    assert trained.history[-1].l1 < 0.5 * trained.history[0].l1
    assert not trained.generator.training
    assert trained.seconds > 0


def test_training_is_seeded_and_leaves_the_global_rng_alone() -> None:
    images, conditions, targets = _toy(6, 8)
    recipe = ExplainerRecipe(epochs=2, batch_size=4, width=8, disc_width=8)
    state = torch.random.get_rng_state()

    def weights(seed: int) -> dict[str, torch.Tensor]:
        return train_explainer(ExplainMode.gsft, images, conditions, targets, recipe=recipe,
                               seed=seed).generator.state_dict()

    first, again, other = weights(1), weights(1), weights(2)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert any(not torch.equal(first[name], other[name]) for name in first)


def test_predict_maps_matches_the_generator_and_restores_its_mode() -> None:
    images, conditions, _ = _toy(7, 8)
    generator = build_generator(ExplainMode.gsft, image_channels=1, n_conditions=K, width=8).train()
    maps = predict_maps(generator, images, conditions, batch_size=3)
    assert generator.training
    with torch.no_grad():
        torch.testing.assert_close(maps, generator(images, conditions).clamp(0, 1))


def test_recipe_refuses_unknown_fields() -> None:
    with pytest.raises(pydantic.ValidationError):
        ExplainerRecipe(epoch=3)  # type: ignore[call-arg]


def test_mae_on_a_hand_computed_example() -> None:
    pred = torch.tensor([0.0, 0.5, 1.0, 0.25]).view(1, 1, 2, 2)
    target = torch.tensor([0.0, 1.0, 0.5, 0.25]).view(1, 1, 2, 2)
    assert mae(pred, target) == pytest.approx(0.25)


@pytest.mark.parametrize("size", [5, 8, 28])
def test_ssim_identity_noise_and_symmetry(size: int) -> None:
    _, _, maps = _toy(4, size)
    noise = torch.rand(4, 1, size, size, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(ssim(maps, maps), torch.ones(4, dtype=torch.float64))
    assert mean_ssim(maps, noise) < 0.5
    torch.testing.assert_close(ssim(maps, noise), ssim(noise, maps))


def _linear_data(n: int = 40, size: int = 4) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Conditions in [0,1] and targets an exact per-pixel combination of them, inside [0, 1]."""
    rng = torch.Generator().manual_seed(0)
    conditions = torch.rand(n, K, size, size, generator=rng)
    weights = torch.rand(K, size, size, generator=rng) / K
    bias = 0.1 * torch.rand(size, size, generator=rng)
    targets = (conditions * weights).sum(1, keepdim=True) * 0.8 + bias
    return conditions, targets, weights


def test_pixel_least_squares_recovers_an_exact_linear_map() -> None:
    conditions, targets, _ = _linear_data()
    fitted = PixelLeastSquares.fit(conditions[:30], targets[:30])
    assert fitted.weights.shape == (16, K + 1)
    assert mae(fitted.predict(conditions[30:]), targets[30:]) < 1e-5


def test_best_affine_map_picks_the_right_map_and_recovers_a_and_b() -> None:
    conditions = torch.rand(20, K, 4, 4, generator=torch.Generator().manual_seed(0))
    targets = 0.6 * conditions[:, 1:2] + 0.2
    fitted = BestAffineMap.fit(conditions, targets)
    assert fitted.index == 1
    assert fitted.a == pytest.approx(0.6, abs=1e-5)
    assert fitted.b == pytest.approx(0.2, abs=1e-5)
    assert mae(fitted.predict(conditions), targets) < 1e-5


def test_mean_map_predicts_the_training_mean() -> None:
    conditions, targets, _ = _linear_data()
    fitted = MeanMap.fit(conditions, targets)
    pred = fitted.predict(conditions[:3])
    assert pred.shape == (3, 1, 4, 4)
    torch.testing.assert_close(pred, targets.mean(0, keepdim=True).expand(3, -1, -1, -1))


def test_ablation_finds_no_drop_for_an_ignored_map() -> None:
    torch.manual_seed(0)
    images, conditions, targets = _toy(6, 8)
    generator = build_generator(ExplainMode.lsft, image_channels=1, n_conditions=K, width=8)
    ignored = 1
    block = generator.blocks[ignored]
    _zero_heads(block.sft1)
    _zero_heads(block.sft2)
    drops = ablation(generator, images, conditions, targets)
    assert len(drops) == K
    assert drops[ignored] == pytest.approx(0.0, abs=1e-12)
    assert any(abs(drop) > 1e-6 for i, drop in enumerate(drops) if i != ignored)
