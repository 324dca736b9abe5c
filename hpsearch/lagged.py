"""Reproducible parallel search: a trial's parameters, pruning and numbers depend on the
spec and the seed alone, not on how many workers run it, where, or how fast.

With free parallel workers, what a trial is sampled from depends on which other trials
happened to finish first. Here every trial has a *slot*, its place in the search, and
the trial in slot s is sampled from, and pruned against, only the trials of slots below
s - lag, finished: the same set however the trials were spread over workers. A worker
whose trial needs a slot that is still running waits for it (the lag is what lets
workers run side by side without waiting: with lag L, up to L + 1 trials run at once).
The sampler is a fresh one seeded by (seed, slot), so nothing a worker drew before
carries over; its training draws are seeded by the slot as well.

Slots and trial numbers agree until a trial has to run again (its worker died, was
stopped, or gave way; see below). Its repeat, a new trial with a new number, keeps the
slot (and the parameters) of the trial it repeats (`retried_trial_number` of Optuna's
RetryHeartbeatStaleTrialCallback says which); later trials' slots skip the repeats, and
the trials refused for a full budget. Warm-start copies of a parent round take the first
slots and are shown to every trial; start points are trials like any other.

A trial that needs a slot whose trial is queued but not started gives way: it ends
(FAIL) before sampling anything, with a repeat of itself queued after the one it needs,
so a lone worker cannot wait on a trial only it could run.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.trial import FrozenTrial, TrialState

from hpsearch.budget import NOT_RUN, BudgetFilled
from hpsearch.stop import StopRequest
from hpsearch.storage import heartbeat_interval

SHOWN = (TrialState.COMPLETE, TrialState.PRUNED)
POLL_SECONDS = (0.02, 0.5)  # a waiting worker reads the trials again, less and less often
STALE_CHECK_SECONDS = 1.0


class GiveWay(BudgetFilled):
    """Raised in a trial that needs a queued trial first: it ends, and runs again later."""


def slots(trials: Sequence[FrozenTrial]) -> dict[int, int]:
    """Trial number -> slot. A repeat has the slot of the trial it repeats; a trial
    refused for a full budget has none."""
    found: dict[int, int] = {}
    skipped = 0
    with warnings.catch_warnings():  # retried_trial_number is "experimental"
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for trial in sorted(trials, key=lambda t: t.number):
            original = RetryHeartbeatStaleTrialCallback.retried_trial_number(trial)
            if original is not None:
                skipped += 1
                if original in found:
                    found[trial.number] = found[original]
            elif str(trial.user_attrs.get("stop_reason", "")).startswith(NOT_RUN):
                skipped += 1
            else:
                found[trial.number] = trial.number - skipped
    return found


def slot_seed(seed: int, slot: int) -> int:
    return int(np.random.SeedSequence([seed, slot]).generate_state(1)[0])


@dataclass
class Snapshot:
    """What the trial in `slot` learns from: the finished trials of the slots below
    `slot - lag` and the copies of a parent round, in slot order."""

    number: int
    slot: int
    shown: list[FrozenTrial]
    direction: optuna.study.StudyDirection
    _studies: dict[bool, optuna.Study] = field(default_factory=dict)

    def study(self, judged: bool = False) -> optuna.Study:
        """The shown trials as a study in memory, for the sampler (or, `judged`, the
        round's own trials, for the pruner: a parent's copies are not judged against;
        see hpsearch.pruning)."""
        if judged not in self._studies:
            made = optuna.create_study(
                storage=optuna.storages.InMemoryStorage(), direction=self.direction
            )
            made.add_trials(
                [t for t in self.shown if not (judged and "copied_from" in t.user_attrs)]
            )
            self._studies[judged] = made
        return self._studies[judged]


_current: dict[tuple[str, int], Snapshot] = {}  # this process's trial's, by (study, number)


@dataclass
class Gate:
    """Admits a trial of a reproducible study: gives it its slot, refuses it when the
    slots are all taken, and waits until the slots it learns from are finished."""

    n_trials: int
    lag: int
    stop: StopRequest = field(default_factory=StopRequest)
    deadline: float | None = None
    # trial number -> (the first trial of its slot, the trials of the slot before it)
    _first: dict[int, tuple[int, list[int]]] = field(default_factory=dict)

    def run(self, trial: optuna.Trial, objective: Callable[[optuna.Trial], float]) -> float:
        """The objective on the admitted trial. A trial that does not end (stopped,
        failed, or giving way) is queued again to run in its slot."""
        study = trial.study
        try:
            snapshot = self.wait(study, trial.number)
        except GiveWay as error:
            self._repeat(trial, str(error))
            raise
        except BudgetFilled as error:
            trial.set_user_attr("stop_reason", str(error))
            raise
        except BaseException:
            self._repeat(trial, "stopped while it waited")
            raise
        trial.set_user_attr("slot", snapshot.slot)
        trial.set_user_attr("seed_trial", snapshot.slot)  # its training draws
        _current.clear()
        _current[study.study_name, trial.number] = snapshot
        try:
            return objective(trial)
        except optuna.TrialPruned:
            raise
        except BaseException as error:
            self._repeat(trial, f"{type(error).__name__}: {error}"[:200])
            raise

    def _repeat(self, trial: optuna.Trial, reason: str) -> None:
        """Queue the trial to run again in its slot, with its parameters so far;
        `failed_trial` (Optuna's RetryHeartbeatStaleTrialCallback's) names the slot's first
        trial, as Optuna's own retries of dead workers' trials do."""
        running = trial.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if all(t.number != trial.number for t in running):
            return  # failed as stale while its worker stood still: Optuna queued it again
        original, history = self._first.get(trial.number, (trial.number, []))
        trial.set_user_attr("stop_reason", reason)
        trial.study.add_trial(
            optuna.trial.create_trial(
                state=TrialState.WAITING,
                params=trial.params,
                distributions=trial.distributions,
                user_attrs={k: v for k, v in trial.user_attrs.items() if k != "stop_reason"},
                system_attrs={"failed_trial": original, "retry_history": [*history, trial.number]},
            )
        )

    def wait(self, study: optuna.Study, number: int) -> Snapshot:
        poll, next_stale_check = POLL_SECONDS[0], 0.0
        while True:
            trials = study.get_trials(deepcopy=False)
            found = slots(trials)
            self._remember_first(trials, number)
            if number not in found:  # raced: created past another machine's last trial
                raise BudgetFilled(f"{NOT_RUN} the study's slots were taken by other workers")
            slot = found[number]
            copies = sum(1 for t in trials if "copied_from" in t.user_attrs)
            if slot >= copies + self.n_trials:
                raise BudgetFilled(
                    f"{NOT_RUN} the study's {self.n_trials} trials were taken by other workers"
                )
            pending, queued = _pending(trials, found, slot - self.lag)
            if queued is not None:
                raise GiveWay(
                    f"gave way to queued trial {queued}, which it learns from; it runs again"
                )
            if not pending:
                return _snapshot(study, trials, found, number, slot, self.lag)
            self.stop.check(f"while trial {number} waited for trial(s) {pending[:3]}")
            if self.deadline is not None and time.time() >= self.deadline:
                raise GiveWay("the run's time was up while it waited; it runs again")
            if time.monotonic() >= next_stale_check and heartbeat_interval(study) is not None:
                fail_stale_trials(study)  # a dead worker's trial is failed and queued again
                next_stale_check = time.monotonic() + STALE_CHECK_SECONDS
            self.stop.wait(poll)
            poll = min(1.5 * poll, POLL_SECONDS[1])

    def _remember_first(self, trials: Sequence[FrozenTrial], number: int) -> None:
        if number in self._first:
            return
        self._first.clear()
        mine = next(t for t in trials if t.number == number)
        self._first[number] = (
            mine.system_attrs.get("failed_trial", number),
            list(mine.system_attrs.get("retry_history", [])),
        )


def _pending(
    trials: Sequence[FrozenTrial], found: dict[int, int], below: int
) -> tuple[list[int], int | None]:
    """The trials still to finish of the slots below `below`, and the number of a queued
    one of them if one is queued and none of its slot runs."""
    done: set[int] = set()
    live: dict[int, list[FrozenTrial]] = {}
    for trial in trials:
        slot = found.get(trial.number)
        if slot is None or slot >= below:
            continue
        if trial.state in SHOWN:
            done.add(slot)
        else:
            live.setdefault(slot, []).append(trial)
    pending = [slot for slot in range(max(below, 0)) if slot not in done]
    for slot in pending:
        states = {t.state for t in live.get(slot, [])}
        if TrialState.WAITING in states and TrialState.RUNNING not in states:
            return pending, min(t.number for t in live[slot] if t.state == TrialState.WAITING)
    return pending, None


def _snapshot(
    study: optuna.Study,
    trials: Sequence[FrozenTrial],
    found: dict[int, int],
    number: int,
    slot: int,
    lag: int,
) -> Snapshot:
    first: dict[int, FrozenTrial] = {}
    for trial in trials:
        s = found.get(trial.number)
        shown = s is not None and (s < slot - lag or "copied_from" in trial.user_attrs)
        if shown and trial.state in SHOWN and s not in first:
            first[s] = trial
    return Snapshot(number, slot, [first[s] for s in sorted(first)], study.direction)


def snapshot(study: optuna.Study, number: int, lag: int) -> Snapshot:
    """The snapshot the gate took for trial `number` (taken here, waiting without a
    stop, when the sampler runs before the gate, as Optuna releases that sample
    relative parameters at `ask` do)."""
    taken = _current.get((study.study_name, number))
    if taken is None:
        taken = Gate(n_trials=2**62, lag=lag).wait(study, number)
    return taken


class LaggedSampler(optuna.samplers.BaseSampler):
    """Samples each trial with a fresh sampler seeded by its slot, from its snapshot."""

    def __init__(self, make: Callable[[int], optuna.samplers.BaseSampler], seed: int, lag: int):
        self.make, self.seed, self.lag = make, seed, lag
        self._number: int | None = None
        self._inner: optuna.samplers.BaseSampler | None = None

    def _for(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> tuple[optuna.samplers.BaseSampler, optuna.Study]:
        taken = snapshot(study, trial.number, self.lag)
        if self._number != trial.number or self._inner is None:
            self._number, self._inner = trial.number, self.make(slot_seed(self.seed, taken.slot))
        return self._inner, taken.study()

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, Any]:
        inner, shown = self._for(study, trial)
        return inner.infer_relative_search_space(shown, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, Any]
    ) -> dict[str, Any]:
        inner, shown = self._for(study, trial)
        return inner.sample_relative(shown, trial, search_space)

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, name: str, distribution: Any
    ) -> Any:
        inner, shown = self._for(study, trial)
        return inner.sample_independent(shown, trial, name, distribution)


class LaggedPruner(optuna.pruners.BasePruner):
    """Judges each trial against its snapshot's own (not copied) trials."""

    def __init__(self, inner: optuna.pruners.BasePruner, lag: int) -> None:
        self.inner, self.lag = inner, lag

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        return self.inner.prune(snapshot(study, trial.number, self.lag).study(judged=True), trial)
