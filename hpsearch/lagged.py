"""Reproducible parallel search: a trial's parameters, pruning and numbers depend on the
spec and the seed alone, not on how many workers run it, where, or how fast.

With free parallel workers, what a trial is sampled from and judged against depends on
which other trials happened to be ahead. Here every trial has a *slot*, its place in the
search, and what it sees is fixed by the slot:

- Sampling: the trial in slot s is sampled from the finished trials of the slots below
  s - lag (and a parent round's copies), by a fresh sampler seeded by (seed, slot). It
  waits for those trials when they still run; the lag is what lets workers run side by
  side without waiting (up to lag + 1 trials at once).
- Pruning, at epoch e: it is judged against the values at epoch e of every earlier slot
  that reached epoch e, waiting until each earlier slot has reached it or ended. That is
  nearly what one worker's median pruner sees (a trial pruned at e counts at e too,
  being known by then), so pruning is not weakened by the lag, and workers move through
  the epochs side by side.
- Its training draws are seeded by the slot.

Slots and trial numbers agree until a trial has to run again (its worker died, was
stopped, or gave way; see below). Its repeat, a new trial with a new number, keeps the
slot (and the parameters) of the trial it repeats (`retried_trial_number` of Optuna's
RetryHeartbeatStaleTrialCallback says which); later trials' slots skip the repeats, and
the trials refused for a full budget. Warm-start copies of a parent round take the first
slots and are shown to every trial (and judged against by none, as in hpsearch.pruning);
start points are trials like any other.

A trial that needs a slot whose trial is queued but not started gives way: it ends
(FAIL) with a repeat of itself queued after the one it needs, so a lone worker cannot
wait on a trial only it could run.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.trial import FrozenTrial, TrialState

from hpsearch.budget import NOT_RUN, BudgetFilled
from hpsearch.pruning import CompletedTrialsView
from hpsearch.stop import StopRequest
from hpsearch.storage import heartbeat_interval

SHOWN = (TrialState.COMPLETE, TrialState.PRUNED)
POLL_SECONDS = (0.005, 0.5)  # a waiting worker reads again, less and less often
STALE_CHECK_SECONDS = 1.0
UNSEEN_SECONDS = 30.0  # waiting this long without heartbeats to tell, a worker says so

logger = logging.getLogger(__name__)


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
    """A trial's place: its slot, and the study's trials as last read (the trials of
    earlier slots only ever gain results, so what they say stays true)."""

    number: int
    slot: int
    lag: int
    trials: list[FrozenTrial]
    gate: Gate
    direction: optuna.study.StudyDirection
    _shown: optuna.Study | None = None

    def by_slot(self) -> dict[int, list[FrozenTrial]]:
        grouped: dict[int, list[FrozenTrial]] = {}
        for trial in self.trials:
            slot = self.gate.slots.get(trial.number)
            if slot is not None:
                grouped.setdefault(slot, []).append(trial)
        return grouped

    def shown(self) -> optuna.Study:
        """What the sampler sees, as a study in memory: the finished trials of the slots
        below slot - lag, and the copies of a parent round, in slot order."""
        if self._shown is None:
            first: list[FrozenTrial] = []
            for slot, trials in sorted(self.by_slot().items()):
                done = [t for t in trials if t.state in SHOWN]
                if done and (slot < self.slot - self.lag or "copied_from" in done[0].user_attrs):
                    first.append(done[0])
            self._shown = optuna.create_study(
                storage=optuna.storages.InMemoryStorage(), direction=self.direction
            )
            self._shown.add_trials(  # what a sampler reads (TPE ranks pruned trials by
                [  # their last reported value); the user attrs' curves would cost copies
                    optuna.trial.create_trial(
                        state=t.state,
                        value=t.value,
                        params=t.params,
                        distributions=t.distributions,
                        intermediate_values=t.intermediate_values,
                    )
                    for t in first
                ]
            )
        return self._shown


_current: dict[tuple[str, int], Snapshot] = {}  # this process's trial's, by (study, number)


@dataclass
class Gate:
    """Admits a trial of a reproducible study: gives it its slot, refuses it when the
    slots are all taken, and waits until the slots it learns from are finished; then
    waits, at each epoch, for the earlier slots to reach it."""

    n_trials: int
    lag: int
    stop: StopRequest = field(default_factory=StopRequest)
    deadline: float | None = None
    slots: dict[int, int] = field(default_factory=dict)  # of the trials last read
    # trial number -> (the first trial of its slot, the slot's trials before it, the
    # parameters it was queued with)
    _first: dict[int, tuple[int, list[int], dict[str, Any]]] = field(default_factory=dict)
    _latest: Snapshot | None = None  # the newest read while the running trial was pruned

    def run(self, trial: optuna.Trial, objective: Callable[[optuna.Trial], float]) -> float:
        """The objective on the admitted trial. A trial that does not end (stopped,
        failed, or giving way) is queued again to run in its slot."""
        study = trial.study
        try:
            taken = self.admit(study, trial.number)
        except GiveWay as error:
            self._repeat(trial, str(error))
            raise
        except BudgetFilled as error:
            trial.set_user_attr("stop_reason", str(error))
            raise
        except BaseException:
            self._repeat(trial, "stopped while it waited")
            raise
        trial.set_user_attr("slot", taken.slot)
        trial.set_user_attr("seed_trial", taken.slot)  # its training draws
        _current.clear()
        _current[study.study_name, trial.number] = taken
        try:
            return objective(trial)
        except optuna.TrialPruned:
            raise
        except BaseException as error:
            self._repeat(trial, f"{type(error).__name__}: {error}"[:200])
            raise

    def admit(self, study: optuna.Study, number: int) -> Snapshot:
        """The trial's snapshot, once the slots below slot - lag are finished."""

        def admitted(taken: Snapshot) -> tuple[list[int], int | None]:
            if number not in self.slots:  # raced: created past another machine's last
                raise BudgetFilled(f"{NOT_RUN} the study's slots were taken by other workers")
            copies = sum(1 for t in taken.trials if "copied_from" in t.user_attrs)
            if taken.slot >= copies + self.n_trials:
                raise BudgetFilled(
                    f"{NOT_RUN} the study's {self.n_trials} trials were taken by other workers"
                )
            grouped = taken.by_slot()
            twins = [t for t in grouped.get(taken.slot, []) if t.number != number]
            done = [t.number for t in twins if t.state in SHOWN]
            if done:  # queued twice (a worker died as it queued it again): run once
                raise BudgetFilled(f"{NOT_RUN} its slot {taken.slot} ran as trial {done[0]}")
            waiting_for, queued = _unresolved(grouped, range(taken.slot - self.lag), _finished)
            if any(t.state == TrialState.RUNNING for t in twins):
                waiting_for.append(taken.slot)  # it may finish, or fail and leave it to us
            return waiting_for, queued

        return self._until(study, number, None, admitted)

    def reached(self, study: optuna.Study, taken: Snapshot, step: int) -> list[float]:
        """The values at `step` of every earlier slot that reached it (copies aside),
        once each earlier slot has reached it or ended."""

        def at_step(trials: Sequence[FrozenTrial]) -> bool:
            return any(step in t.intermediate_values or t.state in SHOWN for t in trials)

        def all_reached(taken: Snapshot) -> tuple[list[int], int | None]:
            grouped = taken.by_slot()
            own = [k for k in range(taken.slot) if not _copied(grouped.get(k, []))]
            return _unresolved(grouped, own, at_step)

        latest = self._latest if self._latest and self._latest.number == taken.number else taken
        self._latest = taken = self._until(study, taken.number, latest, all_reached)
        values = []
        for slot, trials in taken.by_slot().items():
            if slot < taken.slot and not _copied(trials):
                reported = [
                    t.intermediate_values[step] for t in trials if step in t.intermediate_values
                ]
                values += reported[:1]
        return values

    def _until(
        self,
        study: optuna.Study,
        number: int,
        taken: Snapshot | None,
        pending: Callable[[Snapshot], tuple[list[int], int | None]],
    ) -> Snapshot:
        """Read the study until `pending` finds no slot to wait for (starting from what
        `taken` read, when given). A slot whose trial is queued and not running is not
        waited for: this trial gives way to it. Dead workers' trials are failed (and
        queued again) on the way; a stop or the run's deadline ends the wait."""
        poll, next_stale_check = POLL_SECONDS[0], 0.0
        started, warned = time.monotonic(), False
        fresh = taken is None
        taken = taken or self._read(study, number)
        while True:
            waiting_for, queued = pending(taken)
            if queued is not None:
                raise GiveWay(f"gave way to queued trial {queued}, which it needs; it runs again")
            if not waiting_for:
                return taken
            if fresh:
                self.stop.check(f"while trial {number} waited for slot(s) {waiting_for[:3]}")
                if self.deadline is not None and time.time() >= self.deadline:
                    raise GiveWay("the run's time was up while it waited; it runs again")
                if time.monotonic() >= next_stale_check:
                    if heartbeat_interval(study) is not None:
                        fail_stale_trials(study)  # a dead worker's trial is queued again
                    elif time.monotonic() - started > UNSEEN_SECONDS and not warned:
                        warned = True
                        logger.warning(
                            "study %r: trial %d waits for slot(s) %s, running on a storage "
                            "without heartbeats: if a worker died, nothing ends its trial; "
                            "use SQLite or PostgreSQL for a reproducible search",
                            study.study_name,
                            number,
                            ", ".join(map(str, waiting_for[:3])),
                        )
                    next_stale_check = time.monotonic() + STALE_CHECK_SECONDS
                self.stop.wait(poll)
                poll = min(1.5 * poll, POLL_SECONDS[1])
            taken, fresh = self._refresh(study, taken, waiting_for), True

    def _read(self, study: optuna.Study, number: int) -> Snapshot:
        trials = study.get_trials(deepcopy=False)
        self.slots = slots(trials)
        self._remember_first(trials, number)
        slot = self.slots.get(number, -1)
        return Snapshot(number, slot, self.lag, trials, self, study.direction)

    def _refresh(self, study: optuna.Study, taken: Snapshot, waiting_for: list[int]) -> Snapshot:
        """The running trials read again, when every slot waited for runs (a few rows,
        not the whole study: at every epoch of a trial that follows another, this is
        what is read); else the whole study."""
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        others = {self.slots.get(t.number) for t in running if t.number != taken.number}
        if others >= set(waiting_for):
            newer = {t.number: t for t in running}
            trials = [newer.get(t.number, t) for t in taken.trials]
            return Snapshot(taken.number, taken.slot, self.lag, trials, self, taken.direction)
        return self._read(study, taken.number)

    def _repeat(self, trial: optuna.Trial, reason: str) -> None:
        """Queue the trial to run again in its slot, with its parameters so far;
        `failed_trial` (Optuna's RetryHeartbeatStaleTrialCallback's) names the slot's
        first trial, as Optuna's own retries of dead workers' trials do."""
        running = trial.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if all(t.number != trial.number for t in running):
            return  # failed as stale while its worker stood still: Optuna queued it again
        original, history, fixed = self._first.get(trial.number, (trial.number, [], {}))
        trial.set_user_attr("stop_reason", reason)
        trial.study.add_trial(
            optuna.trial.create_trial(
                state=TrialState.WAITING,
                params=trial.params,
                distributions=trial.distributions,
                user_attrs={k: v for k, v in trial.user_attrs.items() if k != "stop_reason"},
                system_attrs={"failed_trial": original, "retry_history": [*history, trial.number]}
                | ({"fixed_params": fixed} if fixed else {}),  # a start point's, not yet asked
            )
        )

    def _remember_first(self, trials: Sequence[FrozenTrial], number: int) -> None:
        if number in self._first:
            return
        self._first.clear()
        mine = next(t for t in trials if t.number == number)
        self._first[number] = (
            mine.system_attrs.get("failed_trial", number),
            list(mine.system_attrs.get("retry_history", [])),
            dict(mine.system_attrs.get("fixed_params", {})),
        )


