"""Training recipes for the models under test and the defended references."""

from robustinv.training.recipe import TrainRecipe
from robustinv.training.standard import train_standard

__all__ = ["TrainRecipe", "train_standard"]
