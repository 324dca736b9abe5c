"""The one interface every kind of trial offers: what its value is (name, direction),
how it checks and loads what its trials need, how it runs one trial (suggest, train,
report, prune), where a new study's search starts, and how `final` runs it once more
on the test split. The spec names the kind; `hpsearch.trials.kind_of` finds it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import optuna

from hpsearch import records
from hpsearch.data import Split
from hpsearch.records import Metric
from hpsearch.spec import StudySpec
from hpsearch.stop import StopRequest


class TrialObjective(Protocol):
    """What `study.optimize` calls for each trial; `stop` ends it between epochs. It
    returns the spec's objective, or a tuple of them in order."""

    spec: StudySpec
    stop: StopRequest

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]: ...


def objective_values(
    objectives: tuple[Metric, ...], measured: Mapping[str, float]
) -> float | tuple[float, ...]:
    """What a trial returns to Optuna: its one objective, or all of them in order."""
    values = tuple(float(measured[metric.name]) for metric in objectives)
    return values[0] if len(values) == 1 else values


def measured_attrs(
    trial: optuna.Trial, spec: StudySpec, measured: Mapping[str, float]
) -> dict[str, Any]:
    """The user attrs that keep what a trial measured and, under the spec's constraints,
    whether it met them all (`feasible`, for hpsearch's tables and plots), for the
    caller to store with the trial's other attrs in one write. Each bound's distance
    goes to Optuna's `set_constraint`, which its samplers, `best_trial` and
    `best_trials` read."""
    attrs: dict[str, Any] = {records.MEASURED: dict(measured)}
    constraints = spec.search.constraints
    if constraints:
        found = records.violations(measured, constraints)
        attrs[records.FEASIBLE] = all(v <= 0 for v in found)
        for key, value in zip(records.constraint_keys(constraints), found, strict=True):
            trial.set_constraint(key, value)
    return attrs


@dataclass(frozen=True)
class FinalRun:
    """What one of `final`'s retrainings gave on the test split: each objective's value
    (by the objective's name), how many examples it trained on, and what else the kind
    stores with the result. A kind that can predict class probabilities gives them with
    the test labels, for an ensemble of the retrainings."""

    test_values: Mapping[str, float]
    train_examples: int
    how: str  # how the test value was made, as `final` prints it
    extra: Mapping[str, Any] = field(default_factory=dict)
    test_probabilities: np.ndarray | None = None  # (examples, classes)
    test_labels: np.ndarray | None = None


class TrialKind(Protocol):
    imports_code: bool  # its trials import the user's code: workers need --code folders
    predicts_probabilities: bool  # its final runs give test probabilities: an ensemble

    def prepare(self, spec: StudySpec) -> Split | None:
        """Check, before the database is touched, what every trial of a run needs, and
        load the data they share (None when there is none)."""

    def objective(
        self, spec: StudySpec, stop: StopRequest | None, split: Split | None
    ) -> TrialObjective:
        """The callable `study.optimize` runs: one trial, reporting every epoch."""

    def start_point(self, spec: StudySpec) -> dict[str, Any]:
        """The searched parameters' own values in the spec, where inside their ranges:
        a new study's first trial."""

    def final(
        self,
        spec: StudySpec,
        params: Mapping[str, Any],
        number: int,
        seed_trial: int,
        repeat: int = 0,
    ) -> FinalRun:
        """Train trial `number`'s configuration on train + validation and test it once,
        with the random draws of retraining `repeat` (`context.final_rng`); raises
        `hpsearch.train.Diverged` when retraining diverges."""

    def init_reference(self, spec: StudySpec) -> tuple[str, int] | None:
        """The init rule and layer width an `init_scale` gain refers to, or None when
        the kind's init scale (if any) is its own."""
