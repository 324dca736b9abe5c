"""The one evaluation on the test split at the end of a study: the chosen trial's
configuration retrained on train + validation for the full epoch count, tested once,
and the result stored with the study.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpsearch import records
from hpsearch.errors import StudyError
from hpsearch.records import Metric, objectives_of, stored_spec
from hpsearch.search.pick import parse_pick
from hpsearch.search.study import check_data_files
from hpsearch.spec import StudySpec
from hpsearch.storage.studies import load_existing_study
from hpsearch.train import Diverged
from hpsearch.trials import FinalRun, kind_of


class RetrainDiverged(StudyError):
    """`final`'s retraining of the chosen trial diverged (a learning rate at the edge of
    stability on the search's data can be over it on train + validation): no model, and
    the test split was not read."""

    def __init__(self, message: str, trial_number: int) -> None:
        super().__init__(message)
        self.trial_number = trial_number

    def __reduce__(self):
        return (type(self), (str(self), self.trial_number))


@dataclass
class FinalResult:
    trial_number: int
    params: dict[str, Any]
    epochs: int
    train_examples: int
    how: str  # how the test value was made
    objectives: tuple[Metric, ...]
    validation_values: dict[str, float]  # each objective's, as during the search
    test_values: dict[str, float]  # each objective's, measured by the retrained model

    @property
    def metric(self) -> Metric:
        """The first objective: what a single-objective study is judged by."""
        return self.objectives[0]

    @property
    def validation_value(self) -> float:
        return self.validation_values[self.metric.name]

    @property
    def test_value(self) -> float:
        return self.test_values[self.metric.name]


def final(
    study_name: str,
    storage_url: str,
    trial_number: int | None = None,
    code: tuple[str, ...] = (),
    pick: str | None = None,
) -> FinalResult:
    """Retrain the best trial's configuration (or trial `trial_number`'s, or the one the
    `pick` rule chooses) on train + validation for the full epoch count and evaluate it
    once on the test split: the only reader of the test split. Only a completed trial
    inside the study's constraints is ever evaluated; with several objectives there is
    no single best, and a trial or a rule must be given. `code`: the folders a python
    entry's module may be imported from."""
    study = load_existing_study(study_name, storage_url)
    spec = dataclasses.replace(stored_spec(study), code=code)
    check_data_files(study, spec)
    objectives = objectives_of(study)
    trials = study.get_trials(deepcopy=False)
    ranked = records.ranked(trials, objectives)
    if trial_number is not None:
        chosen = next((t for t in trials if t.number == trial_number), None)
        if chosen is None or chosen.state != TrialState.COMPLETE:
            raise StudyError(f"study {study_name!r} has no completed trial {trial_number}")
        if not records.is_feasible(chosen):
            raise StudyError(
                f"trial {trial_number} of {study_name!r} is outside the study's constraints "
                f"({_bounds(spec)}); choose a feasible one"
            )
    elif not ranked:
        raise StudyError(f"study {study_name!r} has no completed feasible trial to evaluate")
    elif pick is not None:
        chosen = parse_pick(pick).choose(trials, objectives)
    elif len(objectives) > 1:
        names = ", ".join(m.name for m in objectives)
        raise StudyError(
            f"study {study_name!r} has {len(objectives)} objectives ({names}) and no single "
            "best trial: choose one with --trial N (hpsearch trials --pareto lists the front) "
            f"or a rule, e.g. --pick '{objectives[0].name}>=X, then "
            f"{'min' if not objectives[1].maximized else 'max'} {objectives[1].name}'"
        )
    else:
        chosen = ranked[0]
    kind = kind_of(spec)
    try:
        run = kind.final(spec, chosen.params, chosen.number, records.seed_trial(chosen))
    except Diverged as exc:
        others = [t.number for t in ranked if t.number != chosen.number][:3]
        hint = (
            f"; evaluate another with --trial N (next best: {', '.join(map(str, others))})"
            if others
            else ""
        )
        raise RetrainDiverged(
            f"retraining trial {chosen.number} on train + validation diverged at epoch "
            f"{exc.epoch}, step {exc.step} (loss {exc.loss}); the test split was not read" + hint,
            chosen.number,
        ) from None
    return _stored(study, spec, chosen, run, objectives)


def _validation_key(metric: Metric) -> str:
    """Where `final` keeps the search's value beside the test one: `validation_accuracy`
    beside `test_accuracy`, and `validation_<name>` where the test attribute does not
    start with test."""
    if metric.test_attr.startswith("test"):
        return metric.test_attr.replace("test", "validation", 1)
    return f"validation_{metric.name}"


def _bounds(spec: StudySpec) -> str:
    return ", ".join(
        f"{name} in [{'-inf' if b.min is None else f'{b.min:g}'}, "
        f"{'inf' if b.max is None else f'{b.max:g}'}]"
        for name, b in spec.search.constraints.items()
    )


def _stored(
    study: optuna.Study,
    spec: StudySpec,
    chosen: FrozenTrial,
    run: FinalRun,
    objectives: tuple[Metric, ...],
) -> FinalResult:
    """The result, kept with the study: each objective's test attribute
    (`test_accuracy`, `test_score`, `test_val_loss`, ...) and the whole of it as
    `final`."""
    metric = objectives[0]
    validation = {m.name: float(v) for m, v in zip(objectives, chosen.values, strict=True)}
    test = {m.name: float(run.test_values[m.name]) for m in objectives}
    result = FinalResult(
        trial_number=chosen.number,
        params=dict(chosen.params),
        epochs=spec.training.epochs,
        train_examples=run.train_examples,
        how=run.how,
        objectives=objectives,
        validation_values=validation,
        test_values=test,
    )
    for objective in objectives:
        study.set_user_attr(objective.test_attr, test[objective.name])
    study.set_user_attr(
        records.FINAL,
        {
            "trial": result.trial_number,
            "params": result.params,
            _validation_key(metric): result.validation_value,
            metric.test_attr: result.test_value,
            "epochs": result.epochs,
            "train_examples": result.train_examples,
        }
        | (
            {"objectives": {n: {"validation": validation[n], "test": test[n]} for n in test}}
            if len(objectives) > 1
            else {}
        )
        | dict(run.extra),
    )
    return result
