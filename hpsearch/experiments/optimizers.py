"""Chapter 6.1: SGD, Momentum, AdaGrad and Adam with the book's defaults, on MNIST
(the init-mnist net, batch 128, 2,000 iterations) and on f(x, y) = x^2/20 + y^2 from
(-7, 2) with the book's learning rates for that function."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hpsearch.data import load, without_validation
from hpsearch.experiments.common import ExperimentResult, loss_curves, train_iterations
from hpsearch.nn import MultiLayerNet, make_optimizer

NAMES = ("sgd", "momentum", "adagrad", "adam")
# The book's learning rates for the 2-D function (optimizer_compare_naive.py).
PATH_LR = {"sgd": 0.95, "momentum": 0.1, "adagrad": 1.5, "adam": 0.3}


def book_function(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return x**2 / 20.0 + y**2


def paths(steps: int = 30) -> dict[str, np.ndarray]:
    """Each optimizer's path from (-7, 2) on the book's function."""
    result = {}
    for name in NAMES:
        optimizer = make_optimizer(name, PATH_LR[name])
        params = {"p": np.array([-7.0, 2.0])}
        trail = [params["p"].copy()]
        for _ in range(steps):
            x, y = params["p"]
            optimizer.update(params, {"p": np.array([x / 10.0, 2.0 * y])})
            trail.append(params["p"].copy())
        result[name] = np.array(trail)
    return result


def run(
    out: Path,
    seed: int = 0,
    *,
    data: str = "mnist-5k",
    iterations: int = 2000,
    batch_size: int = 128,
) -> ExperimentResult:
    split = without_validation(load(data, seed=seed))
    curves, rows = {}, []
    for name in NAMES:
        rng = np.random.default_rng(seed)
        net = MultiLayerNet(split.input_size, [100] * 4, split.n_classes, init="he", rng=rng)
        losses = train_iterations(
            net,
            make_optimizer(name),
            split.x_train,
            split.t_train,
            iterations=iterations,
            batch_size=batch_size,
            rng=rng,
        )
        curves[name] = losses
        rows.append(
            {
                "optimizer": name,
                "lr (book default)": make_optimizer(name).lr,
                f"loss @ {iterations}": float(np.mean(losses[-50:])),
                "train accuracy": net.accuracy(split.x_train, split.t_train),
            }
        )
    trails = paths()
    for row in rows:
        end = trails[row["optimizer"]][-1]
        row["f after 30 steps"] = float(book_function(*end))
    result = ExperimentResult("optimizers", pd.DataFrame(rows))
    result.save(
        loss_curves(
            curves, f"Optimizers on {data} (book defaults), [100]x4 ReLU net, He init", ylim=1.0
        ),
        out,
        "optimizers_mnist_loss.png",
    )
    result.save(_paths(trails), out, "optimizers_paths.png")
    result.findings = [
        f"{row['optimizer']}: final loss {row[f'loss @ {iterations}']:.3f}" for row in rows
    ]
    return result


def _paths(trails: dict[str, np.ndarray]) -> Figure:
    figure = Figure(figsize=(10, 8), layout="constrained")
    axes = figure.subplots(2, 2)
    grid_x, grid_y = np.meshgrid(np.arange(-10, 10, 0.01), np.arange(-5, 5, 0.01))
    levels = book_function(grid_x, grid_y)
    levels[levels > 7] = 0
    for ax, (name, trail) in zip(axes.flat, trails.items(), strict=True):
        ax.contour(grid_x, grid_y, levels, colors="0.7")
        ax.plot(trail[:, 0], trail[:, 1], "o-", color="tab:red", markersize=3)
        ax.plot(0, 0, "+", color="k", markersize=12)
        ax.set_xlim(-10, 10)
        ax.set_ylim(-10, 10)
        ax.set_title(f"{name} (lr {PATH_LR[name]})")
    figure.suptitle("f(x, y) = x^2/20 + y^2 from (-7, 2), 30 steps")
    return figure
