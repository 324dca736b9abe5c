"""A study's trial budget, counted by the database so that workers on any number of
machines share one exact count: what counts as finished, where a study stands, and the
check that keeps a trial created past the budget from running.

The budget is a total: running a study again continues it up to `search.n_trials`
finished (complete or pruned) trials. Interrupted trials end as FAIL (Optuna marks
them) and do not count, so the next run redoes them. Trials copied in from a parent
round do not count either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpsearch import records
from hpsearch.errors import HpsearchError
from hpsearch.records import FINISHED, NOT_RUN
from hpsearch.search import confirm
from hpsearch.storage import count_live_trials
from hpsearch.trials import TrialObjective


def finished_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Trials this study ran to the end (complete or pruned): its budget's count.
    Trials copied in from a parent round are not among them."""
    return [
        trial
        for trial in study.get_trials(deepcopy=False, states=FINISHED)
        if not records.is_copy(trial)
    ]


def count_finished(study: optuna.Study) -> int:
    """How many of `finished_trials` there are, counted by the database (one query on
    relational storages instead of loading every trial)."""
    return _finished_in(count_live_trials(study))


def _finished_in(counts: dict[str, int]) -> int:
    return sum(counts.get(state.name, 0) for state in FINISHED)


class BudgetFilled(HpsearchError):
    """Raised inside a trial that other workers' trials left no room for."""


@dataclass(frozen=True)
class Budget:
    """Where a study stands against its trial budget, read from the database alone, so
    that workers on any number of machines share one exact count."""

    n_trials: int
    finished: int  # complete or pruned, run by this study (not copied in)
    taken: int  # finished, running or waiting to run
    waiting: int  # enqueued or re-queued, not yet claimed

    @classmethod
    def of(cls, study: optuna.Study, n_trials: int) -> Budget:
        live = {
            state: n
            for state, n in count_live_trials(study).items()
            if state != TrialState.FAIL.name
        }
        return cls(
            n_trials,
            finished=_finished_in(live),
            taken=sum(live.values()),
            waiting=live.get(TrialState.WAITING.name, 0),
        )

    @property
    def done(self) -> bool:
        return self.finished >= self.n_trials

    @property
    def full(self) -> bool:
        """Every remaining slot is running or queued: nothing new may start."""
        return self.taken >= self.n_trials and self.waiting == 0


class WithinBudget:
    """The objective, behind a check that the trial just created is within the budget.

    Local workers claim trials under one lock (the `claim` held from their budget check
    until their trial exists), so they never overshoot. Workers on other machines can:
    two that both saw the last free slot both create a trial. Trial numbers are unique,
    so the one with as many live trials numbered before it as the budget ends as FAIL
    with the reason in a user attr and never counts; a finished trial is never lost.
    """

    def __init__(
        self, objective: TrialObjective, n_trials: int, claim: Any, gate: Any = None
    ) -> None:
        self.objective = objective
        self.gate = gate  # a reproducible study's (search.reproducible.Gate): decides by slot
        self.stop = objective.stop
        self.n_trials = n_trials
        self.claim = claim
        self.claimed = False
        self.number: int | None = None  # the trial this worker runs, or ran last
        # Whether the last trial's own work ended without an error of its own (it
        # returned, or found its trial finished elsewhere): an error after that is
        # Optuna failing to store its end, as for a paused worker's trial taken over.
        self.ended = False

    def __call__(self, trial: optuna.Trial) -> float:
        self.release()
        self.number, self.ended = trial.number, False
        try:
            value = self._run(trial)
        except optuna.exceptions.UpdateFinishedTrialError:
            self.ended = True
            raise
        self.ended = True
        return value

    def _run(self, trial: optuna.Trial) -> float:
        if records.CONFIRMS in trial.user_attrs:
            # Queued by the confirm stage, which kept room for it in the budget.
            ran = confirm.twin(trial.study.get_trials(deepcopy=False), trial.number)
            if ran is not None:
                reason = f"{NOT_RUN} this re-evaluation runs as trial {ran}"
                trial.set_user_attr(records.STOP_REASON, reason)
                raise BudgetFilled(reason)
            return self.objective(trial)
        if self.gate is not None:
            return self.gate.run(trial, self.objective)
        counts = count_live_trials(trial.study, before=trial.number)
        ahead = sum(n for state, n in counts.items() if state != TrialState.FAIL.name)
        if ahead >= self.n_trials:
            reason = f"{NOT_RUN} the study's {self.n_trials} trials were taken by other workers"
            trial.set_user_attr(records.STOP_REASON, reason)
            raise BudgetFilled(reason)
        return self.objective(trial)

    def acquire(self) -> None:
        self.claim.acquire()
        self.claimed = True

    def release(self) -> None:
        if self.claimed:
            self.claimed = False
            self.claim.release()
