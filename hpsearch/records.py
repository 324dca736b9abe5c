"""What studies and trials store, in one place: every attribute hpsearch writes beside
what Optuna keeps itself (params, values, intermediate values), its type, who writes it
and who reads it; the metric a study's values are; and the readers of all of it.

Every other module names an attribute through this one, so a study written by one
part of hpsearch reads the same in every other (the pandas frames, `trials`, `report`,
`narrow`, `final`, `--compare`, the dashboard). Readers fall back on what a study made
by an older hpsearch, or by plain Optuna code, lacks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpsearch.errors import StudyError
from hpsearch.spec import Bound, StudySpec, from_dict

# -- what a study's values are ----------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """What one of a trial's values measures. `name` is Optuna's metric name
    (optuna-dashboard shows it, `study.trials_dataframe()` calls the column
    `value_<name>`, and a trial stores its per-epoch curve under it); `label` is what
    sentences, figures and axes say, `short` a table's column; `test_attr` the study
    attribute `final` writes; `direction` which way is better."""

    name: str
    label: str
    short: str
    test_attr: str
    direction: str = "maximize"
    unit_interval: bool = False  # values lie in [0, 1]: figures use that fixed scale
    of_data: bool = True  # measured on a split (else a property of the model itself)

    @property
    def test_label(self) -> str:
        """What `final` calls its value: the test split's, or (training seconds,
        parameter count) the retrained model's."""
        if not self.of_data:
            return f"{self.label} of the final model"
        if "validation" in self.label:
            return self.label.replace("validation", "test", 1)
        return f"test {self.label}"

    @property
    def maximized(self) -> bool:
        return self.direction == "maximize"

    @property
    def better(self) -> str:
        """'higher is better' or 'lower is better', for every output that shows values."""
        return "higher is better" if self.maximized else "lower is better"

    def goodness(self, value: float) -> float:
        """The value turned so that larger is better: what every ranking sorts by."""
        return value if self.maximized else -value


VAL_ACCURACY = Metric(
    "val_accuracy", "validation accuracy", "val acc", "test_accuracy", unit_interval=True
)
VAL_SCORE = Metric("val_score", "validation score", "val score", "test_score")
VAL_LOSS = Metric("val_loss", "validation loss", "val loss", "test_val_loss", "minimize")
TRAIN_SECONDS = Metric(
    "train_seconds", "training seconds", "train s", "final_train_seconds", "minimize", of_data=False
)
N_PARAMS = Metric(
    "n_params", "parameter count", "params", "final_n_params", "minimize", of_data=False
)
METRICS = (VAL_ACCURACY, VAL_SCORE, VAL_LOSS, TRAIN_SECONDS, N_PARAMS)


def value_text(value: float, decimals: int = 4) -> str:
    """A value as tables, sentences and figures print it: with decimals, as scores and
    losses need, and whole numbers (a parameter count) whole."""
    value = float(value)
    return f"{value:.0f}" if value.is_integer() and abs(value) >= 1 else f"{value:.{decimals}f}"


def metric_named(name: str, direction: str | None = None) -> Metric:
    """The metric of that name: hpsearch's own (in the direction given, if any), or a
    user's, labelled by its name."""
    for metric in METRICS:
        if metric.name == name:
            return (
                metric
                if direction in (None, metric.direction)
                else replace(metric, direction=direction)
            )
    return Metric(name, name, name, f"test_{name}", direction or "maximize")


def objectives_of(study: optuna.Study) -> tuple[Metric, ...]:
    """The metrics a study's values are, in order, from the names and directions it
    stored. A study that stored no names is hpsearch's network's when hpsearch made it
    (before metric names were stored) and unnamed 'value's otherwise."""
    directions = [d.name.lower() for d in study.directions]
    names = study.metric_names
    if names is None:
        if SPEC in study.user_attrs and len(directions) == 1:
            return (VAL_ACCURACY,)
        names = (
            ["value"] if len(directions) == 1 else [f"value_{i}" for i in range(len(directions))]
        )
    return tuple(metric_named(n, d) for n, d in zip(names, directions, strict=True))


