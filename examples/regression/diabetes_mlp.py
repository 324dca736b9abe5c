"""A regression study with training code of your own: a one-hidden-layer NumPy MLP,
trained by Adam with L2 weight decay, predicts scikit-learn's diabetes progression
(442 patients, 10 measurements). The spec has no `[data]`, so `objective` loads the data
itself and splits it from `config.seed`; it reports and returns the validation RMSE in
the target's own units, which the spec next to this file minimizes.

    hpsearch run examples/regression/diabetes.toml
    hpsearch final --study diabetes-mlp --code examples/regression
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.datasets import load_diabetes

# Fractions of the 442 rows held out; the split depends on config.seed only, so every
# trial, and `final`, sees the same rows in the same part.
TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.2


@dataclass(frozen=True)
class Part:
    """Features standardized and the target scaled by the training part's statistics;
    `y_std` turns an error back into the target's units."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_eval: np.ndarray
    y_eval: np.ndarray
    y_std: float


def split(seed: int, final: bool) -> Part:
    """Train on train and judge on validation during the search; train on train +
    validation and judge on test in `final`. The raw (unscaled) data, so that no
    statistic of the held-out rows leaks into the scaling."""
    x, y = load_diabetes(return_X_y=True, scaled=False)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = round(TEST_FRACTION * len(y))
    n_val = round(VALIDATION_FRACTION * len(y))
    test, val, train = np.split(order, [n_test, n_test + n_val])
    if final:
        train, held = np.concatenate([train, val]), test
    else:
        held = val
    x_mean, x_std = x[train].mean(axis=0), x[train].std(axis=0)
    y_mean, y_std = y[train].mean(), y[train].std()
    return Part(
        x_train=(x[train] - x_mean) / x_std,
        y_train=(y[train] - y_mean) / y_std,
        x_eval=(x[held] - x_mean) / x_std,
        y_eval=(y[held] - y_mean) / y_std,
        y_std=float(y_std),
    )


class MLP:
    """Affine - tanh - Affine, Xavier init times `init_scale`; the loss is half the mean
    squared error plus 0.5 * weight_decay * sum(W**2), one Adam step per mini-batch."""

    def __init__(
        self,
        n_in: int,
        hidden: int,
        weight_decay: float,
        init_scale: float,
        rng: np.random.Generator,
    ) -> None:
        self.params = {
            "W1": rng.standard_normal((n_in, hidden)) * init_scale / np.sqrt(n_in),
            "b1": np.zeros(hidden),
            "W2": rng.standard_normal((hidden, 1)) * init_scale / np.sqrt(hidden),
            "b2": np.zeros(1),
        }
        self.weight_decay = weight_decay
        self.m = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.v = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.steps = 0

    def predict(self, x: np.ndarray) -> np.ndarray:
        p = self.params
        return (np.tanh(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"])[:, 0]

    def adam_step(self, x: np.ndarray, y: np.ndarray, lr: float) -> float:
        """One step on the batch; its mean squared error (scaled units) before the step."""
        p = self.params
        h = np.tanh(x @ p["W1"] + p["b1"])
        error = (h @ p["W2"] + p["b2"])[:, 0] - y
        dz = (error / len(y))[:, None]  # d(0.5 * mean squared error) / d(output)
        dh = (dz @ p["W2"].T) * (1.0 - h**2)
        grads = {
            "W1": x.T @ dh + self.weight_decay * p["W1"],
            "b1": dh.sum(axis=0),
            "W2": h.T @ dz + self.weight_decay * p["W2"],
            "b2": dz.sum(axis=0),
        }
        self.steps += 1
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        for key, grad in grads.items():
            self.m[key] += (1.0 - beta1) * (grad - self.m[key])
            self.v[key] += (1.0 - beta2) * (grad**2 - self.v[key])
            m_hat = self.m[key] / (1.0 - beta1**self.steps)
            v_hat = self.v[key] / (1.0 - beta2**self.steps)
            p[key] -= lr * m_hat / (np.sqrt(v_hat) + eps)
        return float(np.mean(error**2))


def rmse(net: MLP, x: np.ndarray, y: np.ndarray, y_std: float) -> float:
    """Root mean squared error in the target's units."""
    return float(np.sqrt(np.mean((net.predict(x) - y) ** 2)) * y_std)


def objective(
    config: Any, report: Callable[..., None], data: None, rng: np.random.Generator
) -> float:
    """The validation RMSE after `config.epochs` epochs (in `final`: the test RMSE of
    the net trained on train + validation)."""
    part = split(config.seed, config.final)
    net = MLP(
        part.x_train.shape[1],
        int(config["hidden"]),
        weight_decay=config["weight_decay"],
        init_scale=config.get("init_scale", 1.0),
        rng=rng,
    )
    n = len(part.y_train)
    batches = max(1, n // config.batch_size)
    # A diverging run reports NaN or inf, which hpsearch ends as a diverged (pruned) trial.
    with np.errstate(over="ignore", invalid="ignore"):
        for epoch in range(1, config.epochs + 1):
            order = rng.permutation(n)[: batches * config.batch_size]
            losses = [
                net.adam_step(part.x_train[b], part.y_train[b], config["lr"])
                for b in np.array_split(order, batches)
            ]
            train_rmse = float(np.sqrt(np.mean(losses)) * part.y_std)
            val_rmse = rmse(net, part.x_eval, part.y_eval, part.y_std)
            report(epoch, val_rmse, train_rmse=train_rmse)
    return val_rmse
