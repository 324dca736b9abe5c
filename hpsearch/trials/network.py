"""One trial: suggest -> build -> train -> report/prune -> value and user attrs.

Knows Optuna's trial API and nothing of storage. Every random draw of a trial comes
from a Generator seeded by (spec seed, trial number), so a trial's numbers depend only
on its spec, its number and its parameters.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from hpsearch import data
from hpsearch.errors import ConfigError
from hpsearch.nn import MultiLayerNet, Optimizer, make_optimizer
from hpsearch.spec import (
    Choice,
    DataSpec,
    FloatRange,
    InitHealth,
    IntRange,
    Param,
    StudySpec,
)
from hpsearch.stop import StopRequest
from hpsearch.storage import set_user_attrs
from hpsearch.train import Diverged, History, fit

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialConfig:
    """Every setting of one training run, the spec's fixed values overlaid with the
    trial's sampled ones."""

    hidden_sizes: tuple[int, ...]
    activation: str
    init: str
    init_scale: float
    weight_decay: float
    batchnorm: bool
    dropout: float
    optimizer: str
    lr: float | None
    batch_size: int
    epochs: int


def resolve(spec: StudySpec, values: Mapping[str, Any]) -> TrialConfig:
    """The full configuration of a trial with sampled `values`."""
    model, training = spec.model, spec.training
    hidden = model.hidden_sizes
    if "hidden_width" in values or "hidden_depth" in values:
        width = values.get("hidden_width", hidden[0] if hidden else 100)
        depth = values.get("hidden_depth", len(hidden))
        hidden = (width,) * depth
    return TrialConfig(
        hidden_sizes=tuple(hidden),
        activation=values.get("activation", model.activation),
        init=values.get("init", model.init),
        init_scale=values.get("init_scale", model.init_scale),
        weight_decay=values.get("weight_decay", model.weight_decay),
        batchnorm=values.get("batchnorm", model.batchnorm),
        dropout=values.get("dropout", model.dropout),
        optimizer=values.get("optimizer", training.optimizer),
        lr=values.get("lr", training.lr),
        batch_size=values.get("batch_size", training.batch_size),
        epochs=training.epochs,
    )


def suggest(trial: optuna.Trial, params: Mapping[str, Param]) -> dict[str, Any]:
    """Ask the trial for every searched parameter, in the spec's order."""
    values: dict[str, Any] = {}
    for name, param in params.items():
        if isinstance(param, Choice):
            values[name] = trial.suggest_categorical(name, list(param.choices))
        elif isinstance(param, IntRange):
            values[name] = trial.suggest_int(
                name, param.low, param.high, step=param.step, log=param.log
            )
        else:
            values[name] = trial.suggest_float(
                name, param.low, param.high, step=param.step, log=param.log
            )
    return values


def distributions(params: Mapping[str, Param]) -> dict[str, BaseDistribution]:
    """The Optuna distributions `suggest` samples from, for copying trials in."""
    result: dict[str, BaseDistribution] = {}
    for name, param in params.items():
        if isinstance(param, Choice):
            result[name] = CategoricalDistribution(list(param.choices))
        elif isinstance(param, IntRange):
            result[name] = IntDistribution(param.low, param.high, log=param.log, step=param.step)
        else:
            result[name] = FloatDistribution(param.low, param.high, log=param.log, step=param.step)
    return result


def build(
    config: TrialConfig,
    split: data.Split,
    rng: np.random.Generator,
    dtype: type = np.float32,
) -> tuple[MultiLayerNet, Optimizer]:
    """The network and optimizer of a configuration, sized for the split's data."""
    net = MultiLayerNet(
        split.input_size,
        config.hidden_sizes,
        split.n_classes,
        activation=config.activation,
        init=config.init,
        init_scale=config.init_scale,
        weight_decay=config.weight_decay,
        batchnorm=config.batchnorm,
        dropout=config.dropout,
        dtype=dtype,
        rng=rng,
    )
    return net, make_optimizer(config.optimizer, config.lr)


