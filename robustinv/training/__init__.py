"""Training of the models under test and of the defended references, one loop for every recipe."""

from robustinv.training.defenses import DEFENSES, Defense
from robustinv.training.loop import train
from robustinv.training.recipe import AdversarialRecipe, InnerAttack, TrainRecipe

__all__ = ["DEFENSES", "AdversarialRecipe", "Defense", "InnerAttack", "TrainRecipe", "train"]
