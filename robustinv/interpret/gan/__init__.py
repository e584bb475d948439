"""An explainer GAN (pix2pix with spatial feature transform) that learns a classifier's interpretation maps.

It works on plain tensors: images, the classifier's Grad-CAM condition maps (deepest layer first)
and the target maps, all (N, ·, H, W) with maps in [0, 1]. Computing the maps is done elsewhere.
"""

from robustinv.interpret.gan.baselines import BestAffineMap, MeanMap, PixelLeastSquares
from robustinv.interpret.gan.networks import Discriminator, ExplainerGenerator, ExplainMode, build_generator
from robustinv.interpret.gan.quality import ablation, mae, mean_ssim, ssim
from robustinv.interpret.gan.recipe import ExplainerRecipe
from robustinv.interpret.gan.sft import SFTLayer, SFTResBlock
from robustinv.interpret.gan.training import EpochRecord, TrainedExplainer, predict_maps, train_explainer

__all__ = [
    "BestAffineMap",
    "Discriminator",
    "EpochRecord",
    "ExplainMode",
    "ExplainerGenerator",
    "ExplainerRecipe",
    "MeanMap",
    "PixelLeastSquares",
    "SFTLayer",
    "SFTResBlock",
    "TrainedExplainer",
    "ablation",
    "build_generator",
    "mae",
    "mean_ssim",
    "predict_maps",
    "ssim",
    "train_explainer",
]