_SPLITS: dict[tuple[DataSpec, int, tuple], data.Split] = {}


def load_split(data_spec: DataSpec, seed: int) -> data.Split:
    """The spec's data, loaded once per process and shared by its trials (loaded again
    when a data file changed on disk)."""
    key = (data_spec, seed, data.file_stamp(data_spec.name, data_spec.test))
    if key not in _SPLITS:
        if len(_SPLITS) >= 4:
            _SPLITS.pop(next(iter(_SPLITS)))
        _SPLITS[key] = data.read_only(
            data.load(
                data_spec.name,
                train_size=data_spec.train_size,
                validation_fraction=data_spec.validation_fraction,
                seed=seed,
                label=data_spec.label,
                test=data_spec.test,
                standardize=data_spec.standardize,
            )
        )
    return _SPLITS[key]


def check_against_data(spec: StudySpec, split: data.Split) -> None:
    """Catch settings that only the loaded data can refute, before any trial runs."""
    batch_sizes = [spec.training.batch_size]
    param = spec.search.params.get("batch_size")
    if isinstance(param, Choice):
        batch_sizes = list(param.choices)
    elif isinstance(param, IntRange | FloatRange):
        batch_sizes = [int(param.high)]
    n_train = len(split.t_train)
    if max(batch_sizes) > n_train:
        raise ConfigError(
            f"{spec.source}: batch size {max(batch_sizes)} is larger than the {n_train} "
            f"training examples of {split.name!r}; lower it or raise data.train_size"
        )


# Optimizers whose step is proportional to the gradient: a collapsed signal shrinks their
# steps by the same factor. Adaptive ones (adagrad, rmsprop, adam) rescale it away.
PROPORTIONAL_STEP = frozenset({"sgd", "momentum", "nesterov"})
# (centre, half-width): a unit beyond centre +- half-width is pinned at a limit, where
# the derivative is under 1/25 (sigmoid) or 1/50 (tanh) of its peak.
PINNED = {"sigmoid": (0.5, 0.49), "tanh": (0.0, 0.99)}


def pinned_fraction(activations: Sequence[np.ndarray], activation: str) -> list[float]:
    """Per hidden layer, the fraction of activations pinned at the activation's limits
    (none for relu, which has no upper limit)."""
    if activation not in PINNED:
        return []
    centre, half_width = PINNED[activation]
    return [float(np.mean(np.abs(a - centre) > half_width)) for a in activations]


def init_problem(
    std: Sequence[float],
    pinned: Sequence[float],
    optimizer: str,
    rule: InitHealth,
) -> str | None:
    """Why a freshly built net cannot learn, from its hidden layers' activation std and
    pinned fractions at init, or None if it looks healthy (see `hpsearch.spec.InitHealth`)."""
    for layer, value in enumerate(std, start=1):
        if value == 0.0:
            return (
                f"init-health: signal collapsed: hidden layer {layer} of {len(std)} gives "
                "one value for every unit and example (activation std 0)"
            )
    if std and optimizer in PROPORTIONAL_STEP and std[-1] < rule.collapse * std[0]:
        return (
            f"init-health: signal collapsed: the last hidden layer's activation std "
            f"{std[-1]:.3g} is {std[-1] / std[0]:.3g} of the first's (collapse = "
            f"{rule.collapse:g}), and {optimizer} steps shrink with it"
        )
    for layer, fraction in enumerate(pinned, start=1):
        if fraction > rule.saturation:
            return (
                f"init-health: saturated: {fraction:.0%} of hidden layer {layer}'s "
                f"activations are pinned at their limits (saturation = {rule.saturation:g})"
            )
    return None


def worker_name() -> str:
    """Which machine and process this is: stored on every trial it runs, to tell
    workers apart when one misbehaves."""
    return f"{socket.gethostname()}:{os.getpid()}"


