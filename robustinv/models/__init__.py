"""Models: the zoo, user-supplied architectures, the checked forward every call goes through, features."""

from robustinv.models.prepared import PreparedModel
from robustinv.models.user import model_builder
from robustinv.models.zoo import MODELS, ZooNet

__all__ = ["MODELS", "PreparedModel", "ZooNet", "model_builder"]