def _finished(trials: Sequence[FrozenTrial]) -> bool:
    return any(t.state in SHOWN for t in trials)


def _copied(trials: Sequence[FrozenTrial]) -> bool:
    return any("copied_from" in t.user_attrs for t in trials)


def _unresolved(
    grouped: dict[int, list[FrozenTrial]],
    needed: Iterable[int],
    resolved: Callable[[Sequence[FrozenTrial]], bool],
) -> tuple[list[int], int | None]:
    """The needed slots whose trials are not `resolved` yet, and the number of a queued
    trial among them if one of those slots is queued and not running."""
    pending = [slot for slot in needed if not resolved(grouped.get(slot, []))]
    for slot in pending:
        states = {t.state for t in grouped.get(slot, [])}
        if TrialState.WAITING in states and TrialState.RUNNING not in states:
            return pending, min(t.number for t in grouped[slot] if t.state == TrialState.WAITING)
    return pending, None


def snapshot(study: optuna.Study, number: int, lag: int) -> Snapshot:
    """The snapshot the gate took for trial `number` (taken here, waiting without a
    stop, when the sampler runs before the gate, as Optuna releases that sample
    relative parameters at `ask` do)."""
    taken = _current.get((study.study_name, number))
    if taken is None:
        taken = Gate(n_trials=2**62, lag=lag).admit(study, number)
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
        return self._inner, taken.shown()

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
    """Optuna's median pruner, judging a trial at an epoch against the values every
    earlier slot (copies aside) reported at that epoch, once all have reached it."""

    def __init__(self, inner: optuna.pruners.BasePruner, lag: int, warmup: int = 0) -> None:
        self.inner, self.lag, self.warmup = inner, lag, warmup

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step < self.warmup:  # nothing to wait for: no pruning yet
            return False
        taken = snapshot(study, trial.number, self.lag)
        values = taken.gate.reached(study, taken, step)
        judged = [SimpleNamespace(intermediate_values={step: value}) for value in values]
        return self.inner.prune(CompletedTrialsView(study, judged), trial)
