"""Run a study: in this process, or in worker processes started here (forked, or from a
fork server) that share one database, with progress, signals passed on and workers
that die with their parent.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from traceback import format_exc
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from hpsearch.data import Split, without_test
from hpsearch.errors import HpsearchError, StudyError
from hpsearch.search.budget import count_finished
from hpsearch.search.confirm import search_budget, study_done
from hpsearch.search.samplers import make_pruner, make_sampler
from hpsearch.search.study import open_study
from hpsearch.search.work import quiet_optuna, work
from hpsearch.spec import StudySpec, from_dict
from hpsearch.stop import Interrupted, graceful_stop
from hpsearch.storage import (
    HEARTBEAT_SECONDS,
    MAX_RETRY,
    DatabaseFile,
    StorageUnavailable,
    close_connections,
    display_url,
    open_storage,
    retry_until_stopped,
)
from hpsearch.trials import kind_of

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    study: optuna.Study
    finished_before: int
    finished_now: int


@dataclass(frozen=True)
class WorkerPlan:
    """What every worker process of one run is given (picklable: spawned workers get
    it too). Each worker adds its own number for its sampler stream."""

    spec: dict[str, Any]  # the spec's dict form, rebuilt in the worker
    source: str  # where the spec came from, for its error messages
    deadline: float | None  # time.time() after which no trial starts
    heartbeat: int | None  # the storage's heartbeat interval in seconds
    retry_for: float  # seconds an unreachable database is retried before giving up
    start: int  # trials in the study when the run began (see `worker_seed`)
    stream: int  # tells apart runs on several machines (see `worker_seed`)
    split: Split | None  # the data without its test part, loaded once by the parent
    code: tuple[str, ...] = ()  # folders a python entry may be imported from


def run(
    spec: StudySpec,
    *,
    workers: int = 1,
    spawn: bool = False,
    on_progress: Callable[[int, float | None], None] | None = None,
    heartbeat: int | None = HEARTBEAT_SECONDS,
    stream: int = 0,
    retry_for: float | None = None,
) -> RunResult:
    """Run the spec's study until its budget of `search.n_trials` trials is used: the
    search's share of them finished, then the leaders re-evaluated (`search.confirm`).

    Everything that can be refuted is checked before the database is touched: the
    sampler and pruner options, the data, and the study's existing experiment.
    `on_progress(finished, best_value)` is called as trials finish. One worker runs
    in this process unless `spawn` asks for a worker process (as benchmarks do, to
    compare like with like). `heartbeat` is the storage's heartbeat interval in
    seconds: a trial silent for three of them is failed and re-queued once. `stream`
    separates the sampler streams of runs on several machines (see `worker_seed`).
    `retry_for` is how long a database that cannot be reached is retried (None: the
    spec's `search.retry_for`).

    A database file deleted or replaced while the run writes to it stops the run (after
    the running trial, or at once with worker processes) with a DatabaseVanished: SQLite
    would write on into the old file without an error, and the run would report trials
    that are not at its path.
    """
    if workers < 1:
        raise StudyError(f"--workers must be at least 1, got {workers}")
    retry_for = spec.search.retry_for if retry_for is None else retry_for
    sampler, pruner = make_sampler(spec), make_pruner(spec)
    split = kind_of(spec).prepare(spec)
    storage = open_storage(
        spec.storage, heartbeat=heartbeat, retry_for=retry_for, max_retry=max_retry(spec)
    )
    study = open_study(spec, storage, sampler, pruner)
    # While the same file is at the path, every trial written went into it.
    watch = DatabaseFile.opened(spec.storage, spec.name)
    start = len(study.get_trials(deepcopy=False))
    study.sampler = make_sampler(spec, 0, start, stream)  # spec.seed itself for a new study
    before = count_finished(study)
    if watch is not None:
        watch.in_place(before)
    remaining = search_budget(spec) - before
    more = not study_done(study, spec)
    deadline = None if spec.search.timeout is None else time.time() + spec.search.timeout
    logger.info(
        "study %r in %s: %d finished, %d to run with %d worker(s)",
        spec.name,
        display_url(spec.storage),
        before,
        max(remaining, 0),
        workers,
    )
    stopped = False
    try:
        if more and workers == 1 and not spawn:
            stopped = _run_here(study, spec, split, deadline, on_progress, watch)
        elif more:
            plan = WorkerPlan(
                spec=spec.to_dict(),
                source=spec.source,
                deadline=deadline,
                heartbeat=heartbeat,
                retry_for=retry_for,
                start=start,
                stream=stream,
                split=None if split is None else without_test(split),  # workers never read it
                code=spec.code,
            )
            stopped = _run_workers(study, plan, workers, spec, on_progress, watch)
        finished = count_finished(study)
    except Exception:
        if watch is not None:
            watch.check_place()  # a file deleted or replaced is what went wrong
        raise
    if watch is not None:
        watch.check(finished)
    if stopped:
        raise Interrupted(f"stopped with {finished} finished trials in {spec.name!r}")
    return RunResult(study, before, finished)


def max_retry(spec: StudySpec) -> int | None:
    """How often a dead worker's trial is queued again: until it finishes, in a
    reproducible search, which cannot go on without it."""
    return None if spec.search.reproducible else MAX_RETRY


def _best_value(study: optuna.Study) -> float | None:
    """For the progress bar, polled while workers train: one query, not every trial.
    Optuna's best value is in the study's direction and among feasible trials; a study
    of several objectives has a front, not a best value."""
    try:
        return study.best_value
    except ValueError:  # no completed (feasible) trial yet
        return None
    except RuntimeError:  # Optuna's answer for several objectives
        return None


def _run_here(
    study: optuna.Study,
    spec: StudySpec,
    split: Split | None,
    deadline: float | None,
    on_progress: Callable[[int, float | None], None] | None,
    watch: DatabaseFile | None = None,
) -> bool:
    """Trials in this process; True when a signal stopped them, or the database file
    was gone after a trial (`watch`)."""
    from threadpoolctl import threadpool_limits

    callbacks = []
    if on_progress is not None:
        callbacks.append(lambda s, _trial: on_progress(count_finished(s), _best_value(s)))
    # A reproducible trial trains on one BLAS thread here too, as in worker processes:
    # two threads sum in another order, and its numbers would depend on --workers.
    threads = 1 if spec.search.reproducible else None
    with graceful_stop() as stop, threadpool_limits(limits=threads):
        if watch is not None:

            def stop_when_gone(s: optuna.Study, _trial: FrozenTrial) -> None:
                # Not counted when gone: that could open the path anew, making a file.
                if not (watch.in_place() and watch.in_place(count_finished(s))):
                    stop.request()

            callbacks.append(stop_when_gone)
        retry_until_stopped(study, stop)
        objective = kind_of(spec).objective(spec, stop, split)
        work(study, objective, spec.search.n_trials, deadline, callbacks)
    return stop.requested()


def _run_workers(
    study: optuna.Study,
    plan: WorkerPlan,
    workers: int,
    spec: StudySpec,
    on_progress: Callable[[int, float | None], None] | None,
    watch: DatabaseFile | None = None,
) -> bool:
    """Trials in `workers` worker processes; True when a signal stopped them. A
    database file gone (`watch`) stops them too, as a signal would."""
    context = multiprocessing.get_context(start_method())
    if context.get_start_method() == "forkserver":
        context.set_forkserver_preload(WORKER_IMPORTS)  # no-op once the server runs
    close_connections(study)  # a forked child must not share them
    claim, errors = context.Lock(), context.SimpleQueue()
    processes = [
        context.Process(
            target=_worker_main,
            args=(plan, worker, claim, errors),
            name=f"hpsearch-worker-{worker}",
        )
        for worker in range(workers)
    ]

    def pass_on() -> None:
        for process in processes:
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)

    reasons: dict[str, str] = {}  # one line per distinct error, by a key without numbers
    with graceful_stop(on_request=pass_on) as stop:
        retry_until_stopped(study, stop)
        for process in processes:
            process.start()
        gone = False
        while any(process.is_alive() for process in processes):
            if not gone and not _progress(study, on_progress, watch):
                gone = True  # what the workers write now is lost: stop them
                stop.request()
                pass_on()
            _collect(errors, reasons)  # as they come: a full pipe would block a worker
            for process in processes:
                process.join(timeout=0.5 / workers)
    if not gone:
        _progress(study, on_progress, watch)
    _collect(errors, reasons)
    failed = [p.name for p in processes if p.exitcode not in (0, None)]
    if failed:
        if _done(study, spec):
            logger.warning("worker(s) %s died; the others completed the study", ", ".join(failed))
        else:
            why = "; ".join(reasons.values()) or "with an error"
            if "run the same command" not in why:
                why += (
                    "; finished trials are kept: once the cause is fixed, the same command "
                    "continues"
                )
            raise StudyError(f"worker(s) {', '.join(failed)} stopped: {why}")
    return stop.requested()


def _collect(errors: Any, reasons: dict[str, str]) -> None:
    """Add the one-line errors the workers reported to `reasons`, once per distinct
    error (two workers' 'disk full' lines differ only in the bytes free); their
    tracebacks go to the log (shown with -v), not to the terminal."""
    while not errors.empty():
        name, line, trace = errors.get()
        logger.info("%s stopped:\n%s", name, trace)
        reasons.setdefault(re.sub(r"[0-9][0-9,.]*", "N", line), line)


def _progress(
    study: optuna.Study, on_progress: Callable | None, watch: DatabaseFile | None
) -> bool:
    """Progress while workers run; False when the database file is gone (`watch`). The
    parent rides out an outage like them, and when it gives up it stops reporting
    progress, not waiting for its workers."""
    if watch is not None and not watch.in_place():
        return False  # counting now could open the path anew, and make an empty file there
    finished = None
    with contextlib.suppress(StorageUnavailable):
        finished = count_finished(study)
        if on_progress is not None:
            on_progress(finished, _best_value(study))
    return watch is None or watch.in_place(finished)  # if so, those trials are in it


def _done(study: optuna.Study, spec: StudySpec) -> bool:
    try:
        return study_done(study, spec)
    except StorageUnavailable:  # the workers' own error says why
        return False


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    first = text.splitlines()[0] if text else ""
    if isinstance(error, HpsearchError):
        return first or type(error).__name__
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def _worker_main(plan: WorkerPlan, worker: int, claim: Any, errors: Any) -> None:
    """A worker process: one BLAS thread, its own sampler stream, data loaded once.
    SIGINT or SIGTERM ends it cleanly (exit 0) after its trial is marked FAIL. An error
    goes to the parent as one line and a traceback (exit 2), not to the terminal."""
    from threadpoolctl import threadpool_limits

    parent = os.getppid()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # not the parent's relay
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        _die_with_parent()
        quiet_optuna()
        spec = dataclasses.replace(from_dict(plan.spec, source=plan.source), code=plan.code)
        with graceful_stop(escalate=False) as stop, threadpool_limits(limits=1):
            if os.getppid() != parent:  # the parent died before prctl took effect
                return
            storage = open_storage(
                spec.storage,
                heartbeat=plan.heartbeat,
                checked=True,
                retry_for=plan.retry_for,
                max_retry=max_retry(spec),
            )
            study = optuna.load_study(
                study_name=spec.name,
                storage=storage,
                sampler=make_sampler(spec, worker, plan.start, plan.stream),
                pruner=make_pruner(spec),
            )
            retry_until_stopped(study, stop)
            objective = kind_of(spec).objective(spec, stop, plan.split)
            work(study, objective, spec.search.n_trials, plan.deadline, claim=claim)
    except KeyboardInterrupt:  # a signal before the handler was in place: nothing started
        raise SystemExit(0) from None
    except Exception as error:
        errors.put((multiprocessing.current_process().name, _one_line(error), format_exc()[-8000:]))
        raise SystemExit(2) from None


def _die_with_parent() -> None:
    """Ask Linux to send this process SIGTERM when its parent dies, so that a SIGKILLed
    `hpsearch run` does not leave its workers running on: they end their trial as FAIL
    and exit like after Ctrl-C. Elsewhere a no-op."""
    import ctypes

    try:  # the process's own symbols, libc's among them (find_library runs ldconfig)
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return


# What a worker imports, for the fork server to import once: this module, and what
# Optuna and NumPy import lazily when a worker opens its storage and first draws.
WORKER_IMPORTS = [
    __name__,
    "alembic.command",
    "alembic.config",
    "alembic.migration",
    "alembic.script",
    "numpy.random",
]


def start_method() -> str:
    """How worker processes start. Forking starts one in milliseconds with the parent's
    imports and data; spawning re-imports Optuna and SQLAlchemy and opens the storage
    again, which two workers on a short study cannot win back. But a fork copies locks
    held by the parent's other threads (SQLite's own mutexes among them) and the child
    can wait on them for ever, so a parent with other threads uses a fork server: a
    clean process that imports hpsearch once and forks the workers (once per parent
    process). macOS cannot fork safely: spawn."""
    if sys.platform != "linux":
        return "spawn"
    return "fork" if threading.active_count() == 1 else "forkserver"
