"""The deeplearning.ai initialization exercise: zeros, large random (x10) and He init
of a [2, 10, 5, 1] ReLU net with a sigmoid output on the two-circles data, trained by
full-batch gradient descent (lr 0.01, 15,000 iterations)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hpsearch.data import load, without_validation
from hpsearch.experiments.common import ExperimentResult
from hpsearch.nn import MultiLayerNet, make_optimizer
from hpsearch.train import fit

# (label, init rule, init_scale) as in the exercise: W = 0, randn * 10, randn * sqrt(2/n).
INITS = [("zeros", "zeros", 1.0), ("random x10", "normal", 10.0), ("He", "he", 1.0)]
REFERENCE = {"zeros": (0.50, 0.50), "random x10": (0.83, 0.86), "He": (0.99, 0.96)}


def run(
    out: Path, seed: int = 0, *, iterations: int = 15_000, lr: float = 0.01
) -> ExperimentResult:
    # The exercise trains on all 300 training points and tests on its 100 test points.
    split = without_validation(load("circles", seed=seed))
    rows, nets = [], {}
    for label, init, scale in INITS:
        rng = np.random.default_rng(seed)
        net = MultiLayerNet(
            2,
            [10, 5],
            1,
            activation="relu",
            init=init,
            init_scale=scale,
            output="sigmoid",
            dtype=np.float64,
            rng=rng,
        )
        # One epoch of one full batch is one gradient-descent iteration.
        history = fit(
            net,
            make_optimizer("sgd", lr),
            split,
            epochs=iterations,
            batch_size=len(split.t_train),
            rng=rng,
        )
        nets[label] = net
        reference_train, reference_test = REFERENCE[label]
        rows.append(
            {
                "init": label,
                "train accuracy": net.accuracy(split.x_train, split.t_train),
                "test accuracy": net.accuracy(split.x_test, split.t_test),
                "final loss": history.train_loss[-1],
                "reference train": reference_train,
                "reference test": reference_test,
            }
        )
    result = ExperimentResult("circles", pd.DataFrame(rows))
    result.save(_boundaries(nets, split), out, "circles_decision_boundaries.png")
    result.findings = [
        f"{row['init']}: train {row['train accuracy']:.2f}, test {row['test accuracy']:.2f} "
        f"(reference {row['reference train']:.2f} / {row['reference test']:.2f})"
        for row in rows
    ]
    return result


def _boundaries(nets, split) -> Figure:
    figure = Figure(figsize=(4.2 * len(nets), 4.0), layout="constrained")
    axes = figure.subplots(1, len(nets), squeeze=False)[0]
    grid_x, grid_y = np.meshgrid(np.linspace(-1.5, 1.5, 300), np.linspace(-1.5, 1.5, 300))
    points = np.column_stack([grid_x.ravel(), grid_y.ravel()])
    for ax, (label, net) in zip(axes, nets.items(), strict=True):
        predicted = net.loss_layer.classes(net.predict(points)).reshape(grid_x.shape)
        ax.contourf(
            grid_x,
            grid_y,
            predicted,
            levels=[-0.5, 0.5, 1.5],
            colors=["#f4b6b6", "#b6cdf4"],
            alpha=0.8,
        )
        ax.scatter(
            split.x_train[:, 0],
            split.x_train[:, 1],
            c=split.t_train,
            cmap="bwr_r",
            s=10,
            edgecolors="k",
            linewidths=0.2,
        )
        accuracy = net.accuracy(split.x_train, split.t_train)
        ax.set_title(f"{label} init: train accuracy {accuracy:.2f}")
        ax.set_aspect("equal")
    figure.suptitle("Decision boundaries after gradient descent on the circles data")
    return figure
