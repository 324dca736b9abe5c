"""The one evaluation on the test split at the end of a study: the chosen trial's
configuration retrained on train + validation for the full epoch count, several times
with other random draws, each tested once, and the results kept with the study.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from hpsearch import records
from hpsearch.errors import StudyError
from hpsearch.nn.net import judge_probabilities
from hpsearch.records import Metric, objectives_of, stored_spec, value_text
from hpsearch.search.pick import parse_pick
from hpsearch.search.study import check_data_files
from hpsearch.spec import StudySpec
from hpsearch.storage.creation import study_lock
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


DEFAULT_SEEDS = 5  # retrainings of the chosen configuration: one is a draw, not a score
INTERVAL = 0.95  # of the mean test value over the retrainings


@dataclass
class FinalResult:
    trial_number: int
    params: dict[str, Any]
    epochs: int
    train_examples: int
    how: str  # how the test values were made
    objectives: tuple[Metric, ...]
    validation_values: dict[str, float]  # each objective's, as during the search
    test_runs: dict[str, list[float]]  # each objective's, per retraining that finished
    looks: int  # times the study's test split has been evaluated, this one included
    diverged: int = 0  # retrainings that diverged (not in test_runs)
    ensemble: dict[str, float] | None = None  # the retrainings' averaged probabilities'
    # The confirm stage's re-evaluations of the configuration: mean, standard error, n.
    reevaluated: dict[str, float | None] | None = None

    @property
    def metric(self) -> Metric:
        """The first objective: what a single-objective study is judged by."""
        return self.objectives[0]

    @property
    def seeds(self) -> int:
        """Retrainings that were tested."""
        return len(self.test_runs[self.metric.name])

    @property
    def test_values(self) -> dict[str, float]:
        """Each objective's mean over the retrainings."""
        return {name: float(np.mean(runs)) for name, runs in self.test_runs.items()}

    @property
    def validation_value(self) -> float:
        return self.validation_values[self.metric.name]

    @property
    def test_value(self) -> float:
        return self.test_values[self.metric.name]

    def interval(self, name: str) -> tuple[float, float] | None:
        """The 95% confidence interval of objective `name`'s mean test value over the
        retrainings (Student's t; None for a single one)."""
        runs = self.test_runs[name]
        if len(runs) < 2:
            return None
        from scipy import stats

        mean = float(np.mean(runs))
        half = float(stats.t.ppf(0.5 + INTERVAL / 2, len(runs) - 1) * stats.sem(runs))
        return mean - half, mean + half


def final(
    study_name: str,
    storage_url: str,
    trial_number: int | None = None,
    code: tuple[str, ...] = (),
    pick: str | None = None,
    *,
    seeds: int = DEFAULT_SEEDS,
    again: bool = False,
    ensemble: bool = False,
    on_seed: Callable[[int, int, dict[Metric, float] | None], None] | None = None,
) -> FinalResult:
    """Retrain the best trial's configuration (or trial `trial_number`'s, or the one the
    `pick` rule chooses) on train + validation for the full epoch count, `seeds` times
    with other random draws, and evaluate each on the test split: the only reader of the
    test split. One retraining is one draw of the seed-to-seed spread; the mean of
    several, with its interval, is the score.

    Only a completed trial inside the study's constraints is ever evaluated; with
    several objectives there is no single best, and a trial or a rule must be given.
    The test split is meant to be looked at once: a study whose test split was
    evaluated before is refused unless `again`, and every result is kept. `ensemble`
    also scores the retrainings' averaged class probabilities (what a user would
    deploy). `on_seed(i, seeds, values)` follows the retrainings: each objective's test
    value (None: diverged). `code`: the folders a python entry's module may be imported
    from."""
    if seeds < 1:
        raise StudyError(f"--seeds must be at least 1, got {seeds}")
    if ensemble and seeds < 2:
        raise StudyError("--ensemble averages several retrainings: give --seeds 2 or more")
    study = load_existing_study(study_name, storage_url)
    spec = dataclasses.replace(stored_spec(study), code=code)
    check_data_files(study, spec)
    objectives = objectives_of(study)
    earlier = records.final_results(study)
    if earlier and not again:
        raise StudyError(_looked_already(study_name, earlier, objectives[0]))
    kind = kind_of(spec)
    if ensemble and not kind.predicts_probabilities:
        raise StudyError(
            f"--ensemble needs class probabilities, and study {study_name!r}'s python entry "
            "returns a score: leave --ensemble out"
        )
    chosen = _chosen(study, spec, objectives, trial_number, pick)
    trials = study.get_trials(deepcopy=False)
    seed_trial = records.seed_trial(chosen)
    runs: list[FinalRun] = []
    for repeat in range(seeds):
        try:
            run = kind.final(spec, chosen.params, chosen.number, seed_trial, repeat)
        except Diverged as exc:
            if on_seed is not None:
                on_seed(repeat, seeds, None)
            diverged = exc
            continue
        runs.append(run)
        if on_seed is not None:
            on_seed(repeat, seeds, {m: float(run.test_values[m.name]) for m in objectives})
    if not runs:
        raise _diverged(study, chosen, objectives, diverged)
    result = FinalResult(
        trial_number=chosen.number,
        params=dict(chosen.params),
        epochs=spec.training.epochs,
        train_examples=runs[0].train_examples,
        how=runs[0].how,
        objectives=objectives,
        validation_values={
            m.name: float(v) for m, v in zip(objectives, chosen.values, strict=True)
        },
        test_runs={m.name: [float(r.test_values[m.name]) for r in runs] for m in objectives},
        looks=len(earlier) + 1,
        diverged=seeds - len(runs),
        ensemble=_ensemble(runs) if ensemble else None,
        reevaluated=_reevaluated(trials, chosen),
    )
    _store(study, storage_url, result, runs[0].extra)
    return result


