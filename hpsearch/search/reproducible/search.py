"""The sampler and pruner Optuna calls in a reproducible search: each sees only what
the trial's slot fixes (its snapshot; the earlier slots' values at an epoch)."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from hpsearch.records import is_confirmation
from hpsearch.search.pruning import CompletedTrialsView
from hpsearch.search.reproducible.gate import Gate
from hpsearch.search.reproducible.slots import slot_seed


class LaggedSampler(optuna.samplers.BaseSampler):
    """Samples each trial with a fresh sampler seeded by its slot, from its snapshot."""

    def __init__(self, make: Callable[[int], optuna.samplers.BaseSampler], seed: int, lag: int):
        self.make, self.seed, self.lag = make, seed, lag
        self.gate = Gate(n_trials=2**62, lag=lag)  # the worker's own, once `attach` gives it
        self._number: int | None = None
        self._inner: optuna.samplers.BaseSampler | None = None

    def _for(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> tuple[optuna.samplers.BaseSampler, optuna.Study]:
        taken = self.gate.snapshot(study, trial.number)
        if self._number != trial.number or self._inner is None:
            self._number, self._inner = trial.number, self.make(slot_seed(self.seed, taken.slot))
        return self._inner, taken.shown()

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, Any]:
        if is_confirmation(trial):  # queued with every parameter: nothing to sample
            return {}
        inner, shown = self._for(study, trial)
        return inner.infer_relative_search_space(shown, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, Any]
    ) -> dict[str, Any]:
        if is_confirmation(trial):
            return {}
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
        self.gate = Gate(n_trials=2**62, lag=lag)  # the worker's own, once `attach` gives it

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step < self.warmup:  # nothing to wait for: no pruning yet
            return False
        taken = self.gate.snapshot(study, trial.number)
        values = self.gate.reached(study, taken, step)
        judged = [SimpleNamespace(intermediate_values={step: value}) for value in values]
        return self.inner.prune(CompletedTrialsView(study, judged), trial)


def attach(study: optuna.Study, gate: Gate) -> None:
    """Let a reproducible study's sampler and pruner read the snapshots `gate` takes of
    the trials it admits in this process, and wait as it does (its stop, its deadline)."""
    for part in (study.sampler, study.pruner):
        if isinstance(part, LaggedSampler | LaggedPruner):
            part.gate = gate
