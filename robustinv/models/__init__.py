"""Models: the zoo, user-supplied architectures and weights, and their preparation."""

from robustinv.models.prepare import PreparedModel, prepare_model, prepare_models
from robustinv.models.spec import ModelSpec
from robustinv.models.user import model_builder
from robustinv.models.zoo import MODELS, ZooNet

__all__ = ["MODELS", "ModelSpec", "PreparedModel", "ZooNet", "model_builder", "prepare_model", "prepare_models"]
