"""What every experiment shares: its result, an iteration-based trainer in the book's
style (random mini-batches drawn with replacement, as in chapter 6's scripts), and
loss smoothing for plots."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hpsearch.nn import MultiLayerNet, Optimizer


@dataclass
class ExperimentResult:
    name: str
    table: pd.DataFrame
    figures: list[Path] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)  # one line per checked claim

    def save(self, figure: Figure, folder: Path, filename: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / filename
        figure.savefig(path, dpi=100)
        self.figures.append(path)


def train_iterations(
    net: MultiLayerNet,
    optimizer: Optimizer,
    x: np.ndarray,
    t: np.ndarray,
    *,
    iterations: int,
    batch_size: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Training loss at every iteration, each on a batch drawn at random."""
    losses = np.empty(iterations)
    x = np.asarray(x, dtype=net.dtype)
    for i in range(iterations):
        index = rng.choice(len(x), batch_size)
        losses[i], grads = net.loss_and_gradient(x[index], t[index])
        optimizer.update(net.params, grads)
    return losses


def smooth(values: np.ndarray, window: int = 21) -> np.ndarray:
    """Centred moving median, the book's `smooth_curve` in spirit: noise out, trend in."""
    if len(values) < window:
        return values
    half = window // 2
    padded = np.pad(values, half, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, window)
    return np.median(windows, axis=1)


def loss_curves(
    curves: dict[str, np.ndarray], title: str, *, ylim: float, chance: float | None = None
) -> Figure:
    """Smoothed training loss per iteration, one line per setting."""
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    ax = figure.subplots()
    for label, losses in curves.items():
        ax.plot(np.arange(1, len(losses) + 1), smooth(losses), label=label)
    if chance is not None:
        ax.axhline(chance, color="0.6", linestyle=":", label="ln 10 (chance)")
    ax.set_xlabel("iterations")
    ax.set_ylabel("training loss (smoothed)")
    ax.set_ylim(0, ylim)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return figure
