"""The built-in trial kind: hpsearch's NumPy MultiLayerNet, built from the spec's fixed
settings overlaid with a trial's sampled ones, trained for the spec's epochs and judged
by the spec's objectives after the last one: validation accuracy by default, or its
validation loss, training seconds or parameter count.

Knows Optuna's trial API and nothing of storage. Every random draw of a trial comes
from a Generator seeded by (spec seed, trial number), so a trial's numbers depend only
on its spec, its number and its parameters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from hpsearch import data, records
from hpsearch.errors import ConfigError
from hpsearch.nn import MultiLayerNet, Optimizer, make_optimizer, parameter_count
from hpsearch.records import VAL_ACCURACY, VAL_LOSS, spec_objectives
from hpsearch.spec import Choice, FloatRange, IntRange, StudySpec
from hpsearch.stop import StopRequest
from hpsearch.storage import set_user_attrs
from hpsearch.train import Diverged, History, fit
from hpsearch.trials.context import (
    final_rng,
    load_split,
    trial_draws,
    worker_name,
)
from hpsearch.trials.init_health import init_problem, pinned_fraction
from hpsearch.trials.kind import FinalRun, measured_attrs, objective_values
from hpsearch.trials.space import contains, suggest

__all__ = [
    "NetworkKind",
    "Objective",
    "TrialConfig",
    "build",
    "measured",
    "resolve",
    "retrain_and_measure",
    "retrain_and_test",
]


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


def checked_split(spec: StudySpec) -> data.Split:
    """The spec's data, checked against what only the loaded data can refute."""
    split = load_split(spec.data, spec.seed)
    check_against_data(spec, split)
    return split


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


def measured(history: History, n_params: int) -> dict[str, float]:
    """Every metric the network measured, as of the last epoch trained (the validation
    loss when the spec asks for it)."""
    values = {"train_seconds": round(sum(history.seconds), 4), "n_params": float(n_params)}
    if history.val_accuracy:
        values["val_accuracy"] = history.val_accuracy[-1]
    if history.val_loss:
        values["val_loss"] = history.val_loss[-1]
    return values


def needs_val_loss(spec: StudySpec) -> bool:
    """Whether the spec judges trials by the validation loss: only then is it computed,
    a softmax over the validation set every epoch."""
    return VAL_LOSS.name in {o.name for o in spec.objectives} | set(spec.search.constraints)


def epoch_value(name: str, history: History, n_params: int) -> float:
    """What an epoch reports for the objective `name`: its value so far."""
    return measured(history, n_params)[name]


class Objective:
    """The callable handed to `study.optimize`: returns the spec's objectives as the
    trained net measures them after its last epoch."""

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
            self._split = checked_split(self.spec)
        return self._split

    def __call__(self, trial: optuna.Trial) -> float:
        spec = self.spec
        config = resolve(spec, suggest(trial, spec.search.params))
        # A trial re-queued after its worker died inherits the user attrs of the one it
        # retries, this among them: it trains with the same numbers.
        seed_trial = records.seed_trial(trial)
        repeat, rng, split = trial_draws(spec, trial.user_attrs, seed_trial, self.split())
        started = {records.SEED_TRIAL: seed_trial, records.WORKER: worker_name()}
        goals = spec_objectives(spec)
        first = goals[0]
        size = parameter_count(
            split.input_size, config.hidden_sizes, split.n_classes, config.batchnorm
        )

        def store(history: History, *, diverged: bool, reason: str | None) -> None:
            more = measured_attrs(trial, spec, measured(history, size))
            _store_history(trial, history, diverged=diverged, reason=reason, more=more)

        def report(epoch: int, history: History) -> None:
            self.stop.check(f"after epoch {epoch}")
            if len(goals) > 1:  # Optuna neither takes reports nor prunes here
                return
            value = epoch_value(first.name, history, size)
            trial.report(value, epoch)
            # After the last epoch there is nothing left to save: the trial completes.
            # A re-evaluation runs to the end: its configuration was already chosen.
            if repeat is None and epoch < config.epochs and trial.should_prune():
                reason = f"pruned after epoch {epoch} at {first.label} {value:.4f}"
                store(history, diverged=False, reason=reason)
                raise optuna.TrialPruned(reason)

        try:
            history = self.train(trial, config, rng, started, report, split=split)
        except Diverged as exc:
            # Not an error of the study: the sampler should learn this region is bad.
            store(exc.history, diverged=True, reason=str(exc))
            raise optuna.TrialPruned(str(exc)) from None
        store(history, diverged=False, reason=None)
        return objective_values(goals, measured(history, size))

    def train(
        self,
        trial: optuna.Trial,
        config: TrialConfig,
        rng: np.random.Generator,
        started: dict[str, Any],
        report: Callable[[int, History], None],
        split: data.Split | None = None,
    ) -> History:
        """Build hpsearch's net for `config`, store `started` with its health at init,
        and fit it on `split` (the run's own by default), calling `report` after every
        epoch. The rest of a trial (suggest, report, prune, store) is `__call__`'s: the
        bench's study at scale replaces only this with a synthetic learning curve."""
        spec = self.spec
        split = split if split is not None else self.split()
        net, optimizer = build(config, split, rng)
        activations = net.hidden_activations(split.x_train[: config.batch_size])
        init_std = [float(a.std()) for a in activations]
        pinned = pinned_fraction(activations, config.activation)
        set_user_attrs(
            trial,
            started
            | {records.INIT_ACTIVATION_STD: init_std}
            | ({records.INIT_PINNED_FRACTION: pinned} if pinned else {}),
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
            val_loss=needs_val_loss(spec),
        )


