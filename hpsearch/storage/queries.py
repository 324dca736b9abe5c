"""The questions hpsearch asks a study's database that Optuna's API answers only by
loading every trial: counts per state, the curves of running trials, running trials
that never beat. One SQL query each on relational storages (written against Optuna's
table schema, which tests/test_fast_rdb.py checks against Optuna's own reading), the
API elsewhere (the journal).
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import weakref
from datetime import datetime, timedelta
from typing import Any

import optuna
from sqlalchemy import text

from hpsearch.records import COPIED_FROM
from hpsearch.storage.fast_rdb import rdb_backend, study_id, to_stored
from hpsearch.storage.pool import read_connection

_RUNNING = optuna.trial.TrialState.RUNNING

# How Optuna's trial_intermediate_values table stores values that are not finite.
_NOT_FINITE = {"INF_POS": float("inf"), "INF_NEG": float("-inf"), "NAN": float("nan")}


def count_live_trials(study: optuna.Study, *, before: int | None = None) -> dict[str, int]:
    """Trials per state name that the study ran itself (not copied in by a warm start),
    numbered below `before` if given.

    A worker asks several times a trial (the budget, the pruner at every report), so a
    count must not cost a scan of the study: trials up to the first unfinished one are
    counted once (a finished trial never changes) and each count reads only the trials
    after them."""
    storage = rdb_backend(study)
    if storage is None:
        counts: dict[str, int] = {}
        for trial in study.get_trials(deepcopy=False):
            if COPIED_FROM in trial.user_attrs or (before is not None and trial.number >= before):
                continue
            counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
        return counts
    tallies, lock = _tallies(storage)
    with lock:  # threads of one process share a study's tally
        tally = tallies.setdefault(study, _Tally())
        if before is not None and before <= tally.last_number:  # a question about the past
            tally = _Tally()
        rows = _read(storage, _TAIL, {"study": study_id(study), "after": tally.last_id})
        counts = collections.Counter(tally.counts)
        settling = True
        for trial_id, number, state, copied in rows:
            state = str(state)
            settling = settling and state in _FINISHED
            if settling:  # every trial up to this one is finished: count it once for all
                tally.last_id, tally.last_number = trial_id, number
                tally.counts[state] += 0 if copied else 1
            if not copied and (before is None or number < before):
                counts[state] += 1
    return {state: n for state, n in counts.items() if n}


@dataclasses.dataclass
class _Tally:
    """A study's trials up to the first unfinished one (by id, which orders them as
    created: Optuna creates a study's trials one at a time), counted per state."""

    last_id: int = -1
    last_number: int = -1
    counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)


def _tallies(storage: optuna.storages.RDBStorage) -> tuple[weakref.WeakKeyDictionary, Any]:
    """The tallies of a storage's studies and their lock, kept on the storage object
    whose rows they count: one per Study object (a study deleted and made again under
    the same name is a new object), so a worker keeps one for its whole run."""
    kept = vars(storage).get("hpsearch_tallies")
    if kept is None:
        kept = vars(storage).setdefault(
            "hpsearch_tallies", (weakref.WeakKeyDictionary(), threading.Lock())
        )
    return kept


_FINISHED = frozenset(s.name for s in optuna.trial.TrialState if s.is_finished())
# The study's trials after an id, oldest first, with whether each is a warm-start copy.
_TAIL = text(
    "SELECT t.trial_id, t.number, t.state, EXISTS (SELECT 1 FROM trial_user_attributes a "
    f"WHERE a.trial_id = t.trial_id AND a.key = '{COPIED_FROM}') "
    "FROM trials t WHERE t.study_id = :study AND t.trial_id > :after ORDER BY t.trial_id"
)


def running_curves(study: optuna.Study, *, other_than: int) -> list[dict[int, float]]:
    """The intermediate values reported so far by the study's RUNNING trials, other than
    trial number `other_than`: one step -> value dict per trial."""
    storage = rdb_backend(study)
    if storage is None:
        return [
            dict(t.intermediate_values)
            for t in study.get_trials(deepcopy=False, states=(_RUNNING,))
            if t.number != other_than
        ]
    query = text(
        "SELECT v.trial_id, v.step, v.intermediate_value, v.intermediate_value_type "
        "FROM trial_intermediate_values v JOIN trials t ON t.trial_id = v.trial_id "
        "WHERE t.study_id = :study AND t.state = 'RUNNING' AND t.number != :other"
    )
    rows = _read(storage, query, {"study": study_id(study), "other": other_than})
    curves: dict[int, dict[int, float]] = {}
    for trial_id, step, stored, kind in rows:
        value = stored if str(kind) == "FINITE" else _NOT_FINITE[str(kind)]
        curves.setdefault(trial_id, {})[step] = value
    return list(curves.values())


def running_without_heartbeat(study: optuna.Study, older_than: float) -> list[int]:
    """Numbers of the study's RUNNING trials that started more than `older_than` seconds
    ago and never sent a heartbeat: run by a process without heartbeats (an older
    hpsearch, plain Optuna) or left by one that died. Heartbeats can never fail them, so
    a worker waiting for them would wait for ever."""
    storage = rdb_backend(study)
    if storage is None:
        return []
    query = text(
        "SELECT t.number, t.datetime_start FROM trials t "
        "LEFT JOIN trial_heartbeats h ON h.trial_id = t.trial_id "
        "WHERE t.study_id = :study AND t.state = 'RUNNING' AND h.trial_id IS NULL"
    )
    rows = _read(storage, query, {"study": study_id(study)})
    cutoff = to_stored(datetime.now() - timedelta(seconds=older_than))  # as Optuna stores it
    return sorted(number for number, start in rows if start is None or _as_datetime(start) < cutoff)


def retry_until_stopped(study: optuna.Study, stop: Any) -> None:
    """Let a stop request (Ctrl-C, SIGTERM) end the study's outage retries at once,
    instead of after the retry limit: `stop` has `wait(seconds)` and `requested()`."""
    policy = getattr(rdb_backend(study), "retry_policy", None)
    if policy is not None:
        policy.sleep, policy.stop_requested = stop.wait, stop.requested


def close_connections(study: optuna.Study) -> None:
    """Close the pooled database connections of the study's storage (they reopen when
    next needed): a forked process must not inherit connections it could use or close."""
    storage = rdb_backend(study)
    if storage is not None:
        storage.engine.dispose()


def _read(storage: optuna.storages.RDBStorage, query: Any, values: dict[str, Any]) -> list:
    """The rows of one read-only query, riding out outages like the storage's own calls."""

    def rows() -> list:
        with read_connection(storage.engine) as connection:
            return connection.execute(query, values).all()

    policy = getattr(storage, "retry_policy", None)
    return rows() if policy is None else policy.call(rows)


def _as_datetime(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)
