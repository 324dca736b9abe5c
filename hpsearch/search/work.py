"""One worker's loop: run trials one at a time until the study's budget is filled, the
deadline passes or a stop is requested; wait for trials running elsewhere and re-queue
those of dead workers; keep Optuna's per-trial logging quiet.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import fail_stale_trials
from optuna.trial import FrozenTrial, TrialState

from hpsearch.errors import HpsearchError
from hpsearch.records import spec_objectives
from hpsearch.search import confirm
from hpsearch.search.budget import Budget, BudgetFilled, WithinBudget
from hpsearch.search.reproducible import Gate, attach
from hpsearch.stop import Interrupted
from hpsearch.storage import (
    GRACE_FACTOR,
    OPTIMIZE_LOGGER,
    RDB_LOGGER,
    StorageUnavailable,
    heartbeat_interval,
    running_without_heartbeat,
)
from hpsearch.storage.retry import DatabaseDamaged, damaged_reason, error_chain
from hpsearch.trials import TrialObjective

logger = logging.getLogger(__name__)

# A worker with nothing to start (every remaining trial is running elsewhere) counts
# the study's trials again after 20 ms, then less and less often, up to once a second:
# at the end of a study it waits for the last trials, which end within moments, while
# a remote worker may wait for hours. The count only reads; failing the stale trials
# of dead workers writes, and happens at most once a second.
POLL_SECONDS = (0.02, 1.0)
STALE_CHECK_SECONDS = 1.0


def work(
    study: optuna.Study,
    objective: TrialObjective,
    n_trials: int,
    deadline: float | None,
    callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] = (),
    claim: Any = None,
) -> None:
    """Run trials one at a time until the study's search has its share of `n_trials`
    finished and its confirm stage is over (`search.confirm`), the deadline passes or
    a stop is requested (the running trial then ends as FAIL at its
    next epoch). `claim` is a lock shared by the workers of one machine.

    When every slot is taken by trials running elsewhere, the worker waits for them:
    with heartbeats on, a trial whose worker died is failed and re-queued here (Optuna's
    fail_stale_trials with the storage's retry callback), and this worker may run it.
    """
    stop = objective.stop
    spec = objective.spec
    search = spec.search
    # The search's share of the budget (the rest is the confirm stage's). The budget
    # counts trials of every kind, so a study raised after an earlier confirm stage
    # counts that stage's re-evaluations beside the search's own trials.
    searched = search.confirm.search_trials(n_trials)
    n_search = searched + confirm.reevaluations(study)
    objectives = spec_objectives(spec)
    # A reproducible search's slots are its search trials' alone.
    gate = Gate(searched, search.lag, stop, deadline) if search.reproducible else None
    if gate is not None:
        attach(study, gate)
    guarded = WithinBudget(objective, n_search, claim or threading.Lock(), gate)
    poll, next_stale_check = POLL_SECONDS[0], 0.0
    while not stop.requested() and (deadline is None or time.time() < deadline):
        guarded.acquire()
        try:
            budget = Budget.of(study, n_search)
            nothing_to_start = budget.full
            if budget.done:
                stage = confirm.advance(study, spec, objectives)
                if stage.over:
                    return
                nothing_to_start = stage.waiting == 0
            if nothing_to_start:
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
        except (ValueError, UpdateFinishedTrialError):
            if not (guarded.ended and _taken_over(study, guarded.number)):
                raise
            # Paused past the heartbeat grace (a suspended machine, a long stall): the
            # trial was failed and queued again for another worker, whose result wins.
            logger.warning(
                "trial %s was given to another worker while this one was paused; going on",
                guarded.number,
            )
        except Exception as error:
            # A database that stayed away past the retry limit surfaces from inside
            # Optuna's trial loop as whatever Optuna raised while failing the trial (it
            # cannot write that either): say it as the one error it is.
            unavailable = _unavailable_in(error)
            if unavailable is None:
                raise
            raise unavailable from unavailable.__cause__  # the driver's error, for -v
        finally:
            guarded.release()


def _taken_over(study: optuna.Study, number: int | None) -> bool:
    """Whether this worker's trial was failed by another (its heartbeat stopped), so
    that reporting or telling it now cannot be stored."""
    if number is None:
        return False
    failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    return any(trial.number == number for trial in failed)


def _unavailable_in(error: BaseException) -> StorageUnavailable | None:
    return next((e for e in error_chain(error) if isinstance(e, StorageUnavailable)), None)


def _not_an_sql_error(record: logging.LogRecord) -> bool:
    """Optuna's storage logs a failed query with its SQL over many lines before falling
    back or raising; the retry layer says it in one line, or the error reaches the user."""
    return not record.getMessage().startswith("Caught an error from sqlalchemy")


class _QuietFailures(logging.Filter):
    """Optuna's failed-trial log: a first line that says why (a traceback with it), then
    'Trial N failed with value None.', which says nothing more and is always dropped.
    The first is dropped too for stops, outages and surplus trials refused by the
    budget, which say themselves (the last in its stop_reason), and for a user-facing
    error (a python entry that raised or broke its contract), which stops the run and
    is said once, in one line, by the command; with -v its traceback stays. Judged
    one record at a time: the filter is shared by every thread of the process."""

    QUIET = (
        KeyboardInterrupt
        | Interrupted
        | StorageUnavailable
        | BudgetFilled
        | UpdateFinishedTrialError  # a paused worker's trial, taken over: said in one line
    )

    @staticmethod
    def _said_by_the_command(error: type[BaseException]) -> bool:
        verbose = logging.getLogger("hpsearch").isEnabledFor(logging.INFO)
        return issubclass(error, HpsearchError) and not verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and (
            issubclass(record.exc_info[0], self.QUIET)
            or self._said_by_the_command(record.exc_info[0])
        ):
            return False
        trial, follows, _ = record.getMessage().partition(" failed with value ")
        return not (follows and trial.startswith("Trial "))


_QUIET_FAILURES = _QuietFailures()


def quiet_optuna() -> None:
    """Optuna logs every trial at INFO, and the trial a Ctrl-C stops with a traceback;
    the progress bar, the table and the CLI's one-line 'interrupted' say it better."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optimize_logger = logging.getLogger(OPTIMIZE_LOGGER)
    if _QUIET_FAILURES not in optimize_logger.filters:
        optimize_logger.addFilter(_QUIET_FAILURES)
    rdb_logger = logging.getLogger(RDB_LOGGER)
    if _not_an_sql_error not in rdb_logger.filters:
        rdb_logger.addFilter(_not_an_sql_error)
    if threading.excepthook is not _quiet_outages:
        threading.excepthook = _quiet_outages


_thread_excepthook = threading.excepthook


def _quiet_outages(args: threading.ExceptHookArgs) -> None:
    """A thread beside a trial (Optuna's heartbeat) that gives up on the database, or
    finds it damaged, ends quietly: the trial's own thread meets the same and says it in
    one line."""
    if args.exc_type is not None and issubclass(
        args.exc_type, StorageUnavailable | DatabaseDamaged
    ):
        return
    if args.exc_value is not None and damaged_reason(args.exc_value) is not None:
        return
    _thread_excepthook(args)
