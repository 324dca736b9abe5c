"""A trial that runs a user's own training function (`[model] kind = "python"`).

The spec names it, `entry = "package.module:function"`, and hpsearch calls it once per
trial with four keyword arguments::

    def objective(config, report, data, rng) -> float:
        net = MyNet(hidden=config["hidden"], seed=rng)       # config: see `Config`
        for epoch in range(1, config.epochs + 1):
            net.train_one_epoch(data.x_train, data.t_train, lr=config["lr"])
            report(epoch, net.accuracy(data.x_val, data.t_val), train_loss=net.loss)
        return net.accuracy(data.x_val, data.t_val)

- `config` (`Config`): the trial's sampled parameters and the spec's fixed values.
- `report(epoch, value, **curves)`: what hpsearch's own trials do after each epoch: the
  value becomes the trial's intermediate value (pruners judge it; a pruned trial's
  `report` raises `optuna.TrialPruned`, which your function should let through), named
  curves are stored in the trial's user attrs, and a value that is NaN or infinite ends
  the trial as diverged (PRUNED, as hpsearch's own net does).
- `data` (`hpsearch.data.Split`): the spec's `[data]`, split into train and validation
  (its test arrays are empty during the search), or None when the spec has no `[data]`.
- `rng`: a `numpy.random.Generator` seeded by the study's seed and the trial's number.

Before the choice, the confirm stage (`[search.confirm]`) calls the function again on
the leading configurations: `config.repeat` is then the re-evaluation's number (1
first; 0 in a search trial), `rng` that repeat's stream (the same for every
configuration, so that they compare paired) and, with `reshuffle`, `data` a
train/validation split drawn anew from the same examples. `report` never prunes then.

It returns the spec's objective (`[search] objective`, by default `val_score`,
maximized): one finite number, or, when the spec names several objectives or
constraints, a dict with exactly those names. `report(epoch, value)` reports the first
objective. Anything else (a tuple, None, a string, a name the spec did not declare)
stops the run after that trial with one line: the contract is checked, not guessed at.
A NaN or infinite value ends the trial as diverged. `hpsearch final` calls it once more
with `config.final` True: `data`'s training arrays are then train + validation, and its
validation arrays are the test split (so the same code returns the test values), and
`report` records but never prunes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna

from hpsearch import records
from hpsearch.data import Split, read_only, without_test, without_validation
from hpsearch.errors import HpsearchError
from hpsearch.records import spec_objectives
from hpsearch.spec import NO_DATA, Choice, IntRange, StudySpec
from hpsearch.stop import StopRequest
from hpsearch.storage import set_user_attrs
from hpsearch.trials.context import (
    final_rng,
    load_split,
    trial_draws,
    worker_name,
)
from hpsearch.trials.entry import EntryError, describe_error, load_entry
from hpsearch.trials.kind import FinalRun, measured_attrs, objective_values
from hpsearch.trials.space import contains, suggest

# What hpsearch writes on a python entry's trial: a named curve may not take these names
# (nor the first objective's, under which the reported values are kept).
RESERVED = frozenset(
    {records.SEED_TRIAL, records.WORKER, records.ENTRY, records.EPOCHS_RUN, records.SECONDS}
    | {records.DIVERGED, records.STOP_REASON, records.COPIED_FROM, records.START, records.SLOT}
    | {records.MEASURED, records.FEASIBLE, records.CONFIRMS, records.REPEAT}
)


class ContractError(EntryError):
    """The function returned something other than what its spec declares."""


@dataclass(frozen=True)
class Config:
    """What a trial's function is told: `params` (sampled, by name), `settings` (the
    spec's `[model] settings`), the spec's `[training]` epochs and batch size, the
    trial's number and the study's seed, and whether this is `final`'s one run on the
    test split. `config["lr"]` reads a parameter, else a setting."""

    params: Mapping[str, Any]
    settings: Mapping[str, Any]
    epochs: int
    batch_size: int
    trial: int
    seed: int
    final: bool = False
    repeat: int = 0  # a re-evaluation of the confirm stage (1 first), else 0

    @classmethod
    def of(
        cls,
        spec: StudySpec,
        params: Mapping[str, Any],
        trial: int,
        final: bool = False,
        repeat: int = 0,
    ) -> Config:
        return cls(
            repeat=repeat,
            params=dict(params),
            settings=dict(spec.model.settings),
            epochs=spec.training.epochs,
            batch_size=spec.training.batch_size,
            trial=trial,
            seed=spec.seed,
            final=final,
        )

    def __getitem__(self, name: str) -> Any:
        if name in self.params:
            return self.params[name]
        if name in self.settings:
            return self.settings[name]
        known = ", ".join(sorted({*self.params, *self.settings})) or "none"
        raise KeyError(f"{name!r} is neither a searched parameter nor a setting ({known})")

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default


@dataclass
class Curves:
    """What the function reported, epoch by epoch."""

    values: list[float] = field(default_factory=list)
    named: dict[str, list[Any]] = field(default_factory=dict)
    seconds: float = 0.0

    def attrs(self, curve: str, *, diverged: bool, reason: str | None) -> dict[str, Any]:
        return (
            dict(self.named)
            | {
                curve: self.values,
                records.EPOCHS_RUN: len(self.values),
                records.SECONDS: round(self.seconds, 4),
                records.DIVERGED: diverged,
            }
            | ({records.STOP_REASON: reason} if reason is not None else {})
        )


class _Diverged(Exception):
    pass


class PythonObjective:
    """The callable handed to `study.optimize` for a python entry: returns the
    function's validation score."""

    def __init__(
        self, spec: StudySpec, stop: StopRequest | None = None, split: Split | None = None
    ) -> None:
        self.spec = spec
        self.stop = stop or StopRequest()
        self.function = load_entry(spec.model.entry, spec.code)
        # The data of every trial of this run, loaded once and read-only (see
        # network.Objective.split); without its test arrays, which only `final` reads.
        self.split = None
        if spec.data.name != NO_DATA:
            loaded = split if split is not None else load_split(spec.data, spec.seed)
            self.split = read_only(without_test(loaded))

    def __call__(self, trial: optuna.Trial) -> float:
        spec = self.spec
        values = suggest(trial, spec.search.params)
        seed_trial = records.seed_trial(trial)
        set_user_attrs(
            trial,
            {
                records.SEED_TRIAL: seed_trial,
                records.WORKER: worker_name(),
                records.ENTRY: spec.model.entry,
            },
        )
        repeat, rng, split = trial_draws(spec, trial.user_attrs, seed_trial, self.split)
        # A re-evaluation is told its configuration's trial (and its repeat).
        number = trial.number if repeat is None else trial.user_attrs[records.CONFIRMS]
        config = Config.of(spec, values, _told(spec, number, seed_trial), repeat=repeat or 0)
        curves = Curves()
        raised: list[BaseException] = []  # what `report` raised, should the function swallow it
        goals = spec_objectives(spec)
        first = goals[0]

        def store(*, diverged: bool, reason: str | None, **more: Any) -> None:
            set_user_attrs(trial, curves.attrs(first.name, diverged=diverged, reason=reason) | more)

        def on_epoch(epoch: int, value: float) -> None:
            self.stop.check(f"after epoch {epoch}")
            if len(goals) > 1:  # Optuna neither takes reports nor prunes here
                return
            trial.report(value, epoch)
            # A re-evaluation runs to the end: its configuration was already chosen.
            if repeat is None and epoch < spec.training.epochs and trial.should_prune():
                reason = f"pruned after epoch {epoch} at {first.label} {value:.4f}"
                store(diverged=False, reason=reason)
                raise optuna.TrialPruned(reason)

        report = _reporter(curves, on_epoch, raised, reserved=RESERVED | {first.name})
        entry = spec.model.entry
        try:
            value = call_entry(self.function, entry, config, report, split, rng)
            if raised:  # the function caught what `report` raised (a prune, a stop)
                raise raised[0]
            measured = returned(value, spec, f"trial {config.trial}: {entry}")
        except _Diverged as exc:
            store(diverged=True, reason=str(exc))
            raise optuna.TrialPruned(str(exc)) from None
        except ContractError as exc:
            store(diverged=False, reason=str(exc))
            raise
        store(diverged=False, reason=None, **measured_attrs(trial, spec, measured))
        return objective_values(goals, measured)