def spec_objectives(spec: StudySpec) -> tuple[Metric, ...]:
    """The metrics a spec's study optimizes, in order."""
    return tuple(metric_named(o.name, o.direction) for o in spec.objectives)


def violations(measured: Mapping[str, float], constraints: Mapping[str, Bound]) -> list[float]:
    """Optuna's constraint values, one per bound: <= 0 where it holds, else how far past
    it the trial is. A metric the trial did not measure (stopped early) counts as met:
    only completed trials are ever chosen."""
    found = []
    for name, bound in constraints.items():
        value = measured.get(name)
        if bound.min is not None:
            found.append(0.0 if value is None else bound.min - value)
        if bound.max is not None:
            found.append(0.0 if value is None else value - bound.max)
    return found


def constraint_keys(constraints: Mapping[str, Bound]) -> list[str]:
    """Optuna's constraint keys of a spec's bounds, in `violations`' order."""
    keys = []
    for name, bound in constraints.items():
        keys += [f"{name}.min"] * (bound.min is not None) + [f"{name}.max"] * (
            bound.max is not None
        )
    return keys


def metric_of(study: optuna.Study) -> Metric:
    """The metric of a study's (first) value: what epochs report and pruners judge."""
    return objectives_of(study)[0]


# -- the attributes ---------------------------------------------------------------------


@dataclass(frozen=True)
class Attribute:
    """One user attribute: its name, what it holds, who writes it and who reads it."""

    name: str
    holds: str
    writer: str
    readers: str


# Study user attributes.
SPEC = "spec"
SPEC_SOURCE = "spec_source"
SEED = "seed"
VERSION = "hpsearch_version"
ROUND = "round"
PARENT = "parent"
RANGES = "ranges"
REPRODUCIBLE = "reproducible"
DATA = "data"
WARM_START_TRIALS = "warm_start_trials"
FINAL = "final"
FINALS = "finals"

STUDY_ATTRIBUTES = (
    Attribute(SPEC, "the spec as a dict, storage URL without password", "search.study", "all"),
    Attribute(SPEC_SOURCE, "the spec file's path, or 'defaults'", "search.study", "cli"),
    Attribute(SEED, "int: seed of the split, sampler and trials", "search.study", "dashboard"),
    Attribute(VERSION, "str: the hpsearch that created it", "search.study", "dashboard"),
    Attribute(ROUND, "int: narrowing round, 1 first", "search.study", "frames, report"),
    Attribute(PARENT, "str | None: the round narrowed from", "search.study", "report, study"),
    Attribute(RANGES, "dict: the searched ranges", "search.study", "report"),
    Attribute(REPRODUCIBLE, "{'lag': int}: a reproducible search", "search.study", "cli"),
    Attribute(DATA, "{'files': {path: size, sha256}, ...}: users' files", "search.study", "study"),
    Attribute(WARM_START_TRIALS, "int: trials copied from the parent", "search.study", "rounds"),
    Attribute(FINAL, "dict: final's newest result", "search.final", "report, cli"),
    Attribute(FINALS, "[dict]: every final result, oldest first", "search.final", "final"),
    Attribute(VAL_ACCURACY.test_attr, "float: mean test accuracy", "search.final", "report"),
    Attribute(VAL_SCORE.test_attr, "float: an entry's mean test score", "search.final", "report"),
    Attribute(
        "test_<metric>", "float: another objective's value at final", "search.final", "report"
    ),
)

# Trial user attributes.
SEED_TRIAL = "seed_trial"
WORKER = "worker"
ENTRY = "entry"
SLOT = "slot"
CONFIRMS = "confirms"
REPEAT = "repeat"
START = "start"
COPIED_FROM = "copied_from"
STOP_REASON = "stop_reason"
EPOCHS_RUN = "epochs_run"
SECONDS = "seconds"
DIVERGED = "diverged"
TRAIN_LOSS = "train_loss"
TRAIN_ACCURACY = "train_accuracy"
INIT_ACTIVATION_STD = "init_activation_std"
INIT_PINNED_FRACTION = "init_pinned_fraction"
MEASURED = "metrics"
FEASIBLE = "feasible"

