"""Training objectives, one per file, registered in `DEFENSES`.

`standard`        CE(f(x), y)
`pgd_at`          CE(f(x*), y), x* maximizing CE (Madry et al. 2018)
`consistency_at`  CE(f(x), y) + CE(f(x*), y) + λ·‖φ(x) − φ(x*)‖² (Dong et al. 2017)
`trades`          CE(f(x), y) + β·KL(f(x) ‖ f(x*)), x* maximizing the KL (Zhang et al. 2019)
"""

from robustinv.training.defenses import consistency_at, pgd_at, standard, trades  # noqa: F401  (fill the registry)
from robustinv.training.defenses.base import DEFENSES, Defense, Terms, recipe_key

__all__ = ["DEFENSES", "Defense", "Terms", "recipe_key"]
