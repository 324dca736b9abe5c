"""The questions hpsearch asks a study's database that Optuna's API answers only by
loading every trial: counts per state, the curves of running trials, running trials
that never beat. One SQL query each on relational storages (written against Optuna's
table schema, which tests/test_fast_rdb.py checks against Optuna's own reading), the
API elsewhere (the journal).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import optuna
from sqlalchemy import text

from hpsearch.storage.fast_rdb import rdb_backend, study_id, to_stored
from hpsearch.storage.sqlite_files import reading

_RUNNING = optuna.trial.TrialState.RUNNING

# How Optuna's trial_intermediate_values table stores values that are not finite.
_NOT_FINITE = {"INF_POS": float("inf"), "INF_NEG": float("-inf"), "NAN": float("nan")}


def count_live_trials(study: optuna.Study, *, before: int | None = None) -> dict[str, int]:
    """Trials per state name that the study ran itself (not copied in by a warm start),
    numbered below `before` if given."""
    storage = rdb_backend(study)
    if storage is None:
        counts: dict[str, int] = {}
        for trial in study.get_trials(deepcopy=False):
            if "copied_from" in trial.user_attrs or (before is not None and trial.number >= before):
                continue
            counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
        return counts
    query = (
        "SELECT t.state, COUNT(*) FROM trials t WHERE t.study_id = :study "
        "AND NOT EXISTS (SELECT 1 FROM trial_user_attributes a "
        "WHERE a.trial_id = t.trial_id AND a.key = 'copied_from')"
    )
    values: dict[str, int] = {"study": study_id(study)}
    if before is not None:
        query += " AND t.number < :before"
        values["before"] = before
    rows = _read(storage, text(query + " GROUP BY t.state"), values)
    return {str(state): int(count) for state, count in rows}


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
        with reading(), storage.engine.connect() as connection:
            return connection.execute(query, values).all()

    policy = getattr(storage, "retry_policy", None)
    return rows() if policy is None else policy.call(rows)


def _as_datetime(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)
