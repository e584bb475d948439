"""How a model gets its weights: given files, or one training loop for every recipe and defense, cached by content."""

from robustinv.training.defenses import DEFENSES, Defense
from robustinv.training.loop import train
from robustinv.training.prepare import ModelIdentity, identify_model, prepare_model, prepare_models, ready_model
from robustinv.training.recipe import AdversarialRecipe, InnerAttack, TrainRecipe
from robustinv.training.spec import ModelSpec

__all__ = [
    "DEFENSES", "AdversarialRecipe", "Defense", "InnerAttack", "ModelIdentity", "ModelSpec", "TrainRecipe",
    "identify_model", "prepare_model", "prepare_models", "ready_model", "train",
]
