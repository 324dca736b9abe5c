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
from hpsearch.records import Metric, place, stored_spec
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
    validation_value: float
    test_value: float
    epochs: int
    train_examples: int
    metric: Metric
    how: str  # how the test value was made


def final(
    study_name: str,
    storage_url: str,
    trial_number: int | None = None,
    code: tuple[str, ...] = (),
) -> FinalResult:
    """Retrain the best trial's configuration (or trial `trial_number`'s, a completed
    one) on train + validation for the full epoch count and evaluate it once on the
    test split: the only reader of the test split. `code`: the folders a python
    entry's module may be imported from."""
    study = load_existing_study(study_name, storage_url)
    spec = dataclasses.replace(stored_spec(study), code=code)
    check_data_files(study, spec)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    candidates = complete
    if trial_number is not None:
        candidates = [t for t in complete if t.number == trial_number]
        if not candidates:
            raise StudyError(f"study {study_name!r} has no completed trial {trial_number}")
    if not candidates:
        raise StudyError(f"study {study_name!r} has no completed trial to evaluate")
    kind = kind_of(spec)
    sign = 1 if kind.metric.direction == "maximize" else -1
    # Ties go to the earliest trial: by slot in a reproducible search, whose numbers
    # differ between runs that hold the same trials.
    best = max(candidates, key=lambda t: (sign * t.value, -place(t)))
    try:
        run = kind.final(spec, best.params, best.number, records.seed_trial(best))
    except Diverged as exc:
        ranked = sorted(complete, key=lambda t: sign * t.value, reverse=True)
        others = [t.number for t in ranked if t.number != best.number][:3]
        hint = (
            f"; evaluate another with --trial N (next best: {', '.join(map(str, others))})"
            if others
            else ""
        )
        raise RetrainDiverged(
            f"retraining trial {best.number} on train + validation diverged at epoch "
            f"{exc.epoch}, step {exc.step} (loss {exc.loss}); the test split was not read" + hint,
            best.number,
        ) from None
    return _stored(study, spec, best, run, kind.metric)


def _stored(
    study: optuna.Study, spec: StudySpec, best: FrozenTrial, run: FinalRun, metric: Metric
) -> FinalResult:
    """The result, kept with the study: the metric's test attribute (`test_accuracy`,
    `test_score`) and the whole of it as `final`."""
    result = FinalResult(
        trial_number=best.number,
        params=dict(best.params),
        validation_value=float(best.value),
        test_value=run.test_value,
        epochs=spec.training.epochs,
        train_examples=run.train_examples,
        metric=metric,
        how=run.how,
    )
    study.set_user_attr(metric.test_attr, result.test_value)
    study.set_user_attr(
        records.FINAL,
        {
            "trial": result.trial_number,
            "params": result.params,
            metric.test_attr.replace("test", "validation", 1): result.validation_value,
            metric.test_attr: result.test_value,
            "epochs": result.epochs,
            "train_examples": result.train_examples,
        }
        | dict(run.extra),
    )
    return result
