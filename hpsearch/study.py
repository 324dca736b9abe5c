"""Create, continue and run studies; samplers and pruners from the spec; worker
processes; the one final evaluation on the test split.

A study's trial budget is a total: running a study again continues it up to
`search.n_trials` finished (complete or pruned) trials. Interrupted trials end as FAIL
(Optuna marks them) and do not count, so the next run redoes them.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.storages import fail_stale_trials
from optuna.trial import FrozenTrial, TrialState

from hpsearch import __version__
from hpsearch.data import without_test, without_validation
from hpsearch.errors import HpsearchError
from hpsearch.nn import make_optimizer
from hpsearch.objective import (
    Objective,
    build,
    check_against_data,
    distributions,
    load_split,
    remember_split,
    resolve,
    trial_rng,
)
from hpsearch.pruning import ParallelMedianPruner
from hpsearch.spec import Choice, FloatRange, IntRange, SpecError, StudySpec, from_dict
from hpsearch.stop import Interrupted, graceful_stop
from hpsearch.storage import (
    GRACE_FACTOR,
    HEARTBEAT_SECONDS,
    OPTIMIZE_LOGGER,
    close_connections,
    count_live_trials,
    display_url,
    heartbeat_interval,
    open_storage,
    running_without_heartbeat,
)
from hpsearch.train import Diverged, fit

logger = logging.getLogger(__name__)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
METRIC_NAME = "val_accuracy"  # what a trial's value is: the last epoch's validation accuracy
GRID_POINTS = 5  # per float range, when the grid sampler needs a grid


class StudyError(HpsearchError):
    """A study that cannot be created, continued or evaluated as asked."""


class RetrainDiverged(StudyError):
    """`final`'s retraining of the chosen trial diverged (a learning rate at the edge of
    stability on the search's data can be over it on train + validation): no model, and
    the test split was not read."""

    def __init__(self, message: str, trial_number: int) -> None:
        super().__init__(message)
        self.trial_number = trial_number

    def __reduce__(self):
        return (type(self), (str(self), self.trial_number))


# -- samplers and pruners ---------------------------------------------------------------


def worker_seed(seed: int, worker: int, start: int = 0, stream: int = 0) -> int:
    """The sampler seed of one worker of one run.

    Worker 0 of a new study uses the spec's seed itself (a single worker is
    reproducible). Every other combination gets its own stream, so K workers never
    propose K copies of one trial, and a continued study (`start` trials already in
    it) does not replay the first run's draws: a seeded sampler starts its stream
    afresh each time it is made. `stream` tells apart runs that cannot be ordered,
    such as workers on several machines."""
    if (worker, start, stream) == (0, 0, 0):
        return seed
    return int(np.random.SeedSequence([seed, worker, start, stream]).generate_state(1)[0])


def grid_space(spec: StudySpec) -> dict[str, list[Any]]:
    """The grid sampler's points: choices as given, ranges as GRID_POINTS values spaced
    on the range's own scale (all integers when there are few)."""
    space: dict[str, list[Any]] = {}
    for name, param in spec.search.params.items():
        if isinstance(param, Choice):
            space[name] = list(param.choices)
        elif isinstance(param, IntRange):
            values = list(range(param.low, param.high + 1, param.step))
            if len(values) > GRID_POINTS:
                spaced = (np.geomspace if param.log else np.linspace)(
                    param.low, param.high, GRID_POINTS
                )
                values = sorted({round(float(v)) for v in spaced})
            space[name] = values
        else:
            spaced = (np.geomspace if param.log else np.linspace)(
                param.low, param.high, GRID_POINTS
            )
            space[name] = [float(v) for v in spaced]
    return space


