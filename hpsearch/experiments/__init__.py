"""The reference experiments, one module each, on the same network code the search uses.

Each module has `run(out, seed, **sizes) -> ExperimentResult`; the defaults are the
sizes of the reference articles, and tests pass smaller ones. A module is imported only
when its experiment runs: they pull in matplotlib and pandas, which the `hpsearch`
command's other subcommands never need.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hpsearch.experiments.common import ExperimentResult

# Command-line name -> module of this package.
EXPERIMENTS = {
    "activations": "activations",
    "circles": "circles",
    "init-mnist": "init_mnist",
    "optimizers": "optimizers",
    "batchnorm": "batchnorm",
    "overfit": "overfit",
}


def experiment(name: str) -> Callable[..., ExperimentResult]:
    """The `run` function of the experiment called `name` on the command line."""
    return importlib.import_module(f"hpsearch.experiments.{EXPERIMENTS[name]}").run


__all__ = ["EXPERIMENTS", "experiment"]
