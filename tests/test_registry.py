"""Registries: duplicates raise, unknown names list the valid ones."""

from __future__ import annotations

import pytest

from robustinv import ATTACKS, DATASETS, MODELS
from robustinv.errors import UnknownNameError
from robustinv.registry import Registry


def test_duplicate_name_raises() -> None:
    registry: Registry[int] = Registry("thing")
    registry.register("a")(1)
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("a")(2)


def test_unknown_name_lists_valid_ones() -> None:
    with pytest.raises(UnknownNameError, match="valid attacks: apgd, autoattack, cascade, fab, fgsm, inversion, pgd, square"):
        ATTACKS.get("cw")


def test_builtin_names() -> None:
    assert {"digits", "mnist", "fashion-mnist", "cifar10", "svhn", "idx", "npz"} <= set(DATASETS.names())
    assert {"smallcnn", "lenet5"} <= set(MODELS.names())
    assert {"fgsm", "pgd"} <= set(ATTACKS.names())
