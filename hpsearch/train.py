"""The training loop every trial runs: epochs of seeded mini-batches, judged on validation.

An epoch is one pass over a fresh permutation of the training set in whole batches
(the last `n_train % batch_size` examples of each permutation sit that epoch out);
validation accuracy is measured after the epoch's last update. The test split is
never read here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from hpsearch.data import Split
from hpsearch.errors import ConfigError, HpsearchError
from hpsearch.nn.net import MultiLayerNet
from hpsearch.nn.optim import Optimizer


class Diverged(HpsearchError):
    """The training loss became NaN or infinite: the run cannot recover."""

    def __init__(self, epoch: int, step: int, loss: float) -> None:
        self.epoch, self.step, self.loss = epoch, step, loss
        self.history = History()  # the epochs completed before it, filled in by fit()
        super().__init__(
            f"training diverged at epoch {epoch}, step {step}: loss is {loss} "
            "(a smaller learning rate or init scale usually helps)"
        )

    def __reduce__(self):  # picklable across processes despite its own __init__
        return (type(self), (self.epoch, self.step, self.loss), {"history": self.history})


@dataclass
class History:
    """Per-epoch curves. `train_loss` and `train_accuracy` are means over the epoch's
    mini-batches as they were trained (free to record), unless `fit` was asked for
    `evaluate_train=True`, which re-measures the whole training set after each epoch."""

    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def to_dict(self) -> dict[str, list[float]]:
        """The curves recorded (the validation loss only when `fit` was asked for it)."""
        curves = asdict(self)
        if not self.val_loss:
            del curves["val_loss"]
        return curves


EpochCallback = Callable[[int, History], None]


def fit(
    net: MultiLayerNet,
    optimizer: Optimizer,
    split: Split,
    *,
    epochs: int,
    batch_size: int,
    rng: np.random.Generator,
    on_epoch: EpochCallback | None = None,
    evaluate_train: bool = False,
    val_loss: bool = False,
) -> History:
    """Train `net` in place and return its history.

    `on_epoch(epoch, history)` runs after every epoch (1-based) and may raise to stop
    training, e.g. for pruning; the exception propagates to the caller. A NaN or
    infinite loss raises `Diverged` at the step it appears. `val_loss=True` also records
    the validation loss, which costs a softmax over the validation set per epoch.
    """
    n_train = len(split.t_train)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"epochs must be a positive integer, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    if batch_size > n_train:
        raise ConfigError(f"batch_size={batch_size} is larger than the {n_train} training examples")
    x_train = np.asarray(split.x_train, dtype=net.dtype)
    t_train = split.t_train
    x_val = np.asarray(split.x_val, dtype=net.dtype)
    history = History()
    # Overflow on the way to NaN is expected and reported as Diverged: no warnings.
    with np.errstate(over="ignore", invalid="ignore"):
        for epoch in range(1, epochs + 1):
            started = time.perf_counter()
            try:
                loss, accuracy = _train_epoch(
                    net, optimizer, x_train, t_train, batch_size, rng.permutation(n_train), epoch
                )
                if not np.isfinite(np.sum(net.params.flat)):
                    # The epoch's last update overflowed: the next loss would be NaN.
                    raise Diverged(epoch, n_train // batch_size, math.nan)
            except Diverged as exc:
                exc.history = history
                raise
            if evaluate_train:
                loss = _full_loss(net, x_train, t_train)
                accuracy = net.accuracy(x_train, t_train)
            history.train_loss.append(loss)
            history.train_accuracy.append(accuracy)
            if len(x_val):  # the final run trains on train + validation: nothing to judge
                if val_loss:
                    loss_now, accuracy_now = net.evaluate(x_val, split.t_val)
                    history.val_loss.append(loss_now)
                else:
                    accuracy_now = net.accuracy(x_val, split.t_val)
                history.val_accuracy.append(accuracy_now)
            history.seconds.append(time.perf_counter() - started)
            if on_epoch is not None:
                on_epoch(epoch, history)
    return history


def _train_epoch(
    net: MultiLayerNet,
    optimizer: Optimizer,
    x_train: np.ndarray,
    t_train: np.ndarray,
    batch_size: int,
    order: np.ndarray,
    epoch: int,
) -> tuple[float, float]:
    """One pass of whole mini-batches in `order`; mean loss and accuracy as trained."""
    n_batches = len(order) // batch_size
    loss_sum = 0.0
    correct = 0
    for step in range(n_batches):
        index = order[step * batch_size : (step + 1) * batch_size]
        x_batch, t_batch = x_train[index], t_train[index]
        loss, grads = net.loss_and_gradient(x_batch, t_batch)
        if not math.isfinite(loss):
            raise Diverged(epoch, step + 1, loss)
        # The loss layer still holds this batch's probabilities: accuracy for free.
        correct += int(np.count_nonzero(net.loss_layer.last_classes() == t_batch))
        loss_sum += loss
        optimizer.update(net.params, grads)
    return loss_sum / n_batches, correct / (n_batches * batch_size)


def _full_loss(net: MultiLayerNet, x: np.ndarray, t: np.ndarray, batch_size: int = 1000) -> float:
    """Loss over the whole set in eval mode, averaged by example."""
    total = 0.0
    for start in range(0, len(x), batch_size):
        xb, tb = x[start : start + batch_size], t[start : start + batch_size]
        total += net.loss(xb, tb, train=False) * len(xb)
    return total / len(x)
