"""A pruner wrapper that reads the study's completed trials only when they changed.

Optuna's median (percentile) pruner asks the storage for every completed trial at
every report; with SQLite and ~30 ms epochs that read costs about a fifth of a trial.
The wrapper keeps the completed trials from the trial's first report and, at each
later report, asks the database only how many trials have completed (one COUNT
query): a single worker never re-reads them during a trial, and with several workers
a trial sees a trial that completed elsewhere at its next report, as with Optuna's
own pruner. Reading them once per trial instead made parallel workers prune less than
one worker does (the trials running elsewhere are, more often than not, the long ones
that would have raised the median), so two workers trained a sixth more epochs per
trial for the same configurations.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpsearch.storage import count_live_trials


class _CompletedTrialsView:
    """The study, except that its completed trials come from a snapshot."""

    def __init__(self, study: optuna.Study, completed: list[FrozenTrial]) -> None:
        self._study = study
        self._completed = completed

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[FrozenTrial]:
        if states is not None and tuple(states) == (TrialState.COMPLETE,):
            return self._completed
        return self._study.get_trials(deepcopy=deepcopy, states=states)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)


class CompletedTrialsCache(optuna.pruners.BasePruner):
    def __init__(self, pruner: optuna.pruners.BasePruner) -> None:
        self.pruner = pruner
        self._trial: int | None = None
        self._count: int | None = None
        self._completed: list[FrozenTrial] = []

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        count = count_live_trials(study).get(TrialState.COMPLETE.name, 0)
        if trial.number != self._trial or count != self._count:
            self._trial, self._count = trial.number, count
            self._completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        return self.pruner.prune(_CompletedTrialsView(study, self._completed), trial)
