"""Chapter 6.2.4: std 0.01 vs Xavier vs He on MNIST. A ReLU net with hidden sizes
[100] x 4, SGD lr 0.01, batch 128, 2,000 iterations on random mini-batches."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from hpsearch.data import load, without_validation
from hpsearch.experiments.common import ExperimentResult, loss_curves, train_iterations
from hpsearch.nn import MultiLayerNet, make_optimizer

INITS = [("std 0.01", "normal", 0.01), ("Xavier", "xavier", 1.0), ("He", "he", 1.0)]


def run(
    out: Path,
    seed: int = 0,
    *,
    data: str = "mnist-5k",
    iterations: int = 2000,
    batch_size: int = 128,
    lr: float = 0.01,
) -> ExperimentResult:
    split = without_validation(load(data, seed=seed))
    chance = math.log(split.n_classes)  # the loss of a uniform guess
    curves, rows = {}, []
    for label, init, scale in INITS:
        rng = np.random.default_rng(seed)
        net = MultiLayerNet(
            split.input_size, [100] * 4, split.n_classes, init=init, init_scale=scale, rng=rng
        )
        losses = train_iterations(
            net,
            make_optimizer("sgd", lr),
            split.x_train,
            split.t_train,
            iterations=iterations,
            batch_size=batch_size,
            rng=rng,
        )
        curves[label] = losses
        checkpoints = {
            f"loss @ {i}": float(np.mean(losses[max(0, i - 50) : i]))
            for i in (iterations // 10, iterations // 2, iterations)
        }
        rows.append(
            {
                "init": label,
                **checkpoints,
                "train accuracy": net.accuracy(split.x_train, split.t_train),
            }
        )
    result = ExperimentResult("init-mnist", pd.DataFrame(rows))
    result.save(
        loss_curves(
            curves,
            f"Weight init on {data}: [100]x4 ReLU net, SGD lr 0.01, batch 128",
            ylim=2.5,
            chance=chance,
        ),
        out,
        "init_mnist_loss.png",
    )
    last = f"loss @ {iterations}"
    result.findings = [
        f"{row['init']}: mean loss over the last 50 iterations {row[last]:.3f} "
        f"(chance ln {split.n_classes} = {chance:.3f})"
        for row in rows
    ]
    return result