def returned(value: Any, spec: StudySpec, who: str) -> dict[str, float]:
    """What the function returned, by metric name, held to its spec: one finite number
    when the spec declares one objective and no constraint, else a dict of exactly the
    declared names. NaN or infinity: diverged. Anything else: `ContractError`."""
    declared = [o.name for o in spec.objectives]
    declared += [name for name in spec.search.constraints if name not in declared]
    wanted = (
        f"one number ({declared[0]}), or a dict with {declared[0]}"
        if len(declared) == 1
        else f"a dict with {', '.join(declared[:-1])} and {declared[-1]}"
    )
    if len(declared) == 1 and _number(value):
        value = {declared[0]: value}
    if not isinstance(value, Mapping):
        got = "None" if value is None else f"a {type(value).__name__}"
        raise ContractError(f"{who} returned {got}; return {wanted}")
    names = list(value)
    unknown = [n for n in names if n not in declared]
    missing = [n for n in declared if n not in names]
    if unknown or missing:
        problem = (
            f"returned {unknown[0]!r}, which the spec does not declare"
            if unknown
            else f"returned no {missing[0]!r}"
        )
        raise ContractError(f"{who} {problem}; return {wanted}")
    measured = {}
    for name in declared:
        item = value[name]
        if not _number(item):
            raise ContractError(f"{who} returned {name} = {item!r}; return {wanted} of numbers")
        if not math.isfinite(float(item)):
            raise _Diverged(f"diverged: returned {name} = {float(item)}")
        measured[name] = float(item)
    return measured