def _reevaluated(trials: list[FrozenTrial], chosen: FrozenTrial) -> dict[str, float | None] | None:
    """What the confirm stage measured of the chosen configuration, if it was re-evaluated."""
    found = records.confirmed(trials, chosen.number)
    if found is None:
        return None
    return {"mean": found.mean, "standard_error": found.standard_error, "n": found.n}


def _looked_already(study_name: str, earlier: list[dict[str, Any]], metric: Metric) -> str:
    last = earlier[-1]
    value = last.get(metric.test_attr)
    shown = f", {metric.test_label} {value_text(value)}" if value is not None else ""
    times = "once" if len(earlier) == 1 else f"{len(earlier)} times"
    return (
        f"the test split of study {study_name!r} has been evaluated {times} already (trial "
        f"{last.get('trial')}{shown}); each look makes its score a more optimistic estimate. "
        "Add --again to look once more (every result is kept)"
    )


def _chosen(
    study: optuna.Study,
    spec: StudySpec,
    objectives: tuple[Metric, ...],
    trial_number: int | None,
    pick: str | None,
) -> FrozenTrial:
    """The trial whose configuration `final` retrains."""
    study_name = study.study_name
    trials = study.get_trials(deepcopy=False)
    ranked = records.ranked(trials, objectives)
    if trial_number is not None:
        chosen = next((t for t in trials if t.number == trial_number), None)
        if chosen is None or chosen.state != TrialState.COMPLETE:
            raise StudyError(f"study {study_name!r} has no completed trial {trial_number}")
        if records.is_confirmation(chosen):
            origin = chosen.user_attrs[records.CONFIRMS]
            raise StudyError(
                f"trial {trial_number} of {study_name!r} evaluates trial {origin}'s "
                f"configuration again; retrain that configuration with --trial {origin}"
            )
        if not records.is_feasible(chosen):
            raise StudyError(
                f"trial {trial_number} of {study_name!r} is outside the study's constraints "
                f"({_bounds(spec)}); choose a feasible one"
            )
        return chosen
    if not ranked:
        raise StudyError(f"study {study_name!r} has no completed feasible trial to evaluate")
    if pick is not None:
        return parse_pick(pick).choose(trials, objectives)
    if len(objectives) > 1:
        names = ", ".join(m.name for m in objectives)
        raise StudyError(
            f"study {study_name!r} has {len(objectives)} objectives ({names}) and no single "
            "best trial: choose one with --trial N (hpsearch trials --pareto lists the front) "
            f"or a rule, e.g. --pick '{objectives[0].name}>=X, then "
            f"{'min' if not objectives[1].maximized else 'max'} {objectives[1].name}'"
        )
    return ranked[0]


def _diverged(
    study: optuna.Study, chosen: FrozenTrial, objectives: tuple[Metric, ...], exc: Diverged
) -> RetrainDiverged:
    others = [
        t.number
        for t in records.ranked(study.get_trials(deepcopy=False), objectives)
        if t.number != chosen.number
    ][:3]
    hint = (
        f"; evaluate another with --trial N (next best: {', '.join(map(str, others))})"
        if others
        else ""
    )
    return RetrainDiverged(
        f"retraining trial {chosen.number} on train + validation diverged at epoch "
        f"{exc.epoch}, step {exc.step} (loss {exc.loss}); the test split was not read" + hint,
        chosen.number,
    )


def _ensemble(runs: list[FinalRun]) -> dict[str, float]:
    """Test accuracy and cross-entropy of the retrainings' averaged probabilities."""
    averaged = np.mean([run.test_probabilities for run in runs], axis=0)
    loss, accuracy = judge_probabilities(averaged, runs[0].test_labels)
    return {"test_accuracy": accuracy, "test_loss": loss, "seeds": len(runs)}


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


def _store(
    study: optuna.Study, storage_url: str, result: FinalResult, extra: Mapping[str, Any]
) -> None:
    """Keep the result with the study, beside every earlier one (`finals`): the newest
    is also `final`, and each objective's mean test value its test attribute
    (`test_accuracy`, `test_score`, `test_val_loss`, ...). Two `final`s at once each
    keep their look: the list is read again and extended under the study's lock."""
    with study_lock(storage_url, study):
        earlier = records.final_results(study)
        result.looks = len(earlier) + 1
        record = _record(result, extra)
        for objective in result.objectives:
            study.set_user_attr(objective.test_attr, result.test_values[objective.name])
        study.set_user_attr(records.FINALS, [*earlier, record])
        study.set_user_attr(records.FINAL, record)


def _record(result: FinalResult, extra: Mapping[str, Any]) -> dict[str, Any]:
    """The result as the study keeps it."""
    metric = result.metric
    test = result.test_values
    record: dict[str, Any] = {
        "trial": result.trial_number,
        "params": result.params,
        _validation_key(metric): result.validation_value,
        metric.test_attr: result.test_value,
        "epochs": result.epochs,
        "train_examples": result.train_examples,
        "seeds": result.seeds,
        "test_runs": result.test_runs,
        "look": result.looks,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    intervals = {m.name: result.interval(m.name) for m in result.objectives}
    if result.seeds > 1:
        record["interval"] = {name: list(bounds) for name, bounds in intervals.items()}
    if result.diverged:
        record["diverged"] = result.diverged
    if result.ensemble is not None:
        record["ensemble"] = result.ensemble
    if result.reevaluated is not None:
        record["reevaluated"] = result.reevaluated
    if len(result.objectives) > 1:
        record["objectives"] = {
            n: {"validation": result.validation_values[n], "test": test[n]} for n in test
        }
    return record | dict(extra)
