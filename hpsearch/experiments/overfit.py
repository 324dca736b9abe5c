"""Chapter 6.4: overfitting on 300 training examples (hidden [100] x 6, SGD lr 0.01,
batch 100, 200 epochs) and what weight decay 0.1 and dropout 0.2 do to the gap
between train and test accuracy."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hpsearch.data import load, without_validation
from hpsearch.experiments.common import ExperimentResult
from hpsearch.nn import MultiLayerNet, make_optimizer
from hpsearch.train import fit

SETTINGS = [
    ("none", {}),
    ("weight decay 0.1", {"weight_decay": 0.1}),
    ("dropout 0.2", {"dropout": 0.2}),
]


def run(
    out: Path,
    seed: int = 0,
    *,
    data: str = "mnist-5k",
    train_size: int = 300,
    epochs: int = 200,
    lr: float = 0.01,
) -> ExperimentResult:
    base = without_validation(load(data, train_size=train_size, seed=seed))
    # This experiment is about generalisation, so its curve is the test split's (no
    # search reads it): the split's validation slot carries the test set.
    split = dataclasses.replace(base, x_val=base.x_test, t_val=base.t_test)
    rows, curves = [], {}
    for label, options in SETTINGS:
        rng = np.random.default_rng(seed)
        net = MultiLayerNet(split.input_size, [100] * 6, split.n_classes, rng=rng, **options)
        history = fit(
            net,
            make_optimizer("sgd", lr),
            split,
            epochs=epochs,
            batch_size=100,
            rng=rng,
            evaluate_train=True,
        )
        curves[label] = history
        train, test = history.train_accuracy[-1], history.val_accuracy[-1]
        rows.append(
            {
                "regularisation": label,
                "train accuracy": train,
                "test accuracy": test,
                "gap": train - test,
            }
        )
    result = ExperimentResult("overfit", pd.DataFrame(rows))
    result.save(_curves(curves), out, "overfit_train_vs_test.png")
    result.findings = [
        f"{row['regularisation']}: train {row['train accuracy']:.3f}, test "
        f"{row['test accuracy']:.3f}, gap {row['gap']:.3f}"
        for row in rows
    ]
    return result


def _curves(curves) -> Figure:
    figure = Figure(figsize=(4.2 * len(curves), 3.8), layout="constrained")
    axes = figure.subplots(1, len(curves), squeeze=False, sharey=True)[0]
    for ax, (label, history) in zip(axes, curves.items(), strict=True):
        epochs = range(1, history.epochs + 1)
        ax.plot(epochs, history.train_accuracy, label="train")
        ax.plot(epochs, history.val_accuracy, label="test")
        ax.set_title(label)
        ax.set_xlabel("epochs")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[0].legend()
    figure.suptitle("Overfitting on 300 examples: train vs test accuracy")
    return figure