def _told(spec: StudySpec, number: int, seed_trial: int) -> int:
    """The trial number a function is told (`config.trial`): a reproducible search's
    slot, so that what the function seeds from it repeats; else the trial's number."""
    return seed_trial if spec.search.reproducible else number


def _reporter(
    curves: Curves,
    on_epoch: Callable[[int, float], None],
    raised: list[BaseException],
    reserved: frozenset[str],
) -> Callable[..., None]:
    started = [time.perf_counter()]

    def report(epoch: int, value: float, **named: Any) -> None:
        if raised:  # pruned or stopped already, and the function caught it: again
            raise raised[0]
        if isinstance(epoch, bool) or not isinstance(epoch, int | np.integer) or epoch < 1:
            raise EntryError(f"report(epoch, value): epoch must be an integer >= 1, got {epoch!r}")
        if epoch != len(curves.values) + 1:
            raise EntryError(
                f"report(epoch, value): epochs are reported once each, in order: expected "
                f"{len(curves.values) + 1}, got {epoch}"
            )
        taken = sorted(set(named) & reserved)
        if taken:
            raise EntryError(f"report(..., {taken[0]}=...): {taken[0]!r} is hpsearch's own name")
        now = time.perf_counter()
        curves.seconds += now - started[0]
        started[0] = now
        number = _as_number(value, "value")
        curves.values.append(number)
        for name, item in named.items():
            curves.named.setdefault(name, []).append(_as_number(item, name))
        try:
            if not math.isfinite(number):
                raise _Diverged(f"diverged: reported {number} at epoch {epoch}")
            on_epoch(int(epoch), number)
        except BaseException as exc:
            raised.append(exc)
            raise

    return report


