"""Interpretation maps: where a model looks, layer by layer, and how an attack moves it.

`gradcam` computes Grad-CAM at every conv layer on captum, `cumulative` accumulates those maps
from the deepest layer down (Explain-CNN-with-GANs), `agreement` compares clean and adversarial
maps and neurons (Dong et al. 2017), and `gan` learns to produce the maps in one forward pass.
"""

from robustinv.interpret.cumulative import cumulative_maps, depth_indices, normalize_maps
from robustinv.interpret.explained import Explained, ExplainedPair, explain
from robustinv.interpret.layers import conv_layers

__all__ = ["Explained", "ExplainedPair", "conv_layers", "cumulative_maps", "depth_indices", "explain",
           "normalize_maps"]
