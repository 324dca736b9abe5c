"""The gate a reproducible search's trial passes: its slot, its snapshot, and the waits
(at its start, for the slots it learns from; at each epoch, for the earlier slots)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.storages import fail_stale_trials
from optuna.trial import FrozenTrial, TrialState

from hpsearch import records
from hpsearch.records import NOT_RUN, is_copy
from hpsearch.search.budget import BudgetFilled
from hpsearch.search.reproducible.slots import SHOWN, Snapshot, copied, finished, slots, unresolved
from hpsearch.stop import StopRequest
from hpsearch.storage import heartbeat_interval, set_user_attrs

POLL_SECONDS = (0.005, 0.5)  # a waiting worker reads again, less and less often
STALE_CHECK_SECONDS = 1.0
UNSEEN_SECONDS = 30.0  # waiting this long without heartbeats to tell, a worker says so

logger = logging.getLogger(__name__)


class GiveWay(BudgetFilled):
    """Raised in a trial that needs a queued trial first: it ends, and runs again later."""


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
    current: Snapshot | None = None  # the running trial's, for its sampler and pruner

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
            trial.set_user_attr(records.STOP_REASON, str(error))
            raise
        except BaseException:
            self._repeat(trial, "stopped while it waited")
            raise
        # Its draws are seeded by the slot too.
        set_user_attrs(trial, {records.SLOT: taken.slot, records.SEED_TRIAL: taken.slot})
        self.current = taken
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
            copies = sum(1 for t in taken.trials if is_copy(t))
            if taken.slot >= copies + self.n_trials:
                raise BudgetFilled(
                    f"{NOT_RUN} the study's {self.n_trials} trials were taken by other workers"
                )
            grouped = taken.by_slot()
            twins = [t for t in grouped.get(taken.slot, []) if t.number != number]
            done = [t.number for t in twins if t.state in SHOWN]
            if done:  # queued twice (a worker died as it queued it again): run once
                raise BudgetFilled(f"{NOT_RUN} its slot {taken.slot} ran as trial {done[0]}")
            waiting_for, queued = unresolved(grouped, range(taken.slot - self.lag), finished)
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
            own = [k for k in range(taken.slot) if not copied(grouped.get(k, []))]
            return unresolved(grouped, own, at_step)

        latest = self._latest if self._latest and self._latest.number == taken.number else taken
        self._latest = taken = self._until(study, taken.number, latest, all_reached)
        values = []
        for slot, trials in taken.by_slot().items():
            if slot < taken.slot and not copied(trials):
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
        return Snapshot(number, slot, trials, self.slots, self.lag, study.direction)

    def _refresh(self, study: optuna.Study, taken: Snapshot, waiting_for: list[int]) -> Snapshot:
        """The running trials read again, when every slot waited for runs (a few rows,
        not the whole study: at every epoch of a trial that follows another, this is
        what is read); else the whole study."""
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        others = {self.slots.get(t.number) for t in running if t.number != taken.number}
        if others >= set(waiting_for):
            newer = {t.number: t for t in running}
            trials = [newer.get(t.number, t) for t in taken.trials]
            return Snapshot(taken.number, taken.slot, trials, self.slots, self.lag, taken.direction)
        return self._read(study, taken.number)

    def _repeat(self, trial: optuna.Trial, reason: str) -> None:
        """Queue the trial to run again in its slot, with its parameters so far;
        `failed_trial` (Optuna's RetryHeartbeatStaleTrialCallback's) names the slot's
        first trial, as Optuna's own retries of dead workers' trials do."""
        running = trial.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if all(t.number != trial.number for t in running):
            return  # failed as stale while its worker stood still: Optuna queued it again
        original, history, fixed = self._first.get(trial.number, (trial.number, [], {}))
        trial.set_user_attr(records.STOP_REASON, reason)
        trial.study.add_trial(
            optuna.trial.create_trial(
                state=TrialState.WAITING,
                params=trial.params,
                distributions=trial.distributions,
                user_attrs={k: v for k, v in trial.user_attrs.items() if k != records.STOP_REASON},
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

    def snapshot(self, study: optuna.Study, number: int) -> Snapshot:
        """The snapshot this gate took for trial `number` (taken now, waiting without a
        stop, when the sampler runs before the gate, as Optuna releases that sample
        relative parameters at `ask` do)."""
        if self.current is not None and self.current.number == number:
            return self.current
        return Gate(n_trials=2**62, lag=self.lag).admit(study, number)
