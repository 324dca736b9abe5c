"""Timed runs of the default study (studies/mnist_lr_wd_init.toml) in a fresh SQLite
database, with 1 or 2 worker processes, searching freely, reproducibly (the spec's
`search.reproducible`) or replaying the parameter sets of an earlier run so that both
sides train the same nets."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from bench import ROOT

STUDY = ROOT / "studies" / "mnist_lr_wd_init.toml"


@dataclass
class StudyRun:
    trials: int
    epochs: int
    seconds: float
    to_first_trial: float = 0.0  # seconds from the call to the first trial's start
    after_last_trial: float = 0.0  # from the last trial's end to the call's return
    idle_at_end: float = 0.0  # between the workers' last trial ends: one worker waits

    @property
    def per_minute(self) -> float:
        return self.trials / self.seconds * 60

    @property
    def epochs_per_minute(self) -> float:
        return self.epochs / self.seconds * 60


def study_run(
    workers: int,
    trials: int,
    folder: Path,
    name: str,
    replay: list[dict] | None = None,
    reproducible: bool = False,
) -> tuple[StudyRun, list[FrozenTrial]]:
    """The default study with `workers` worker processes (one BLAS thread each),
    timed from start to end in a fresh database; with `replay`, trial n trains the
    n-th of those parameter sets, as an earlier run did; with `reproducible`, the
    search is the spec's reproducible one. Returns the run and its trials in trial
    order."""
    from hpsearch import spec
    from hpsearch.search import runner
    from hpsearch.search.study import open_study
    from hpsearch.search.work import quiet_optuna
    from hpsearch.spec import with_overrides
    from hpsearch.storage import open_storage
    from hpsearch.trials.context import load_split

    quiet_optuna()
    study_spec = with_overrides(
        spec.load(STUDY),
        storage=f"sqlite:///{folder / f'{name}.db'}",
        n_trials=trials,
        reproducible=reproducible,
    )
    if replay is not None:  # the replayed trials are all there is, trial 0 included
        study_spec = dataclasses.replace(
            study_spec, search=dataclasses.replace(study_spec.search, start_at_defaults=False)
        )
    # Every run starts with the data loaded and its database and study created.
    load_split(study_spec.data, study_spec.seed)
    open_study(study_spec, open_storage(study_spec.storage))
    with replaying(runner, replay):
        called, start = datetime.now(), time.perf_counter()  # Optuna's clock: local time
        result = runner.run(study_spec, workers=workers, spawn=True)
        seconds = time.perf_counter() - start
        returned = datetime.now()
    done = sorted(result.study.trials, key=lambda t: t.number)
    first = min(t.datetime_start for t in done)
    last = max(t.datetime_complete for t in done)
    if replay is not None and [t.params for t in done] != replay[: len(done)]:
        raise SystemExit(
            "bench: the workers ran trials outside the replayed ones; the scaling figure "
            "would compare different searches"
        )
    # Finished trials only: a reproducible search runs a stopped trial again in its slot.
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    epochs = sum(t.user_attrs.get("epochs_run", 0) for t in done if t.state in finished)
    ends: dict[str, datetime] = {}
    for t in done:
        worker = t.user_attrs.get("worker", "")
        ends[worker] = max(ends.get(worker, t.datetime_complete), t.datetime_complete)
    edges = (
        (first - called).total_seconds(),
        (returned - last).total_seconds(),
        (last - min(ends.values())).total_seconds(),
    )
    return StudyRun(result.finished_now, epochs, seconds, *edges), done


class ReplaySampler(optuna.samplers.BaseSampler):
    """Proposes, for trial n, the n-th parameter set of an earlier run: the same
    configurations in the same order for 1 and for 2 workers. (Enqueuing them instead
    needed a thread in the benchmark's process that fed Optuna's queue while the
    workers ran: with one worker it had a core of its own, with two it took its CPU
    from them, which biased the comparison against two workers.)"""

    def __init__(self, replay: list[dict]) -> None:
        self.replay = replay

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict:
        return {}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, Any]
    ) -> dict:
        return {}

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, name: str, distribution: Any
    ) -> Any:
        return self.replay[trial.number][name]


@contextmanager
def replaying(runner: ModuleType, replay: list[dict] | None) -> Iterator[None]:
    """Workers made inside the block sample from `replay` (they fork from this process,
    which runs no other thread, so they inherit the replacement). The sampler factory is
    replaced in hpsearch.search.runner, where the workers look it up; `study_run` checks that
    the trials did replay."""
    if replay is None:
        yield
        return
    start_method = runner.start_method
    original = runner.make_sampler
    runner.make_sampler = lambda *args, **kwargs: ReplaySampler(replay)
    try:
        if start_method() != "fork":
            raise SystemExit("bench: replaying needs workers forked from this process")
        yield
    finally:
        runner.make_sampler = original