def _store_history(
    trial: optuna.Trial,
    history: History,
    *,
    diverged: bool,
    reason: str | None,
    more: Mapping[str, Any] | None = None,
) -> None:
    attrs = {
        records.TRAIN_LOSS: history.train_loss,
        records.TRAIN_ACCURACY: history.train_accuracy,
        VAL_ACCURACY.name: history.val_accuracy,
        records.EPOCHS_RUN: history.epochs,
        records.SECONDS: round(sum(history.seconds), 4),
        records.DIVERGED: diverged,
    }
    if history.val_loss:
        attrs[VAL_LOSS.name] = history.val_loss
    if reason is not None:
        attrs[records.STOP_REASON] = reason
    set_user_attrs(trial, attrs | dict(more or {}))


def retrain_and_test(
    spec: StudySpec, params: Mapping[str, Any], rng: np.random.Generator
) -> tuple[float, int]:
    """Train a configuration on train + validation for the full epoch count and return
    its test accuracy and the number of training examples; raises `Diverged`."""
    run = retrain_and_measure(spec, params, rng)
    return run.test_values["val_accuracy"], run.train_examples


def retrain_and_measure(
    spec: StudySpec, params: Mapping[str, Any], rng: np.random.Generator
) -> FinalRun:
    """Train a configuration on train + validation for the full epoch count; every
    metric the network offers, measured on the test split (under the metric's own name:
    `val_loss` is then the test loss), the number of training examples, and the test
    split's predicted class probabilities."""
    config = resolve(spec, params)
    split = data.without_validation(load_split(spec.data, spec.seed))
    net, optimizer = build(config, split, rng)
    history = fit(
        net, optimizer, split, epochs=config.epochs, batch_size=config.batch_size, rng=rng
    )
    loss, accuracy = net.evaluate(split.x_test, split.t_test)
    size = parameter_count(split.input_size, config.hidden_sizes, split.n_classes, config.batchnorm)
    values = measured(history, size) | {"val_accuracy": accuracy, "val_loss": loss}
    examples = len(split.t_train)
    return FinalRun(
        values,
        examples,
        how=f"after retraining on {examples} examples for {spec.training.epochs} epochs",
        test_probabilities=net.probabilities(split.x_test),
        test_labels=np.asarray(split.t_test),
    )


class NetworkKind:
    """hpsearch's own network as a trial kind (`[model] kind = "multilayernet"`)."""

    imports_code = False
    predicts_probabilities = True

    def prepare(self, spec: StudySpec) -> data.Split:
        return checked_split(spec)

    def objective(
        self, spec: StudySpec, stop: StopRequest | None, split: data.Split | None
    ) -> Objective:
        return Objective(spec, stop, split)

    def start_point(self, spec: StudySpec) -> dict[str, Any]:
        """The network's own values: init scale 1 (the init rule itself), the optimizer's
        usual lr, the spec's fixed settings. A search's first trial there anchors it: with
        init scale searched, most of a wide space cannot train at all, and TPE's random
        start-up trials can miss every trainable region."""
        config = resolve(spec, {})
        values = dataclasses.asdict(config) | {
            "lr": config.lr if config.lr is not None else make_optimizer(config.optimizer).lr,
            "hidden_width": config.hidden_sizes[0] if config.hidden_sizes else None,
            "hidden_depth": len(config.hidden_sizes),
        }
        point: dict[str, Any] = {}
        for name, param in spec.search.params.items():
            value = values.get(name)
            if value is None or not contains(param, value):
                continue
            if isinstance(param, Choice):
                point[name] = value
            else:
                point[name] = int(value) if isinstance(param, IntRange) else float(value)
        return point

    def final(
        self,
        spec: StudySpec,
        params: Mapping[str, Any],
        number: int,
        seed_trial: int,
        repeat: int = 0,
    ) -> FinalRun:
        """The configuration trained on train + validation for the full epoch count,
        tested once on the test split."""
        return retrain_and_measure(spec, params, final_rng(spec, seed_trial, repeat))

    def init_reference(self, spec: StudySpec) -> tuple[str, int]:
        return spec.model.init, spec.model.hidden_sizes[0] if spec.model.hidden_sizes else 100