TRIAL_ATTRIBUTES = (
    Attribute(SEED_TRIAL, "int: the number its random draws are seeded by", "trials", "final"),
    Attribute(WORKER, "str: host:pid of the process that ran it", "trials", "people"),
    Attribute(ENTRY, "str: a python entry's module:function", "trials.python", "people"),
    Attribute(SLOT, "int: its place in a reproducible search", "search.reproducible", "all"),
    Attribute(CONFIRMS, "int: the search trial it evaluates again", "search.confirm", "all"),
    Attribute(REPEAT, "int: which re-evaluation, 1 first", "search.confirm", "trials, compare"),
    Attribute(START, "'defaults': a start point queued at creation", "search.study", "people"),
    Attribute(COPIED_FROM, "'study#number': a copy from the parent", "search.study", "all"),
    Attribute(STOP_REASON, "str: why it was pruned, refused or stopped", "trials, search", "cli"),
    Attribute(EPOCHS_RUN, "int: epochs trained", "trials", "frames, compare"),
    Attribute(SECONDS, "float: training seconds", "trials", "frames"),
    Attribute(DIVERGED, "bool: the loss became NaN or infinite", "trials", "frames, plots"),
    Attribute(TRAIN_LOSS, "[float] per epoch", "trials.network", "frames"),
    Attribute(TRAIN_ACCURACY, "[float] per epoch", "trials.network", "frames"),
    Attribute(VAL_ACCURACY.name, "[float] per epoch: the network's value", "trials", "frames"),
    Attribute(VAL_SCORE.name, "[float] per epoch: an entry's reports", "trials.python", "frames"),
    Attribute(VAL_LOSS.name, "[float] per epoch, when the spec uses val_loss", "trials", "frames"),
    Attribute("<objective>", "[float] per epoch: an entry's reports of it", "trials", "frames"),
    Attribute(MEASURED, "{name: float}: every metric the trial measured", "trials", "all"),
    Attribute(FEASIBLE, "bool: inside the spec's constraints", "trials", "all"),
    Attribute(INIT_ACTIVATION_STD, "[float] per hidden layer at init", "trials.network", "people"),
    Attribute(INIT_PINNED_FRACTION, "[float] saturated units at init", "trials.network", "people"),
)
# Curves hpsearch itself writes, per epoch.
CURVES = (TRAIN_LOSS, TRAIN_ACCURACY, VAL_ACCURACY.name, VAL_LOSS.name, VAL_SCORE.name)

# -- trials -----------------------------------------------------------------------------

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)  # ran to the end, or was stopped early
NOT_RUN = "not run:"  # how the stop_reason of a trial refused for a full budget starts


def is_copy(trial: FrozenTrial) -> bool:
    """Whether a trial was copied in from a parent round (it did not run in this study)."""
    return COPIED_FROM in trial.user_attrs


def is_confirmation(trial: FrozenTrial) -> bool:
    """Whether a trial evaluates an earlier trial's configuration again (the confirm
    stage's): it is evidence about that configuration, not a configuration of its own."""
    return CONFIRMS in trial.user_attrs


def reevaluation_key(trial: FrozenTrial) -> tuple[int, int] | None:
    """(the search trial whose configuration it evaluates, repeat) of a re-evaluation,
    or None for any other trial: a re-evaluation retried after its worker died has the
    same key as the one it retries."""
    if not is_confirmation(trial):
        return None
    return int(trial.user_attrs[CONFIRMS]), int(trial.user_attrs.get(REPEAT, 0))


def was_refused(trial: FrozenTrial) -> bool:
    """Whether a trial was refused before it ran, its study's budget being full."""
    return str(trial.user_attrs.get(STOP_REASON, "")).startswith(NOT_RUN)


