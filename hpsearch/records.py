"""What studies and trials store, in one place: every attribute hpsearch writes beside
what Optuna keeps itself (params, values, intermediate values), its type, who writes it
and who reads it; the metric a study's values are; and the readers of all of it.

Every other module names an attribute through this one, so a study written by one
part of hpsearch reads the same in every other (the pandas frames, `trials`, `report`,
`narrow`, `final`, `--compare`, the dashboard). Readers fall back on what a study made
by an older hpsearch, or by plain Optuna code, lacks.
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpsearch.errors import StudyError
from hpsearch.spec import StudySpec, from_dict

# -- what a study's values are ----------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """What a trial's value measures. `name` is Optuna's metric name (optuna-dashboard
    shows it, `study.trials_dataframe()` calls the column `value_<name>`, and a trial
    stores its per-epoch curve under it); `label` is what sentences, figures and axes
    say, `short` a table's column; `test_attr` the study attribute `final` writes."""

    name: str
    label: str
    short: str
    test_attr: str
    direction: str = "maximize"
    unit_interval: bool = False  # values lie in [0, 1]: figures use that fixed scale

    @property
    def test_label(self) -> str:
        return self.label.replace("validation", "test", 1)


VAL_ACCURACY = Metric(
    "val_accuracy", "validation accuracy", "val acc", "test_accuracy", unit_interval=True
)
VAL_SCORE = Metric("val_score", "validation score", "val score", "test_score")
METRICS = (VAL_ACCURACY, VAL_SCORE)


def metric_of(study: optuna.Study) -> Metric:
    """The metric a study's values are, from the metric name it stored. A study that
    stored none is hpsearch's network's when hpsearch made it (before metric names were
    stored) and an unnamed 'value' otherwise."""
    names = study.metric_names
    for metric in METRICS:
        if names == [metric.name]:
            return metric
    if names is None and SPEC in study.user_attrs:
        return VAL_ACCURACY
    name = names[0] if names else "value"
    return Metric(name, name, name, f"test_{name}")


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
    Attribute(FINAL, "dict: final's whole result", "search.final", "report, cli"),
    Attribute(VAL_ACCURACY.test_attr, "float: the net's test accuracy", "search.final", "report"),
    Attribute(VAL_SCORE.test_attr, "float: a python entry's test score", "search.final", "report"),
)

# Trial user attributes.
SEED_TRIAL = "seed_trial"
WORKER = "worker"
ENTRY = "entry"
SLOT = "slot"
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

TRIAL_ATTRIBUTES = (
    Attribute(SEED_TRIAL, "int: the number its random draws are seeded by", "trials", "final"),
    Attribute(WORKER, "str: host:pid of the process that ran it", "trials", "people"),
    Attribute(ENTRY, "str: a python entry's module:function", "trials.python", "people"),
    Attribute(SLOT, "int: its place in a reproducible search", "search.reproducible", "all"),
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
    Attribute(INIT_ACTIVATION_STD, "[float] per hidden layer at init", "trials.network", "people"),
    Attribute(INIT_PINNED_FRACTION, "[float] saturated units at init", "trials.network", "people"),
)
# Curves hpsearch itself writes, per epoch.
CURVES = (TRAIN_LOSS, TRAIN_ACCURACY, VAL_ACCURACY.name, VAL_SCORE.name)

# -- trials -----------------------------------------------------------------------------

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)  # ran to the end, or was stopped early
NOT_RUN = "not run:"  # how the stop_reason of a trial refused for a full budget starts


def is_copy(trial: FrozenTrial) -> bool:
    """Whether a trial was copied in from a parent round (it did not run in this study)."""
    return COPIED_FROM in trial.user_attrs


def was_refused(trial: FrozenTrial) -> bool:
    """Whether a trial was refused before it ran, its study's budget being full."""
    return str(trial.user_attrs.get(STOP_REASON, "")).startswith(NOT_RUN)


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


def stored_spec(study: optuna.Study) -> StudySpec:
    """The spec a study was created from, read back from its user attrs."""
    raw = study.user_attrs.get(SPEC)
    if raw is None:
        raise StudyError(f"study {study.study_name!r} was not created by hpsearch (no spec)")
    return from_dict(raw, source=f"study {study.study_name!r}")


def round_of(study: optuna.Study) -> int:
    return study.user_attrs.get(ROUND, 1)


def parent_of(study: optuna.Study) -> str | None:
    return study.user_attrs.get(PARENT)
