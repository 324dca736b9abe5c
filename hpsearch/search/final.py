"""The one evaluation on the test split at the end of a study: the chosen trial's
configuration retrained on train + validation for the full epoch count, tested once,
and the result stored with the study.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from hpsearch.data import without_validation
from hpsearch.search.reproducible import place
from hpsearch.search.study import StudyError, check_data_files, load_existing_study, stored_spec
from hpsearch.spec import StudySpec
from hpsearch.train import Diverged, fit
from hpsearch.trials.network import build, load_split, resolve, trial_rng
from hpsearch.trials.python import final_score


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
    validation_accuracy: float
    test_accuracy: float
    epochs: int
    train_examples: int
    metric: str = "accuracy"  # "score" for a python entry, whose value is its own


def retrain_and_test(
    spec: StudySpec, params: dict[str, Any], rng: np.random.Generator
) -> tuple[float, int]:
    """Train a configuration on train + validation for the full epoch count and return
    its test accuracy and the number of training examples; raises `Diverged`."""
    config = resolve(spec, params)
    split = without_validation(load_split(spec.data, spec.seed))
    net, optimizer = build(config, split, rng)
    fit(net, optimizer, split, epochs=config.epochs, batch_size=config.batch_size, rng=rng)
    return net.accuracy(split.x_test, split.t_test), len(split.t_train)


def final(study_name: str, storage_url: str, trial_number: int | None = None) -> FinalResult:
    """Retrain the best trial's configuration (or trial `trial_number`'s, a completed
    one) on train + validation for the full epoch count and evaluate it once on the
    test split: the only reader of the test split."""
    study = load_existing_study(study_name, storage_url)
    spec = stored_spec(study)
    check_data_files(study, spec)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    candidates = complete
    if trial_number is not None:
        candidates = [t for t in complete if t.number == trial_number]
        if not candidates:
            raise StudyError(f"study {study_name!r} has no completed trial {trial_number}")
    if not candidates:
        raise StudyError(f"study {study_name!r} has no completed trial to evaluate")
    # Ties go to the earliest trial: by slot in a reproducible search, whose numbers
    # differ between runs that hold the same trials.
    best = max(candidates, key=lambda t: (t.value, -place(t)))
    seed_trial = best.user_attrs.get("seed_trial", best.number)
    if spec.model.kind == "python":
        return _final_python(study, spec, best, seed_trial)
    rng = trial_rng(spec, seed_trial)
    try:
        test_accuracy, train_examples = retrain_and_test(spec, best.params, rng)
    except Diverged as exc:
        ranked = sorted(complete, key=lambda t: t.value, reverse=True)
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
    return _stored(study, spec, best, test_accuracy, train_examples)


def _stored(
    study: optuna.Study,
    spec: StudySpec,
    best: FrozenTrial,
    test_value: float,
    train_examples: int,
    metric: str = "accuracy",
    **extra: Any,
) -> FinalResult:
    """The result, kept with the study: `test_accuracy` (`test_score` for a python
    entry) and the whole of it as `final`."""
    result = FinalResult(
        trial_number=best.number,
        params=dict(best.params),
        validation_accuracy=float(best.value),
        test_accuracy=test_value,
        epochs=spec.training.epochs,
        train_examples=train_examples,
        metric=metric,
    )
    test = f"test_{metric}"
    study.set_user_attr(test, result.test_accuracy)
    study.set_user_attr(
        "final",
        {
            "trial": result.trial_number,
            "params": result.params,
            f"validation_{result.metric}": result.validation_accuracy,
            test: result.test_accuracy,
            "epochs": result.epochs,
            "train_examples": result.train_examples,
        }
        | extra,
    )
    return result


def _final_python(
    study: optuna.Study, spec: StudySpec, best: FrozenTrial, seed_trial: int
) -> FinalResult:
    """A python entry's one call on the test split (`config.final`), stored as the
    study's `test_score`."""
    place = seed_trial if spec.search.reproducible else best.number  # its config.trial
    score, train_examples, reported = final_score(spec, best.params, place, seed_trial)
    extra = {"reported": reported, "entry": spec.model.entry}
    return _stored(study, spec, best, score, train_examples, "score", **extra)