def is_feasible(trial: FrozenTrial) -> bool:
    """Whether a trial met its study's constraints (a study without any: always), as
    hpsearch marked it or, for a study of plain Optuna code, as Optuna keeps them."""
    if FEASIBLE in trial.user_attrs:
        return trial.user_attrs[FEASIBLE] is not False
    return all(value <= 0 for value in trial.constraints.values())


def candidates(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """The trials a study may choose among: completed, feasible, and configurations of
    their own (not re-evaluations of another trial's)."""
    return [
        t
        for t in trials
        if t.state == TrialState.COMPLETE and is_feasible(t) and not is_confirmation(t)
    ]


@dataclass(frozen=True)
class Configuration:
    """A search trial's configuration with its re-evaluations (one per repeat, the
    first that finished), from which the choice is made: their mean, its standard error
    and how many there are. The search trial's own value is not among them: it was
    re-evaluated for being high, and its luck would count twice."""

    trial: FrozenTrial
    evaluations: tuple[FrozenTrial, ...]  # by repeat

    @property
    def n(self) -> int:
        return len(self.evaluations)

    @property
    def diverged(self) -> bool:
        """A re-evaluation ended without a value (its training diverged)."""
        return any(t.state != TrialState.COMPLETE for t in self.evaluations)

    @property
    def values(self) -> list[float]:
        return [float(t.values[0]) for t in self.evaluations if t.state == TrialState.COMPLETE]

    @property
    def mean(self) -> float | None:
        # Exactly rounded: accuracies are multiples of 1/n, and two configurations with
        # the same values in another order must tie (the earlier then wins), not differ
        # in the last bit.
        values = self.values
        return None if self.diverged or not values else math.fsum(values) / len(values)

    @property
    def standard_error(self) -> float | None:
        values, mean = self.values, self.mean
        if mean is None or len(values) < 2:
            return None
        variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
        return (variance / len(values)) ** 0.5


def configurations(trials: list[FrozenTrial]) -> dict[int, Configuration]:
    """Every re-evaluated configuration, by the number of the search trial that found
    it. A repeat that failed and ran again counts once: its first finished trial."""
    by_number = {t.number: t for t in trials}
    found: dict[int, dict[int, FrozenTrial]] = {}
    for trial in sorted(trials, key=lambda t: t.number):
        key = reevaluation_key(trial)
        if key is None or trial.state not in FINISHED or key[0] not in by_number:
            continue
        found.setdefault(key[0], {}).setdefault(key[1], trial)
    return {
        origin: Configuration(by_number[origin], tuple(e for _, e in sorted(repeats.items())))
        for origin, repeats in found.items()
    }


def confirmed(trials: list[FrozenTrial], number: int) -> Configuration | None:
    """Trial `number`'s configuration as its re-evaluations measured it, or None where
    they give no mean (never re-evaluated, or a re-evaluation diverged)."""
    found = configurations(trials).get(number)
    return None if found is None or found.mean is None else found


def confirmed_values(found: Configuration | None) -> dict[str, float]:
    """A configuration's re-evaluations as the trials frame's columns: their mean, its
    standard error and their number (NaN, NaN and 0 for a trial without any)."""
    nan = math.nan
    if found is None:
        return {"confirmed_mean": nan, "confirmed_se": nan, "confirmed_n": 0}
    mean, error = found.mean, found.standard_error
    return {
        "confirmed_mean": nan if mean is None else mean,
        "confirmed_se": nan if error is None else error,
        "confirmed_n": found.n,
    }


def ranked(trials: list[FrozenTrial], objectives: tuple[Metric, ...]) -> list[FrozenTrial]:
    """The candidates best first: by the one objective in its direction, or, with
    several, by Pareto front (the front first) and then by the first objective. Ties go
    to the earliest trial: by slot in a reproducible search, whose numbers differ
    between runs that hold the same trials.

    Re-evaluated configurations come first, decided by their re-evaluations: those
    evaluated most often (the confirm stage's survivors) by their mean, then those
    dropped earlier, then any whose re-evaluation diverged; the rest follow by value."""
    order = [trial for trial, _ in _ranked_fronts(trials, objectives)]
    confirmed = configurations(trials)
    if not confirmed or len(objectives) > 1:
        return order
    metric = objectives[0]

    def key(index: int) -> tuple:
        found = confirmed.get(order[index].number)
        if found is None:
            return (2, 0, 0.0, index)
        if found.mean is None:
            return (1, 0, 0.0, index)
        return (0, -found.n, -metric.goodness(found.mean), index)

    return [order[i] for i in sorted(range(len(order)), key=key)]


def pareto_front(trials: list[FrozenTrial], objectives: tuple[Metric, ...]) -> list[FrozenTrial]:
    """The feasible completed trials no other one dominates, by the first objective
    (with one objective: every candidate, best first)."""
    return [trial for trial, front in _ranked_fronts(trials, objectives) if front == 0]


def _ranked_fronts(
    trials: list[FrozenTrial], objectives: tuple[Metric, ...]
) -> list[tuple[FrozenTrial, int]]:
    """The candidates with their Pareto fronts, in `ranked`'s order."""
    chosen = candidates(trials)
    fronts = front_ranks(chosen, objectives) if len(objectives) > 1 else [0] * len(chosen)
    pairs = list(zip(chosen, fronts, strict=True))
    pairs.sort(key=lambda p: (p[1], -objectives[0].goodness(p[0].values[0]), place(p[0])))
    return pairs


def front_ranks(trials: list[FrozenTrial], objectives: tuple[Metric, ...]) -> list[int]:
    """Each trial's Pareto front: 0 for the non-dominated, 1 for those only the first
    front dominates, and so on (the non-dominated sorting of NSGA-II)."""
    points = [
        tuple(m.goodness(v) for m, v in zip(objectives, t.values, strict=True)) for t in trials
    ]
    ranks = [-1] * len(points)
    left = set(range(len(points)))
    rank = 0
    while left:
        front = {
            i for i in left if not any(_dominates(points[j], points[i]) for j in left if j != i)
        }
        for i in front:
            ranks[i] = rank
        left -= front
        rank += 1
    return ranks


def _dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(x >= y for x, y in zip(a, b, strict=True)) and a != b


def seed_trial(trial: FrozenTrial) -> int:
    """The number a trial's random draws are seeded by (a retried trial keeps its
    original's; a reproducible trial's is its slot)."""
    return trial.user_attrs.get(SEED_TRIAL, trial.number)


def place(trial: FrozenTrial) -> int:
    """Where a trial stands in its study's search: its slot, or its number (a free
    search's trials, and a round's copies of its parent's, which come first)."""
    if is_copy(trial):
        return trial.number
    return trial.user_attrs.get(SLOT, trial.number)


# -- studies ----------------------------------------------------------------------------


def final_results(study: optuna.Study) -> list[dict[str, Any]]:
    """Every `final` result of the study, oldest first: one per look at its test split
    (a study finalled before every result was kept has its one result)."""
    attrs = study.user_attrs
    kept = attrs.get(FINALS)
    if kept is not None:
        return list(kept)
    return [attrs[FINAL]] if attrs.get(FINAL) else []


def stored_spec(study: optuna.Study) -> StudySpec:
    """The spec a study was created from, read back from its user attrs."""
    attrs = study.user_attrs
    raw = attrs.get(SPEC)
    if raw is None and VERSION in attrs:  # the spec is a new study's last write
        raise StudyError(
            f"study {study.study_name!r} is being created, or its creation was stopped "
            "half-way; the command that creates it (run or submit with its spec) finishes it"
        )
    if raw is None:
        raise StudyError(f"study {study.study_name!r} was not created by hpsearch (no spec)")
    return from_dict(raw, source=f"study {study.study_name!r}")


def round_of(study: optuna.Study) -> int:
    return study.user_attrs.get(ROUND, 1)


def parent_of(study: optuna.Study) -> str | None:
    return study.user_attrs.get(PARENT)
