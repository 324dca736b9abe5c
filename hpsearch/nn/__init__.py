"""The from-scratch NumPy network every trial trains. Knows nothing of Optuna."""

from hpsearch.nn.init import INIT_RULES, init_weights, weight_std
from hpsearch.nn.net import ACTIVATIONS, MultiLayerNet, parameter_count
from hpsearch.nn.optim import OPTIMIZERS, Optimizer, make_optimizer

__all__ = [
    "ACTIVATIONS",
    "INIT_RULES",
    "OPTIMIZERS",
    "MultiLayerNet",
    "Optimizer",
    "init_weights",
    "make_optimizer",
    "parameter_count",
    "weight_std",
]