def call_entry(
    function: Callable[..., Any],
    entry: str,
    config: Config,
    report: Callable[..., None],
    data: Split | None,
    rng: np.random.Generator,
) -> Any:
    """Call the user's function; its own errors become one line that says where."""
    try:
        return function(config=config, report=report, data=data, rng=rng)
    except (optuna.TrialPruned, HpsearchError, _Diverged, KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        raise EntryError(f"trial {config.trial}: {entry} raised {describe_error(exc)}") from exc


def final_data(spec: StudySpec) -> Split | None:
    """`final`'s data: train + validation to train on, the test split as validation."""
    if spec.data.name == NO_DATA:
        return None
    joined = without_validation(load_split(spec.data, spec.seed))
    return read_only(
        Split(
            name=joined.name,
            x_train=joined.x_train,
            t_train=joined.t_train,
            x_val=joined.x_test,
            t_val=joined.t_test,
            x_test=joined.x_test,
            t_test=joined.t_test,
            n_classes=joined.n_classes,
            classes=joined.classes,
        )
    )


def _as_number(value: Any, name: str) -> float:
    if not _number(value):
        raise EntryError(f"report: {name} must be a number, got {value!r}")
    return float(value)


def _number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _fits(value: Any, param: Any) -> bool:
    """Whether a setting can be its searched parameter's start point: a value of the
    parameter's type, inside it (a setting may hold anything)."""
    if isinstance(param, Choice):
        return any(value == c and type(value) is type(c) for c in param.choices)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or (isinstance(param, IntRange) and not isinstance(value, int)):
        return False
    return contains(param, value)


class PythonKind:
    """A user's own training function as a trial kind (`[model] kind = "python"`)."""

    imports_code = True
    predicts_probabilities = False

    def prepare(self, spec: StudySpec) -> Split | None:
        """The entry importable here (before the data: a worker that must refuse it says
        so at once), then the data, if the spec has any."""
        load_entry(spec.model.entry, spec.code)
        return None if spec.data.name == NO_DATA else load_split(spec.data, spec.seed)

    def objective(
        self, spec: StudySpec, stop: StopRequest | None, split: Split | None
    ) -> PythonObjective:
        return PythonObjective(spec, stop, split)

    def start_point(self, spec: StudySpec) -> dict[str, Any]:
        """The settings of the searched names, where they fit their ranges."""
        return {
            name: value
            for name, value in spec.model.settings.items()
            if name in spec.search.params and _fits(value, spec.search.params[name])
        }

    def final(
        self,
        spec: StudySpec,
        params: Mapping[str, Any],
        number: int,
        seed_trial: int,
        repeat: int = 0,
    ) -> FinalRun:
        """The function called once with `config.final` True, on train + validation with
        the test split as its validation data; its return is the test score."""
        function = load_entry(spec.model.entry, spec.code)
        data = final_data(spec)
        curves = Curves()
        config = Config.of(spec, params, _told(spec, number, seed_trial), final=True)
        raised: list[BaseException] = []
        reserved = RESERVED | {spec.objectives[0].name}
        report = _reporter(curves, lambda epoch, value: None, raised, reserved)
        rng = final_rng(spec, seed_trial, repeat)  # each retraining's own draws
        entry = spec.model.entry
        try:
            value = call_entry(function, entry, config, report, data, rng)
            if raised:
                raise raised[0]
            measured = returned(value, spec, f"final: {entry}")
        except _Diverged as exc:
            raise HpsearchError(f"final: {entry} {exc}; the score is not stored") from None
        train_examples = 0 if data is None else len(data.t_train)
        trained = "on its own data" if data is None else f"trained on {train_examples} examples"
        how = f"from the entry's call with config.final ({trained}, tested on the test split)"
        extra = {"reported": curves.values, "entry": entry}
        return FinalRun(measured, train_examples, how, extra)

    def init_reference(self, spec: StudySpec) -> None:
        return None