def trial_rng(spec: StudySpec, trial_number: int) -> np.random.Generator:
    return np.random.default_rng([spec.seed, trial_number])


class Objective:
    """The callable handed to `study.optimize`: returns final validation accuracy."""

    def __init__(
        self, spec: StudySpec, stop: StopRequest | None = None, split: data.Split | None = None
    ) -> None:
        self.spec = spec
        self.stop = stop or StopRequest()
        self._split = split

    def split(self) -> data.Split:
        """The data every trial of this run trains on, loaded once: a data file changed
        on disk while the run goes on is never mixed into it (the study's stored size
        and sha256 were checked against what the run loaded at its start)."""
        if self._split is None:
            self._split = load_split(self.spec.data, self.spec.seed)
        return self._split

    def __call__(self, trial: optuna.Trial) -> float:
        spec = self.spec
        config = resolve(spec, suggest(trial, spec.search.params))
        # A trial re-queued after its worker died inherits the user attrs of the one it
        # retries, this among them: it trains with the same numbers.
        seed_trial = trial.user_attrs.get("seed_trial", trial.number)
        rng = trial_rng(spec, seed_trial)
        started = {"seed_trial": seed_trial, "worker": worker_name()}

        def report(epoch: int, history: History) -> None:
            self.stop.check(f"after epoch {epoch}")
            trial.report(history.val_accuracy[-1], epoch)
            # After the last epoch there is nothing left to save: the trial completes.
            if epoch < config.epochs and trial.should_prune():
                reason = (
                    f"pruned after epoch {epoch} at validation accuracy "
                    f"{history.val_accuracy[-1]:.4f}"
                )
                _store_history(trial, history, diverged=False, reason=reason)
                raise optuna.TrialPruned(reason)

        try:
            history = self.train(trial, config, rng, started, report)
        except Diverged as exc:
            # Not an error of the study: the sampler should learn this region is bad.
            _store_history(trial, exc.history, diverged=True, reason=str(exc))
            raise optuna.TrialPruned(str(exc)) from None
        _store_history(trial, history, diverged=False, reason=None)
        return history.val_accuracy[-1]

    def train(
        self,
        trial: optuna.Trial,
        config: TrialConfig,
        rng: np.random.Generator,
        started: dict[str, Any],
        report: Callable[[int, History], None],
    ) -> History:
        """Build hpsearch's net for `config`, store `started` with its health at init,
        and fit it, calling `report` after every epoch. The rest of a trial (suggest,
        report, prune, store) is `__call__`'s: the bench's study at scale replaces only
        this with a synthetic learning curve."""
        spec = self.spec
        split = self.split()
        net, optimizer = build(config, split, rng)
        activations = net.hidden_activations(split.x_train[: config.batch_size])
        init_std = [float(a.std()) for a in activations]
        pinned = pinned_fraction(activations, config.activation)
        set_user_attrs(
            trial,
            started
            | {"init_activation_std": init_std}
            | ({"init_pinned_fraction": pinned} if pinned else {}),
        )
        if spec.search.init_health.enabled:
            problem = init_problem(init_std, pinned, config.optimizer, spec.search.init_health)
            if problem is not None:
                _store_history(trial, History(), diverged=False, reason=problem)
                raise optuna.TrialPruned(problem)
        return fit(
            net,
            optimizer,
            split,
            epochs=config.epochs,
            batch_size=config.batch_size,
            rng=rng,
            on_epoch=report,
        )


def _store_history(
    trial: optuna.Trial, history: History, *, diverged: bool, reason: str | None
) -> None:
    attrs = {
        "train_loss": history.train_loss,
        "train_accuracy": history.train_accuracy,
        "val_accuracy": history.val_accuracy,
        "epochs_run": history.epochs,
        "seconds": round(sum(history.seconds), 4),
        "diverged": diverged,
    }
    set_user_attrs(trial, attrs | ({"stop_reason": reason} if reason is not None else {}))
