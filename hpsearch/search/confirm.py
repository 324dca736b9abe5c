"""The confirm stage: once the search part of a study's budget has finished, its
leading configurations are evaluated again, in rounds of one repeat each, and a
configuration is dropped once a paired comparison on the repeats so far puts it
clearly behind the leader (a race, as SMAC's intensifier runs one). The choice is then
made on the re-evaluations' mean (`records.ranked`).

Re-evaluations are trials like any other, queued with their configuration's parameters
and `confirms`/`repeat` user attrs, so workers anywhere claim them as they claim
queued trials, a dead worker's is queued again by the heartbeat, and pandas, the
dashboard and `trials` see them. What to queue next is a function of the finished
trials alone, so that any number of workers queues the same re-evaluations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpsearch import records
from hpsearch.records import FINISHED, Metric, is_confirmation, is_copy, spec_objectives
from hpsearch.spec import StudySpec
from hpsearch.storage.creation import study_lock

# A configuration is clearly behind the leader when a one-sided paired t-test at this
# level says the leader is better: with few repeats the spread of the differences is
# itself uncertain, and Student's t widens the margin accordingly.
BEHIND_CONFIDENCE = 0.95


@dataclass(frozen=True)
class Stage:
    """Where a study's confirm stage stands: the re-evaluations to queue now (search
    trial, repeat), how many queued or running ones are awaited, how many of those
    wait to be claimed, and whether it is over."""

    queue: tuple[tuple[FrozenTrial, int], ...] = ()
    awaited: int = 0
    waiting: int = 0
    over: bool = False


def stage(trials: Sequence[FrozenTrial], spec: StudySpec, objectives: tuple[Metric, ...]) -> Stage:
    """The confirm stage of a study whose search part has finished."""
    confirm = spec.search.confirm
    reserve = confirm.reserve(spec.search.n_trials)
    if reserve == 0 or len(objectives) > 1:
        return Stage(over=True)
    searched = [t for t in trials if not is_confirmation(t)]
    # Whole rounds only: a configuration re-evaluated once more than its rivals would
    # be judged on other draws than theirs.
    alive = records.ranked(searched, objectives)[: confirm.configurations(spec.search.n_trials)]
    if len(alive) < 2:  # nothing to choose between
        return Stage(over=True)
    live: dict[tuple[int, int], list[FrozenTrial]] = {}  # queued, running or finished
    for trial in trials:
        key = records.reevaluation_key(trial)
        if key is not None and trial.state != TrialState.FAIL:
            live.setdefault(key, []).append(trial)
    confirmed = records.configurations(list(trials))
    # Re-evaluations of earlier leaders (before the budget was raised) were paid for by
    # the earlier budget: the room is this race's.
    leaders = {t.number for t in alive}
    room = reserve - sum(1 for origin, _ in live if origin in leaders)
    for repeat in range(1, confirm.max_repeats + 1):
        missing = [(t, repeat) for t in alive if (t.number, repeat) not in live]
        unfinished = [
            live[t.number, repeat]
            for t in alive
            if (t.number, repeat) in live and _evaluated(confirmed, t.number) < repeat
        ]
        waiting = sum(all(e.state == TrialState.WAITING for e in run) for run in unfinished)
        if missing and room >= len(missing):
            return Stage(
                queue=tuple(missing),
                awaited=len(unfinished) + len(missing),
                waiting=waiting + len(missing),
            )
        if unfinished:
            return Stage(awaited=len(unfinished), waiting=waiting)
        if missing:  # the budget is spent: the race ends where it stands
            return Stage(over=True)
        alive = survivors(alive, repeat, confirmed, objectives[0])
        if len(alive) < 2:
            break
    return Stage(over=True)


def _evaluated(confirmed: dict[int, records.Configuration], number: int) -> int:
    found = confirmed.get(number)
    return 0 if found is None else found.n


def survivors(
    alive: list[FrozenTrial],
    repeats: int,
    confirmed: dict[int, records.Configuration],
    metric: Metric,
) -> list[FrozenTrial]:
    """The configurations still in the race after `repeats` repeats: a diverged
    re-evaluation drops a configuration, and so does a paired difference to the leader
    (by mean) that a one-sided t-test finds positive at BEHIND_CONFIDENCE."""
    scores = {}
    for trial in alive:
        done = confirmed[trial.number].evaluations[:repeats]
        if all(e.state == TrialState.COMPLETE for e in done):
            scores[trial.number] = [metric.goodness(e.values[0]) for e in done]
    if not scores:
        return []
    leader = max(scores, key=lambda n: math.fsum(scores[n]))  # ties: the better searched

    def behind(number: int) -> bool:
        if number == leader or repeats < 2:
            return False
        differences = [a - b for a, b in zip(scores[leader], scores[number], strict=True)]
        mean = sum(differences) / repeats
        spread = math.sqrt(sum((d - mean) ** 2 for d in differences) / (repeats - 1))
        from scipy.stats import t as student_t  # slow to import: only when a race needs it

        margin = student_t.ppf(BEHIND_CONFIDENCE, repeats - 1) * spread / math.sqrt(repeats)
        return mean > 0 and mean > margin

    return [t for t in alive if t.number in scores and not behind(t.number)]


def twin(trials: Sequence[FrozenTrial], number: int) -> int | None:
    """Another trial of trial `number`'s re-evaluation that finished or runs, numbered
    before it (queued twice, where the storage gave no lock): trial `number` then does
    not run."""
    key = next(records.reevaluation_key(t) for t in trials if t.number == number)
    return next(
        (
            t.number
            for t in sorted(trials, key=lambda t: t.number)
            if t.number < number
            and records.reevaluation_key(t) == key
            and t.state in (*FINISHED, TrialState.RUNNING)
        ),
        None,
    )


def search_budget(spec: StudySpec) -> int:
    """The trials of the budget the search itself runs; the rest is the confirm stage's."""
    return spec.search.confirm.search_trials(spec.search.n_trials)


