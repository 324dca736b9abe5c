"""The reference experiments, one module each, on the same network code the search uses.

Each module has `run(out, seed, **sizes) -> ExperimentResult`; the defaults are the
sizes of the reference articles, and tests pass smaller ones.
"""

from hpsearch.experiments import activations, batchnorm, circles, init_mnist, optimizers, overfit
from hpsearch.experiments.common import ExperimentResult

EXPERIMENTS = {
    "activations": activations.run,
    "circles": circles.run,
    "init-mnist": init_mnist.run,
    "optimizers": optimizers.run,
    "batchnorm": batchnorm.run,
    "overfit": overfit.run,
}

__all__ = ["EXPERIMENTS", "ExperimentResult"]
