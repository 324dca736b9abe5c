"""Slots: which place in a reproducible search each trial holds (repeats keep their
slot's, refused trials have none), and a trial's snapshot of the study."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from hpsearch.records import FINISHED, is_confirmation, is_copy, was_refused

SHOWN = FINISHED  # what a later slot learns from: a trial that ran to its end or was pruned


def slots(trials: Sequence[FrozenTrial]) -> dict[int, int]:
    """Trial number -> slot. A repeat has the slot of the trial it repeats; a trial
    refused for a full budget has none, nor has a re-evaluation of the confirm stage
    (which is known by its configuration's slot and its repeat)."""
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
            elif was_refused(trial) or is_confirmation(trial):
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
    trials: list[FrozenTrial]
    slots: Mapping[int, int]  # trial number -> slot, as read with `trials`
    lag: int
    direction: optuna.study.StudyDirection
    _shown: optuna.Study | None = None

    def by_slot(self) -> dict[int, list[FrozenTrial]]:
        grouped: dict[int, list[FrozenTrial]] = {}
        for trial in self.trials:
            slot = self.slots.get(trial.number)
            if slot is not None:
                grouped.setdefault(slot, []).append(trial)
        return grouped

    def shown(self) -> optuna.Study:
        """What the sampler sees, as a study in memory: the finished trials of the slots
        below slot - lag, and the copies of a parent round, in slot order."""
        if self._shown is None:
            first: list[FrozenTrial] = []
            below = self.slot - self.lag
            for slot, trials in sorted(self.by_slot().items()):
                done = [t for t in trials if t.state in SHOWN]
                if done and (slot < below or is_copy(done[0])):
                    first.append(done[0])
            self._shown = optuna.create_study(
                storage=optuna.storages.InMemoryStorage(), direction=self.direction
            )
            self._shown.add_trials(  # what a sampler reads (TPE ranks pruned trials by
                [  # their last reported value); the user attrs' curves would cost copies
                    as_shown(t) for t in first
                ]
            )
        return self._shown


def as_shown(trial: FrozenTrial) -> FrozenTrial:
    """A finished trial as the sampler reads it: its state, value, parameters, curve,
    and its distance from each constraint (which steers a constrained sampler away)."""
    copy = optuna.trial.create_trial(
        state=trial.state,
        value=trial.value,
        params=trial.params,
        distributions=trial.distributions,
        intermediate_values=trial.intermediate_values,
    )
    for key, value in trial.constraints.items():
        copy.set_constraint(key, value)
    return copy


def finished(trials: Sequence[FrozenTrial]) -> bool:
    return any(t.state in SHOWN for t in trials)


def copied(trials: Sequence[FrozenTrial]) -> bool:
    return any(is_copy(t) for t in trials)


def unresolved(
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
