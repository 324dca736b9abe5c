"""Submit a study to a shared database, and join it as a worker from any machine.

This is Optuna's distributed mode with hpsearch's spec kept in the database: `submit`
creates the study and stores its spec there, and `work` reads it back, so a worker
needs nothing but the database URL (and the data set, which every machine loads
locally). Workers share the trial budget through the database alone (see
`study.Budget`), so they can be started, killed and restarted anywhere, at any time.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable, Iterator

import optuna
from threadpoolctl import threadpool_limits

from hpsearch import records
from hpsearch.records import stored_spec
from hpsearch.search.budget import Budget
from hpsearch.search.confirm import study_done
from hpsearch.search.runner import RunResult, run
from hpsearch.search.samplers import make_pruner, make_sampler
from hpsearch.search.study import open_study
from hpsearch.spec import StudySpec, with_overrides
from hpsearch.storage import HEARTBEAT_SECONDS, DatabaseFile, open_storage
from hpsearch.storage.studies import load_existing_study
from hpsearch.trials import kind_of
from hpsearch.trials.context import worker_name


def submit(spec: StudySpec) -> tuple[optuna.Study, Budget, int | None]:
    """Create the spec's study (or find it, with the same experiment) without running
    a trial; the budget the workers share becomes the spec's `n_trials` (the budget it
    had before, when that changed, is the third value). Everything a worker will need
    is checked here first: sampler and pruner options, the data set, and that the
    network fits the data. A database file deleted or replaced meanwhile is a
    DatabaseVanished, not a study reported in a file that is gone."""
    sampler, pruner = make_sampler(spec), make_pruner(spec)
    kind_of(spec).prepare(spec)  # workers will need the same data, and the same module (--code)
    study = open_study(spec, open_storage(spec.storage), sampler, pruner)
    watch = DatabaseFile.opened(spec.storage, spec.name)
    stored = study.user_attrs[records.SPEC]
    before = stored["search"]["n_trials"]
    if before == spec.search.n_trials:
        before = None
    else:  # workers read the budget from the stored spec: what is printed is what they use
        stored["search"]["n_trials"] = spec.search.n_trials
        study.set_user_attr(records.SPEC, stored)
    budget = Budget.of(study, spec.search.n_trials)
    if watch is not None:
        watch.check(budget.finished)
    return study, budget, before


def _specs_with_budget(
    storage_url: str, study_name: str | None, retry_for: float | None, code: tuple[str, ...]
) -> Iterator[StudySpec]:
    """The stored specs of the studies to work on, with this worker's storage URL (the
    stored one has its password masked) and the folders it trusts."""
    if study_name is not None:
        studies = [load_existing_study(study_name, storage_url, retry_for=retry_for)]
    else:
        storage = open_storage(storage_url, retry_for=retry_for)
        studies = [
            optuna.load_study(study_name=frozen.study_name, storage=storage)
            for frozen in storage.get_all_studies()
            if records.SPEC in frozen.user_attrs
        ]
    for study in studies:
        spec = with_overrides(stored_spec(study), storage=storage_url)
        spec = dataclasses.replace(spec, code=code)
        if not study_done(study, spec):
            yield spec


def machine_stream() -> int:
    """Workers started on several machines (or as several commands) cannot be ordered,
    so each command's sampler stream is told apart by its host and process id: without
    it, two commands starting at once would propose the same trials."""
    return zlib.crc32(worker_name().encode()) or 1


def work(
    storage_url: str,
    study_name: str | None = None,
    *,
    workers: int = 1,
    heartbeat: int | None = HEARTBEAT_SECONDS,
    retry_for: float | None = None,
    on_study: Callable[[StudySpec], None] | None = None,
    on_progress: Callable[[int, float | None], None] | None = None,
    code: tuple[str, ...] = (),
) -> list[RunResult]:
    """Run trials of `study_name`, or of every hpsearch study in the database with
    budget left, until none is left. Each study is worked on once per call: a study
    whose remaining trials all run elsewhere is left to those workers. `code`: the
    folders a python entry's module may be imported from (see `trials.entry`)."""
    results: list[RunResult] = []
    attempted: set[str] = set()
    while True:
        pending = [
            spec
            for spec in _specs_with_budget(storage_url, study_name, retry_for, code)
            if spec.name not in attempted
        ]
        if not pending:
            return results
        spec = pending[0]
        attempted.add(spec.name)
        if on_study is not None:
            on_study(spec)
        # One BLAS thread per worker, as in `run`'s worker processes: K workers on K
        # cores, whether started as --workers K or as K commands.
        with threadpool_limits(limits=1):
            results.append(
                run(
                    spec,
                    workers=workers,
                    spawn=workers > 1,
                    on_progress=on_progress,
                    heartbeat=heartbeat,
                    stream=machine_stream(),
                    retry_for=retry_for,
                )
            )


__all__ = ["submit", "work"]
