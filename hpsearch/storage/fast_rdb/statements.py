"""The fast path's SQL on Optuna's own tables (its ORM models, from `names`), built once
so that SQLAlchemy compiles each statement once.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import json
from types import SimpleNamespace
from typing import Any

from optuna.trial import TrialState
from sqlalchemy import bindparam, func, insert, select, union_all, update
from sqlalchemy.dialects import postgresql as postgresql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from hpsearch.storage.fast_rdb.names import MODELS_FOUND, rdb_models

# Optuna 5 stores a trial's times as naive UTC and shows them as naive local time (its
# model's properties convert); earlier releases stored naive local time.
STORES_UTC = MODELS_FOUND and isinstance(
    inspect.getattr_static(rdb_models.TrialModel, "datetime_start", None), property
)


def to_stored(local: dt.datetime | None) -> dt.datetime | None:
    """A naive local time as Optuna's trials table stores it."""
    if local is None or not STORES_UTC:
        return local
    return local.astimezone(dt.UTC).replace(tzinfo=None)


def from_stored(stored: dt.datetime | None) -> dt.datetime | None:
    """A time from Optuna's trials table as Optuna shows it (naive local)."""
    if stored is None or not STORES_UTC:
        return stored
    return stored.replace(tzinfo=dt.UTC).astimezone().replace(tzinfo=None)


def attr_rows(trial_id: int, attrs: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
        for key, value in attrs.items()
    ]


UPSERT_DIALECTS = {"sqlite": sqlite_dialect, "postgresql": postgresql_dialect}


@functools.cache
def statements() -> SimpleNamespace:
    """The fast path's statements on Optuna's models, built once so that SQLAlchemy
    compiles each once."""
    trial, param, study = rdb_models.TrialModel, rdb_models.TrialParamModel, rdb_models.StudyModel
    return SimpleNamespace(
        state_of_trial=select(trial.state, trial.study_id)
        .where(trial.trial_id == bindparam("trial_id"))
        .with_for_update(),  # PostgreSQL: no state change until the write commits
        earlier_distribution=select(param.distribution_json)
        .join(trial)
        .where(
            trial.study_id == bindparam("study_id"),
            param.param_name == bindparam("param_name"),
        )
        .limit(1),
        insert_trial=insert(trial),
        study_for_update=select(study.study_id)
        .where(study.study_id == bindparam("study_id"))
        .with_for_update(),
        count_trials=select(func.count(trial.trial_id)).where(
            trial.study_id == bindparam("study_id")
        ),
        **{f"set_state_{name}": _set_state(times) for name, times in SET_STATE_TIMES.items()},
    )


# Which of a trial's times a change of state sets: its start when it starts running
# (a waiting trial claimed), its end when it finishes.
SET_STATE_TIMES = {"running": ("datetime_start",), "finished": ("datetime_complete",), "other": ()}


def _set_state(times: tuple[str, ...]) -> Any:
    table = rdb_models.TrialModel.__table__
    values = {"state": bindparam("new_state", type_=table.c.state.type)}
    values |= {time: bindparam(f"new_{time}", type_=table.c[time].type) for time in times}
    return update(table).where(table.c.trial_id == bindparam("of_trial")).values(values)


@functools.cache
def upsert_statement(dialect_name: str, kind: str) -> Any:
    """The insert-or-overwrite statement of `kind` in the dialect (SQLite or
    PostgreSQL), built once so that SQLAlchemy compiles it once."""
    dialect = UPSERT_DIALECTS[dialect_name]
    if kind == "heartbeat":
        model = rdb_models.TrialHeartbeatModel
        adding = dialect.insert(model).values(heartbeat=func.now())  # the database's clock
        return adding.on_conflict_do_update(
            index_elements=["trial_id"], set_={"heartbeat": adding.excluded.heartbeat}
        )
    model, keys, values = _upserted(kind)
    adding = dialect.insert(model)
    if kind == "param":
        return adding.on_conflict_do_nothing(index_elements=keys)
    return adding.on_conflict_do_update(
        index_elements=keys, set_={column: adding.excluded[column] for column in values}
    )


def _upserted(kind: str) -> tuple[Any, list[str], list[str]]:
    """The model of `kind`'s rows, its unique key's columns and the columns it sets."""
    return {
        "intermediate": (
            rdb_models.TrialIntermediateValueModel,
            ["trial_id", "step"],
            ["intermediate_value", "intermediate_value_type"],
        ),
        "value": (rdb_models.TrialValueModel, ["trial_id", "objective"], ["value", "value_type"]),
        "user_attr": (rdb_models.TrialUserAttributeModel, ["trial_id", "key"], ["value_json"]),
        "system_attr": (
            rdb_models.TrialSystemAttributeModel,
            ["trial_id", "key"],
            ["value_json"],
        ),
        "param": (  # inserted, never overwritten: Optuna ignores a second one
            rdb_models.TrialParamModel,
            ["trial_id", "param_name"],
            ["param_value", "distribution_json"],
        ),
    }[kind]


@functools.cache
def guarded_upsert(kind: str, rows: int) -> Any:
    """PostgreSQL: the upsert of `rows` rows of `kind` for one trial, done only while the
    trial may still change (Optuna's check: not finished), its row locked as Optuna's
    check locks it, in one statement: one round trip in autocommit instead of four
    (begin, check, upsert, commit). It returns no row when the trial may not change
    (or, for a parameter, when the trial has it already).
    Parameters: `trial_id`, and each set column with the row's index (`step_0`, ...)."""
    model, keys, values = _upserted(kind)
    table, trial = model.__table__, rdb_models.TrialModel.__table__
    finished = [state for state in TrialState if state.is_finished()]
    live = (
        select(trial.c.trial_id)
        .where(trial.c.trial_id == bindparam("trial_id"), trial.c.state.not_in(finished))
        .with_for_update()
        .cte("live")
    )
    own = [column for column in keys + values if column != "trial_id"]
    selects = [
        select(live.c.trial_id, *(bindparam(f"{c}_{i}", type_=table.c[c].type) for c in own))
        for i in range(rows)
    ]
    adding = postgresql_dialect.insert(table).from_select(
        ["trial_id", *own], selects[0] if rows == 1 else union_all(*selects)
    )
    if kind == "param":
        return adding.on_conflict_do_nothing(index_elements=keys).returning(table.c.trial_id)
    return adding.on_conflict_do_update(
        index_elements=keys, set_={column: adding.excluded[column] for column in values}
    ).returning(table.c.trial_id)
