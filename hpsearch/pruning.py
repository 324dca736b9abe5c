"""A pruner wrapper that reads the study's completed trials once per trial.

Optuna's median (percentile) pruner asks the storage for every completed trial at
every report; with SQLite and ~30 ms epochs that read costs about a fifth of a trial.
The completed trials cannot change during a trial run by a single worker, so reading
them once per trial gives the same decisions; with several workers a trial sees the
trials completed before it started, as Optuna's samplers do.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState


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


class CompletedOncePerTrial(optuna.pruners.BasePruner):
    def __init__(self, pruner: optuna.pruners.BasePruner) -> None:
        self.pruner = pruner
        self._trial: int | None = None
        self._completed: list[FrozenTrial] = []

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        if trial.number != self._trial:
            self._trial = trial.number
            self._completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        return self.pruner.prune(_CompletedTrialsView(study, self._completed), trial)