def make_sampler(
    spec: StudySpec, worker: int = 0, start: int = 0, stream: int = 0
) -> optuna.samplers.BaseSampler:
    search = spec.search
    seed = worker_seed(spec.seed, worker, start, stream)
    options = dict(search.sampler_options)
    samplers: dict[str, Callable[..., optuna.samplers.BaseSampler]] = {
        "tpe": optuna.samplers.TPESampler,
        "random": optuna.samplers.RandomSampler,
        "cmaes": optuna.samplers.CmaEsSampler,
        "gp": optuna.samplers.GPSampler,
        "qmc": optuna.samplers.QMCSampler,
        "grid": lambda **kw: optuna.samplers.GridSampler(grid_space(spec), **kw),
    }
    if search.sampler == "gp":
        _require("torch", "the gp sampler needs PyTorch: pip install torch==2.13.0")
    if search.sampler == "cmaes":
        _require("cmaes", "the cmaes sampler needs the cmaes package: pip install cmaes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return samplers[search.sampler](seed=seed, **options)
    except (TypeError, ValueError) as exc:
        raise SpecError(
            f"{spec.source}: search.sampler_options: {search.sampler} sampler rejects "
            f"{options}: {exc}"
        ) from None


def make_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    search = spec.search
    options = search.pruner_kwargs
    epochs = spec.training.epochs
    pruners: dict[str, Callable[..., optuna.pruners.BasePruner]] = {
        "none": optuna.pruners.NopPruner,
        "median": ParallelMedianPruner,
        "successive-halving": optuna.pruners.SuccessiveHalvingPruner,
        "hyperband": lambda **kw: optuna.pruners.HyperbandPruner(
            **({"min_resource": 1, "max_resource": epochs} | kw)
        ),
    }
    try:
        return pruners[search.pruner](**options)
    except (TypeError, ValueError) as exc:
        raise SpecError(
            f"{spec.source}: search.pruner_options: {search.pruner} pruner rejects {options}: {exc}"
        ) from None


def _require(module: str, message: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise SpecError(message)


# -- creating and continuing ------------------------------------------------------------


def _first_difference(old: Any, new: Any, path: str = "") -> str | None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            found = _first_difference(old.get(key), new.get(key), f"{path}.{key}" if path else key)
            if found:
                return found
        return None
    return None if old == new else f"{path}: {old!r} there, {new!r} here"


def stored_spec(study: optuna.Study) -> StudySpec:
    """The spec a study was created from, read back from its user attrs."""
    raw = study.user_attrs.get("spec")
    if raw is None:
        raise StudyError(f"study {study.study_name!r} was not created by hpsearch (no spec)")
    return from_dict(raw, source=f"study {study.study_name!r}")


def stored_form(spec: StudySpec) -> dict[str, Any]:
    """The spec as a study keeps it: the storage URL without its password, which
    everyone who can read the database could otherwise read back."""
    raw = spec.to_dict()
    raw["storage"] = display_url(spec.storage)
    return raw


def open_study(
    spec: StudySpec, storage: optuna.storages.BaseStorage, sampler=None, pruner=None
) -> optuna.Study:
    """Create the spec's study, or load it when it exists with the same experiment.

    Refuses, without writing anything, a study of that name made from another
    experiment (data, model, training or search space): its trials would not compare.
    """
    try:
        storage.get_study_id_from_name(spec.name)
        exists = True
    except KeyError:
        exists = False
    if exists:
        study = optuna.load_study(
            study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner
        )
        if "spec" not in study.user_attrs:
            raise StudyError(
                f"study {spec.name!r} exists but was not created by hpsearch; "
                "choose another name with --study"
            )
        difference = _first_difference(stored_spec(study).experiment(), spec.experiment())
        if difference:
            raise StudyError(
                f"study {spec.name!r} exists with a different experiment ({difference}); "
                "use --study NEW_NAME for a new study, or the original spec to continue"
            )
        return study
    parent = _parent_study(spec, storage) if spec.parent is not None else None
    study = optuna.create_study(
        study_name=spec.name,
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        direction="maximize",
    )
    with warnings.catch_warnings():  # experimental in some Optuna versions
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([METRIC_NAME])  # optuna-dashboard's name for the value
    study.set_user_attr("spec", stored_form(spec))
    study.set_user_attr("spec_source", spec.source)
    study.set_user_attr("seed", spec.seed)
    study.set_user_attr("hpsearch_version", __version__)
    study.set_user_attr("round", spec.round)
    study.set_user_attr("parent", spec.parent)
    study.set_user_attr("ranges", spec.to_dict()["search"]["params"])
    if parent is not None:
        copied = warm_start(study, parent, spec)
        study.set_user_attr("warm_start_trials", copied)
        logger.info("copied %d trials of %r inside the new ranges", copied, spec.parent)
    elif spec.search.start_at_defaults and spec.search.sampler != "grid":  # grid: its points
        # No more than the budget: a queued trial beyond it would stay WAITING for ever.
        for point in start_points(spec)[: spec.search.n_trials]:
            study.enqueue_trial(point, user_attrs={"start": "defaults"})
    return study


def start_points(spec: StudySpec) -> list[dict[str, Any]]:
    """The first trials of a new study: the searched parameters' own defaults, and the
    same with lr ten times larger and ten times smaller, where inside the range.

    One anchor at the defaults was not enough on the default study: TPE sampled few
    trials near it, those were pruned, and 1 run in 14 stalled at the anchor (0.871
    validation accuracy, where lr 0.1 reaches 0.93). A decade either side of the
    optimizer's usual lr is the first thing a person tuning SGD tries."""
    point = default_point(spec)
    if not point:
        return []
    points = [point]
    lr = spec.search.params.get("lr")
    if "lr" in point and isinstance(lr, FloatRange):
        for value in (point["lr"] * 10.0, point["lr"] * 0.1):
            if _inside(value, lr):
                points.append(point | {"lr": value})
    return points


def default_point(spec: StudySpec) -> dict[str, Any]:
    """The searched parameters' own values in the spec (init scale 1, which is the init
    rule itself; the optimizer's usual lr; ...) where they lie in the searched ranges.

    A search's first trial there anchors it: with init scale searched, most of a wide
    space cannot train at all, and TPE's ten random start-up trials missed every
    trainable region on 2 of 5 seeds of bench-search, after which it refined the best
    of the failures (test accuracy 0.46 and 0.75 against 0.85 to 0.87 on the others).
    """
    config = resolve(spec, {})
    values: dict[str, Any] = dataclasses.asdict(config) | {
        "lr": config.lr if config.lr is not None else make_optimizer(config.optimizer).lr,
        "hidden_width": config.hidden_sizes[0] if config.hidden_sizes else None,
        "hidden_depth": len(config.hidden_sizes),
    }
    point: dict[str, Any] = {}
    for name, param in spec.search.params.items():
        value = values.get(name)
        if value is None:
            continue
        if not _inside(value, param):
            continue
        if isinstance(param, Choice):
            point[name] = value
        else:
            point[name] = int(value) if isinstance(param, IntRange) else float(value)
    return point


def _on_step(steps: float) -> bool:
    return math.isclose(steps, round(steps), abs_tol=1e-9)


def _parent_study(spec: StudySpec, storage: optuna.storages.BaseStorage) -> optuna.Study:
    try:
        return optuna.load_study(study_name=spec.parent, storage=storage)
    except KeyError:
        raise StudyError(
            f"{spec.source}: parent study {spec.parent!r} is not in {display_url(spec.storage)}; "
            "a narrowed round runs in its parent's database"
        ) from None


def _inside(value: Any, param: Any) -> bool:
    """Whether `value` is one the parameter can take: a choice, or inside the range and
    on its step (integer and float ranges alike)."""
    if isinstance(param, Choice):
        return value in param.choices
    if not param.low <= value <= param.high:
        return False
    return param.step is None or _on_step((value - param.low) / param.step)


def warm_start(study: optuna.Study, parent: optuna.Study, spec: StudySpec) -> int:
    """Copy the parent's completed trials that lie inside this study's ranges, with this
    study's distributions, so its sampler starts informed and no finished work is lost.
    Copies carry `copied_from` and do not count towards this study's trial budget."""
    params = spec.search.params
    dists = distributions(params)
    copies = [
        optuna.trial.create_trial(
            state=TrialState.COMPLETE,
            value=trial.value,
            params={name: trial.params[name] for name in params},
            distributions=dists,
            intermediate_values=trial.intermediate_values,
            user_attrs=trial.user_attrs | {"copied_from": f"{parent.study_name}#{trial.number}"},
        )
        for trial in parent.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if set(params) <= set(trial.params)
        and all(_inside(trial.params[name], param) for name, param in params.items())
    ]
    study.add_trials(copies)
    return len(copies)


def finished_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Trials this study ran to the end (complete or pruned): its budget's count.
    Trials copied in from a parent round are not among them."""
    return [
        trial
        for trial in study.get_trials(deepcopy=False, states=FINISHED)
        if "copied_from" not in trial.user_attrs
    ]


def count_finished(study: optuna.Study) -> int:
    """How many of `finished_trials` there are, counted by the database (one query on
    relational storages instead of loading every trial)."""
    return _finished_in(count_live_trials(study))


def _finished_in(counts: dict[str, int]) -> int:
    return sum(counts.get(state.name, 0) for state in FINISHED)


# -- running ----------------------------------------------------------------------------


@dataclass
class RunResult:
    study: optuna.Study
    finished_before: int
    finished_now: int


# A worker with nothing to start (every remaining trial is running elsewhere) counts
# the study's trials again after 20 ms, then less and less often, up to once a second:
# at the end of a study it waits for the last trials, which end within moments, while
# a remote worker may wait for hours. The count only reads; failing the stale trials
# of dead workers writes, and happens at most once a second.
POLL_SECONDS = (0.02, 1.0)
STALE_CHECK_SECONDS = 1.0


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


class _WithinBudget:
    """The objective, behind a check that the trial just created is within the budget.

    Local workers claim trials under one lock (the `claim` held from their budget check
    until their trial exists), so they never overshoot. Workers on other machines can:
    two that both saw the last free slot both create a trial. Trial numbers are unique,
    so the one with as many live trials numbered before it as the budget ends as FAIL
    with the reason in a user attr and never counts; a finished trial is never lost.
    """

    def __init__(self, objective: Objective, n_trials: int, claim: Any) -> None:
        self.objective = objective
        self.stop = objective.stop
        self.n_trials = n_trials
        self.claim = claim
        self.claimed = False

    def __call__(self, trial: optuna.Trial) -> float:
        self.release()
        counts = count_live_trials(trial.study, before=trial.number)
        ahead = sum(n for state, n in counts.items() if state != TrialState.FAIL.name)
        if ahead >= self.n_trials:
            reason = f"not run: the study's {self.n_trials} trials were taken by other workers"
            trial.set_user_attr("stop_reason", reason)
            raise BudgetFilled(reason)
        return self.objective(trial)

    def acquire(self) -> None:
        self.claim.acquire()
        self.claimed = True

    def release(self) -> None:
        if self.claimed:
            self.claimed = False
            self.claim.release()


def _work(
    study: optuna.Study,
    objective: Objective,
    n_trials: int,
    deadline: float | None,
    callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] = (),
    claim: Any = None,
) -> None:
    """Run trials one at a time until the study has `n_trials` finished trials, the
    deadline passes or a stop is requested (the running trial then ends as FAIL at its
    next epoch). `claim` is a lock shared by the workers of one machine.

    When every slot is taken by trials running elsewhere, the worker waits for them:
    with heartbeats on, a trial whose worker died is failed and re-queued here (Optuna's
    fail_stale_trials with the storage's retry callback), and this worker may run it.
    """
    stop = objective.stop
    guarded = _WithinBudget(objective, n_trials, claim or threading.Lock())
    poll, next_stale_check = POLL_SECONDS[0], 0.0
    while not stop.requested() and (deadline is None or time.time() < deadline):
        guarded.acquire()
        try:
            budget = Budget.of(study, n_trials)
            if budget.done:
                return
            if budget.full:
                guarded.release()
                interval = heartbeat_interval(study)
                if interval is None:
                    return  # nobody can tell a dead worker's trial from a slow one
                if time.monotonic() >= next_stale_check:
                    grace = interval * GRACE_FACTOR
                    orphans = running_without_heartbeat(study, older_than=grace)
                    if orphans:
                        logger.warning(
                            "study %r: trial(s) %s RUNNING without heartbeats (a worker "
                            "without heartbeats, or one that died); not waiting for them",
                            study.study_name,
                            ", ".join(map(str, orphans)),
                        )
                        return
                    fail_stale_trials(study)
                    next_stale_check = time.monotonic() + STALE_CHECK_SECONDS
                stop.wait(poll)
                poll = min(1.2 * poll, POLL_SECONDS[1])
                continue
            poll = POLL_SECONDS[0]
            study.optimize(
                guarded,
                n_trials=1,
                callbacks=list(callbacks),
                gc_after_trial=False,
                catch=(BudgetFilled,),
            )
        except Interrupted:
            return
        finally:
            guarded.release()


def _not_an_interrupt(record: logging.LogRecord) -> bool:
    return not (record.exc_info and issubclass(record.exc_info[0], KeyboardInterrupt | Interrupted))


def quiet_optuna() -> None:
    """Optuna logs every trial at INFO, and the trial a Ctrl-C stops with a traceback;
    the progress bar, the table and the CLI's one-line 'interrupted' say it better."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optimize_logger = logging.getLogger(OPTIMIZE_LOGGER)
    if _not_an_interrupt not in optimize_logger.filters:
        optimize_logger.addFilter(_not_an_interrupt)


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
# Optuna and NumPy import lazily when a worker opens its storage and first draws
# (Alembic for the storage's version check: ~0.25 s per worker otherwise).
_WORKER_IMPORTS = [
    __name__,
    "alembic.command",
    "alembic.config",
    "alembic.migration",
    "alembic.script",
    "numpy.random",
]


def _start_method() -> str:
    """How worker processes start. Forking starts one in milliseconds with the parent's
    imports and data; spawning re-imports Optuna and SQLAlchemy and opens the storage
    again, about a second per worker, which two workers on a 20-second study cannot win
    back. But a fork copies locks held by the parent's other threads (SQLite's own
    mutexes among them) and the child can wait on them for ever, so a parent with other
    threads uses a fork server: a clean process that imports hpsearch once and forks
    the workers (~0.5 s, once per parent process). macOS cannot fork safely: spawn."""
    if sys.platform != "linux":
        return "spawn"
    return "fork" if threading.active_count() == 1 else "forkserver"


def _worker_main(
    spec_dict: dict[str, Any],
    source: str,
    worker: int,
    deadline: float | None,
    claim: Any,
    heartbeat: int | None,
    start: int,
    stream: int,
    split: Any,
) -> None:
    """A worker process: one BLAS thread, its own sampler stream, data loaded once.
    SIGINT or SIGTERM ends it cleanly (exit 0) after its trial is marked FAIL."""
    from threadpoolctl import threadpool_limits

    parent = os.getppid()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # not the parent's relay
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        _die_with_parent()
        quiet_optuna()
        spec = from_dict(spec_dict, source=source)
        remember_split(spec.data, spec.seed, split)
        with graceful_stop(escalate=False) as stop, threadpool_limits(limits=1):
            if os.getppid() != parent:  # the parent died before prctl took effect
                return
            storage = open_storage(spec.storage, heartbeat=heartbeat, checked=True)
            study = optuna.load_study(
                study_name=spec.name,
                storage=storage,
                sampler=make_sampler(spec, worker, start, stream),
                pruner=make_pruner(spec),
            )
            _work(study, Objective(spec, stop), spec.search.n_trials, deadline, claim=claim)
    except KeyboardInterrupt:  # a signal before the handler was in place: nothing started
        raise SystemExit(0) from None


def run(
    spec: StudySpec,
    *,
    workers: int = 1,
    spawn: bool = False,
    on_progress: Callable[[int, float | None], None] | None = None,
    heartbeat: int | None = HEARTBEAT_SECONDS,
    stream: int = 0,
) -> RunResult:
    """Run the spec's study until it has `search.n_trials` finished trials.

    Everything that can be refuted is checked before the database is touched: the
    sampler and pruner options, the data, and the study's existing experiment.
    `on_progress(finished, best_value)` is called as trials finish. One worker runs
    in this process unless `spawn` asks for a worker process (as benchmarks do, to
    compare like with like). `heartbeat` is the storage's heartbeat interval in
    seconds: a trial silent for three of them is failed and re-queued once. `stream`
    separates the sampler streams of runs on several machines (see `worker_seed`).
    """
    if workers < 1:
        raise StudyError(f"--workers must be at least 1, got {workers}")
    sampler, pruner = make_sampler(spec), make_pruner(spec)
    split = load_split(spec.data, spec.seed)
    check_against_data(spec, split)
    storage = open_storage(spec.storage, heartbeat=heartbeat)
    study = open_study(spec, storage, sampler, pruner)
    start = len(study.get_trials(deepcopy=False))
    study.sampler = make_sampler(spec, 0, start, stream)  # spec.seed itself for a new study
    before = count_finished(study)
    remaining = spec.search.n_trials - before
    deadline = None if spec.search.timeout is None else time.time() + spec.search.timeout
    logger.info(
        "study %r in %s: %d finished, %d to run with %d worker(s)",
        spec.name,
        display_url(spec.storage),
        before,
        max(remaining, 0),
        workers,
    )
    if remaining > 0:
        if workers == 1 and not spawn:
            stopped = _run_here(study, spec, deadline, on_progress)
        else:
            stopped = _run_workers(
                study, spec, deadline, workers, on_progress, heartbeat, start, stream
            )
        if stopped:
            raise Interrupted(
                f"stopped with {count_finished(study)} finished trials in {spec.name!r}"
            )
    return RunResult(study, before, count_finished(study))


def _best_value(study: optuna.Study) -> float | None:
    """For the progress bar, polled while workers train: one query, not every trial."""
    try:
        return study.best_value
    except ValueError:  # no completed trial yet
        return None


def _run_here(study, spec, deadline, on_progress) -> bool:
    """Trials in this process; True when a signal stopped them."""
    callbacks = []
    if on_progress is not None:
        callbacks.append(lambda s, _trial: on_progress(count_finished(s), _best_value(s)))
    with graceful_stop() as stop:
        _work(study, Objective(spec, stop), spec.search.n_trials, deadline, callbacks)
    return stop.requested()


def _run_workers(study, spec, deadline, workers, on_progress, heartbeat, start, stream) -> bool:
    """Trials in `workers` worker processes; True when a signal stopped them."""
    context = multiprocessing.get_context(_start_method())
    if context.get_start_method() == "forkserver":
        context.set_forkserver_preload(_WORKER_IMPORTS)  # no-op once the server runs
    close_connections(study)  # a forked child must not share them
    claim = context.Lock()
    split = without_test(load_split(spec.data, spec.seed))  # workers never read it
    processes = [
        context.Process(
            target=_worker_main,
            args=(
                spec.to_dict(),
                spec.source,
                worker,
                deadline,
                claim,
                heartbeat,
                start,
                stream,
                split,
            ),
            name=f"hpsearch-worker-{worker}",
        )
        for worker in range(workers)
    ]

    def pass_on() -> None:
        for process in processes:
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)

    with graceful_stop(on_request=pass_on) as stop:
        for process in processes:
            process.start()
        while any(process.is_alive() for process in processes):
            if on_progress is not None:
                on_progress(count_finished(study), _best_value(study))
            for process in processes:
                process.join(timeout=0.5 / workers)
    if on_progress is not None:
        on_progress(count_finished(study), _best_value(study))
    failed = [p.name for p in processes if p.exitcode not in (0, None)]
    if failed:
        if Budget.of(study, spec.search.n_trials).done:
            logger.warning("worker(s) %s died; the others completed the study", ", ".join(failed))
        else:
            raise StudyError(
                f"worker(s) {', '.join(failed)} stopped with an error; finished trials are "
                "kept, run the same command again to continue"
            )
    return stop.requested()


# -- the final evaluation ---------------------------------------------------------------


@dataclass
class FinalResult:
    trial_number: int
    params: dict[str, Any]
    validation_accuracy: float
    test_accuracy: float
    epochs: int
    train_examples: int


def load_existing_study(study_name: str, storage_url: str) -> optuna.Study:
    storage = open_storage(storage_url)
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = optuna.get_all_study_names(storage)
        listing = ", ".join(repr(n) for n in names[:10]) or "none"
        raise StudyError(
            f"no study named {study_name!r} in {display_url(storage_url)}; studies there: {listing}"
        ) from None


def retrain_and_test(
    spec: StudySpec, params: dict[str, Any], rng: np.random.Generator
) -> tuple[float, int]:
    """Train a configuration on train + validation for the full epoch count and return
    its test accuracy and the number of training examples; raises `Diverged`."""
    config = resolve(spec, params)
    split = without_validation(load_split(spec.data, spec.seed))
    net, optimizer = build(config, split, rng)
    fit(net, optimizer, split, epochs=config.epochs, batch_size=config.batch_size, rng=rng)
    return net.accuracy(split.x_test, split.t_test), len(split.t_train)


def final(study_name: str, storage_url: str, trial_number: int | None = None) -> FinalResult:
    """Retrain the best trial's configuration (or trial `trial_number`'s, a completed
    one) on train + validation for the full epoch count and evaluate it once on the
    test split: the only reader of the test split."""
    study = load_existing_study(study_name, storage_url)
    spec = stored_spec(study)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    candidates = complete
    if trial_number is not None:
        candidates = [t for t in complete if t.number == trial_number]
        if not candidates:
            raise StudyError(f"study {study_name!r} has no completed trial {trial_number}")
    if not candidates:
        raise StudyError(f"study {study_name!r} has no completed trial to evaluate")
    best = max(candidates, key=lambda t: t.value)
    rng = trial_rng(spec, best.user_attrs.get("seed_trial", best.number))
    try:
        test_accuracy, train_examples = retrain_and_test(spec, best.params, rng)
    except Diverged as exc:
        ranked = sorted(complete, key=lambda t: t.value, reverse=True)
        others = [t.number for t in ranked if t.number != best.number][:3]
        hint = (
            f"; evaluate another with --trial N (next best: {', '.join(map(str, others))})"
            if others
            else ""
        )
        raise RetrainDiverged(
            f"retraining trial {best.number} on train + validation diverged at epoch "
            f"{exc.epoch}, step {exc.step} (loss {exc.loss}); the test split was not read" + hint,
            best.number,
        ) from None
    result = FinalResult(
        trial_number=best.number,
        params=dict(best.params),
        validation_accuracy=float(best.value),
        test_accuracy=test_accuracy,
        epochs=spec.training.epochs,
        train_examples=train_examples,
    )
    study.set_user_attr("test_accuracy", result.test_accuracy)
    study.set_user_attr(
        "final",
        {
            "trial": result.trial_number,
            "params": result.params,
            "validation_accuracy": result.validation_accuracy,
            "test_accuracy": result.test_accuracy,
            "epochs": result.epochs,
            "train_examples": result.train_examples,
        },
    )
    return result
