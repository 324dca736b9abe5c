"""The median pruner, made to judge a trial the same way with one worker or several.

Optuna's median (percentile) pruner compares a trial's value at a step with the
completed trials' values at that step. Two things change when workers run side by side:

- It reads every completed trial at every report; with SQLite and short epochs that
  read is a sizeable share of a trial. The wrapper keeps the completed trials and, at
  each report, asks the database only how many there are (one COUNT query), reading
  them again when that number changed.
- With one worker, every trial started before this one has ended when it is judged.
  With several, the trials still running elsewhere are, more often than not, the long
  ones that would complete and raise the median, so parallel workers pruned less than
  one: for the same configurations, two workers trained more epochs than one. The
  wrapper adds the values those running trials reported at the step, as the trials
  they will mostly become. With one worker nothing else is running and the decision is
  Optuna's own; the start-up count (`n_startup_trials`) still counts completed trials
  only.

A narrowed round's copies of its parent's trials (user attr `copied_from`) inform the
sampler but are not judged against: they are the parent's survivors, mostly its best,
and a median over them pruned nearly every new trial of a Fashion-MNIST round at
the first epoch it was allowed to. The pruner compares a round's trials with
that round's own, and its start-up count waits for the round's own completed trials.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpsearch import records
from hpsearch.storage import count_live_trials, running_curves, startup_trials


class CompletedTrialsView:
    """The study, except that its completed trials are the ones given."""

    def __init__(self, study: optuna.Study, completed: list[Any]) -> None:
        self._study = study
        self._completed = completed

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[Any]:
        if states is not None and tuple(states) == (TrialState.COMPLETE,):
            return self._completed
        return self._study.get_trials(deepcopy=deepcopy, states=states)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)


class ParallelMedianPruner(optuna.pruners.BasePruner):
    def __init__(self, **options: Any) -> None:
        self.pruner = optuna.pruners.MedianPruner(**options)
        self.startup = startup_trials(self.pruner)
        self._trial: int | None = None
        self._count: int | None = None
        self._completed: list[FrozenTrial] = []

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        counts = count_live_trials(study)
        count = counts.get(TrialState.COMPLETE.name, 0)
        if trial.number != self._trial or count != self._count:
            self._trial, self._count = trial.number, count
            self._completed = [
                t
                for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if not records.is_copy(t)
            ]
        judged: list[Any] = self._completed
        # Only this trial running (one worker): nothing to add, no second query.
        if len(self._completed) >= self.startup and counts.get(TrialState.RUNNING.name, 0) > 1:
            running = running_curves(study, other_than=trial.number)
            judged = judged + [SimpleNamespace(intermediate_values=c) for c in running]
        return self.pruner.prune(CompletedTrialsView(study, judged), trial)