def study_done(study: optuna.Study, spec: StudySpec) -> bool:
    """Whether nothing is left to run: the search part finished and the confirm stage
    over (a race may end before it used all the trials kept for it)."""
    trials = study.get_trials(deepcopy=False)
    if Spending.of(trials).search_trials < search_budget(spec):
        return False
    return stage(trials, spec, spec_objectives(spec)).over


def reevaluations(study: optuna.Study) -> int:
    """The study's re-evaluations that ran or will run (all but failed ones): what its
    finished and live trial counts hold besides the search's own."""
    return sum(
        is_confirmation(t) and t.state != TrialState.FAIL for t in study.get_trials(deepcopy=False)
    )


def advance(study: optuna.Study, spec: StudySpec, objectives: tuple[Metric, ...]) -> Stage:
    """Queue the re-evaluations the stage needs now, under the lock that one command
    at a time creates the study with (so that two workers do not queue the same one),
    and say where the stage stands."""
    current = stage(study.get_trials(deepcopy=False), spec, objectives)
    if not current.queue:
        return current
    with study_lock(spec.storage, study):
        current = stage(study.get_trials(deepcopy=False), spec, objectives)
        for trial, repeat in current.queue:
            study.enqueue_trial(
                trial.params,
                user_attrs={
                    records.CONFIRMS: trial.number,
                    records.REPEAT: repeat,
                    records.SEED_TRIAL: records.seed_trial(trial),
                },
            )
    return current


@dataclass(frozen=True)
class Spending:
    """What a study's finished trials spent, search and confirm stage apart: trials,
    and epochs (a re-evaluation runs every epoch, a pruned search trial fewer)."""

    search_trials: int
    reevaluations: int
    search_epochs: int
    reevaluation_epochs: int

    @classmethod
    def of(cls, trials: Sequence[FrozenTrial]) -> Spending:
        counts = {True: [0, 0], False: [0, 0]}
        for trial in trials:
            if trial.state in FINISHED and not is_copy(trial):
                epochs = trial.user_attrs.get(records.EPOCHS_RUN, len(trial.intermediate_values))
                counts[is_confirmation(trial)][0] += 1
                counts[is_confirmation(trial)][1] += int(epochs)
        (search, search_epochs), (again, again_epochs) = counts[False], counts[True]
        return cls(search, again, search_epochs, again_epochs)

    def text(self) -> str:
        """'budget: X% search, Y% confirmation (of N epochs; S search trials, R
        re-evaluations)', or '' without a confirm stage."""
        if not self.reevaluations:
            return ""
        total = self.search_epochs + self.reevaluation_epochs
        share = round(100 * self.reevaluation_epochs / total) if total else 0
        return (
            f"budget: {100 - share}% search, {share}% confirmation (of {total} epochs; "
            f"{self.search_trials} search trials, {self.reevaluations} re-evaluations)"
        )
